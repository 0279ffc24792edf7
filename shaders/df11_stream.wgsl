// Reading a DFloat11 unit's stream, shared by df11_decode.wgsl (BF16 out) and df11_gemv.wgsl (fused
// decode + GEMV). Format: DESIGN.md §1. One workgroup works on one 4096-byte block of the stream (512
// windows of 64 bits). Each invocation owns 512/WG consecutive windows (a SPAN_BITS span) and decodes every
// code whose first bit lies in [gap of its first window, span end); a code may run up to 32 bits past the span.
//   count_block: load the lookup tables, count the codes of each span (keeping their exponent bytes in
//                `kept`); workgroup prefix sum -> each span's first element in the block
//   stage_span:  stage a span's exponent bytes of a range of the block's elements in `stage`: copied from
//                `kept` (copy_kept), or decoded again (stage_codes) for a span whose codes did not all fit
//                in `kept` (possible only in spans of several windows) or whose count failed
// Both decoding loops step through up to 3 short codes at once with a 256-entry table on the next 8 bits (`multi`);
// a code longer than 8 bits goes through the full table walk. Each entry also says where its codes end, so the
// count takes the entry's codes that start before a window's end without a branch.
// The including shader declares `params` (a uniform struct with at least n, n_bytes, n_blocks, n_tables)
// and includes a prefix sum over the workgroup, span_prefix:
// df11_scan.wgsl (workgroup memory) or df11_scan_sg.wgsl (subgroup operations, where the device has `subgroups`).

override WG: u32;                              // invocations per workgroup; divides 512 (set by the kernel's TS)
override SPAN_BITS: u32 = 64u * (512u / WG);   // stream bits per invocation
override STAGE_WORDS: u32;                     // exponent staging, 4 bytes per word (set by the kernel's TS, stageWords)

// BLOCK_BITS, BLOCK_WORDS, GAP_BITS_PER_BLOCK, KEEP_WORDS (words of `kept`: 68 exponent bytes, every code
// that starts in a 64-bit span and the one after it), SLOW (the `multi` entry of a code longer than 8 bits, or a
// bad one) and the status flags FLAG_* (status[0], ORed; status[1] = lowest block index that raised one):
// declared from src/gpu/shader-constants.ts (DF11_STREAM).
/** A block's element count can never exceed its bit count (codes are >= 1 bit), plus padding slack. */
const MAX_BLOCK_ELEMENTS: u32 = BLOCK_BITS;

/** The exponent bytes of this invocation's span, in code order (4 per word, first in the low byte). */
var<private> kept: array<u32, KEEP_WORDS>;

const DECODE_ERROR: u32 = 0x80000000u;
const NO_WORD: u32 = 0xffffffffu;

@group(0) @binding(1) var<storage, read> stream: array<u32>;            // (ceil(n_bytes / 4)) words of 4 stream bytes, the first in the top byte (streamWords)
@group(0) @binding(2) var<storage, read> sign_mantissa: array<u32>;     // (n) bytes
@group(0) @binding(3) var<storage, read> luts: array<u32>;              // (n_tables, 256) bytes, then multi and ends (256 each) u32
@group(0) @binding(4) var<storage, read> gaps: array<u32>;              // (320 * n_blocks) bytes, 5 bits per window
@group(0) @binding(5) var<storage, read> output_positions: array<u32>;  // (n_blocks + 1)
@group(0) @binding(7) var<storage, read_write> status: array<atomic<u32>, 2>;

// top byte of the stream -> x: the 1 to 3 whole codes it holds, (count << 28) | (bits << 24) | exponents
// (first in the low byte), else SLOW (the first code is longer than 8 bits); y: where the first and second
// codes end (bits 0-3, 4-7; the first's end is its length). Built by withLookupTables() in df11-decode.ts.
var<workgroup> multi: array<vec2<u32>, 256>;
var<workgroup> stage: array<atomic<u32>, STAGE_WORDS>;

fn flag(bits: u32, block: u32) {
  atomicOr(&status[0], bits);
  atomicMin(&status[1], block);
}

fn byte_of(word: u32, i: u32) -> u32 {
  return (word >> ((i & 3u) * 8u)) & 0xffu;
}

/** Stream word `w`: its 32 bits in stream order from the most significant end (0 past the end). */
fn stream_word(w: u32) -> u32 {
  if (w >= (params.n_bytes + 3u) / 4u) { return 0u; }
  return stream[w];
}

/**
 * A window on the stream: `hi` holds the next bits from bit `used` on, then `lo`; `nx` and `nx2` are
 * loaded ahead (two words: a load has ~64 bits of decoding to arrive before the loop waits on it).
 */
struct Reader {
  hi: u32,
  lo: u32,
  nx: u32,
  nx2: u32,
  next: u32,  // index of the stream word after nx2
  used: u32,  // bits of hi already consumed (0..31)
}

fn reader_at(block: u32, bit: u32) -> Reader {
  let w = block * BLOCK_WORDS + (bit >> 5u);
  return Reader(stream_word(w), stream_word(w + 1u), stream_word(w + 2u), stream_word(w + 3u), w + 4u, bit & 31u);
}

/** The next 32 stream bits. (lo >> 1) >> (31 - used) is lo >> (32 - used) without WGSL's shift-by-32 trap. */
fn peek(r: ptr<function, Reader>) -> u32 {
  let u = (*r).used;
  return ((*r).hi << u) | (((*r).lo >> 1u) >> (31u - u));
}

/** Consume `len` (<= 32) bits. */
fn advance(r: ptr<function, Reader>, len: u32) {
  let u = (*r).used + len;
  (*r).used = u & 31u;
  if (u >= 32u) {
    (*r).hi = (*r).lo;
    (*r).lo = (*r).nx;
    (*r).nx = (*r).nx2;
    (*r).nx2 = stream_word((*r).next);
    (*r).next += 1u;
  }
}

fn lut_byte(table: u32, i: u32) -> u32 {
  let at = table * 256u + i;
  return byte_of(luts[at >> 2u], at);
}

/** Decode the code at the top of `win`: (length << 8) | exponent, or DECODE_ERROR | flag. */
fn decode(win: u32) -> u32 {
  let m = multi[win >> 24u];
  if (m.x != SLOW) { return ((m.y & 15u) << 8u) | (m.x & 0xffu); }
  return decode_tables(win);
}

/** The table walk (LUTs read from the storage buffer: small and cached, and rarely needed). */
fn decode_tables(win: u32) -> u32 {
  var d = lut_byte(0u, win >> 24u);
  // values >= 240 point to child table 256 - d, indexed by the next byte; at most 3 more levels
  for (var level = 1u; level < 4u && d >= 240u; level++) {
    let table = 256u - d;
    if (table >= params.n_tables - 1u) { return DECODE_ERROR | FLAG_POINTER; }
    d = lut_byte(table, (win >> (24u - 8u * level)) & 0xffu);
  }
  if (d >= 240u) { return DECODE_ERROR | FLAG_POINTER; }
  let len = lut_byte(params.n_tables - 1u, d);
  if (len == 0u || len > 32u) { return DECODE_ERROR | FLAG_LENGTH; }
  return (len << 8u) | d;
}

/** 5-bit gap of window `window` of `block` (packed MSB-first). */
fn read_gap(block: u32, window: u32) -> u32 {
  let bit = block * GAP_BITS_PER_BLOCK + window * 5u;
  let i = bit >> 3u;
  let n_gap_bytes = params.n_blocks * 320u;
  let b0 = byte_of(gaps[i >> 2u], i);
  let b1 = select(0u, byte_of(gaps[(i + 1u) >> 2u], i + 1u), i + 1u < n_gap_bytes);
  return (((b0 << 8u) | b1) >> (11u - (bit & 7u))) & 31u;
}

/** window_gap of a window past the stream: nothing to check. */
const NO_GAP: u32 = 64u;

/**
 * The gap of the window holding block-local bit `p` (the next block's first window when p is past this
 * block): where that window's first code starts, or NO_GAP past the stream.
 */
fn window_gap(block: u32, p: u32) -> u32 {
  let b = block + (p / BLOCK_BITS);
  let window = (p % BLOCK_BITS) >> 6u;
  if (b >= params.n_blocks || b * (BLOCK_BITS / 8u) + window * 8u >= params.n_bytes) { return NO_GAP; }
  return read_gap(b, window);
}

/** Largest block b with output_positions[b] <= g. */
fn block_of(g: u32) -> u32 {
  var lo = 0u;
  var hi = params.n_blocks;
  for (var i = 0u; i < 32u && hi - lo > 1u; i++) {
    let mid = (lo + hi) / 2u;
    if (output_positions[mid] <= g) { lo = mid; } else { hi = mid; }
  }
  return lo;
}

/** Two BF16 values from the low two exponent and sign/mantissa bytes (byte 0 -> low half). */
fn bf16_pair(exps: u32, sm: u32) -> u32 {
  // both at once: byte i of exps and sm moved to bit 16 i of e and s
  let e = (exps & 0xffu) | ((exps & 0xff00u) << 8u);
  let s = (sm & 0xffu) | ((sm & 0xff00u) << 8u);
  return ((s & 0x00800080u) << 8u) | (e << 7u) | (s & 0x007f007fu);
}

/** Sign/mantissa word `i`, clamped to the array (prefetches may run past the elements). */
fn sm_word(i: u32) -> u32 {
  return sign_mantissa[min(i, arrayLength(&sign_mantissa) - 1u)];
}

/** Sign/mantissa bytes of elements g..g+3 (first in the low byte) from words g / 4 and g / 4 + 1 (a shift by 32 is not one). */
fn sm_bytes(g: u32, sm0: u32, sm1: u32) -> u32 {
  let sh = (g & 3u) * 8u;
  return select((sm0 >> sh) | (sm1 << (32u - sh)), sm0, sh == 0u);
}

/** Fill `multi` from the tables after the LUTs (built once per unit, see df11-decode.ts). */
fn load_tables(lid: u32) {
  let tables = 64u * params.n_tables;
  for (var i = lid; i < 256u; i += WG) {
    multi[i] = vec2<u32>(luts[tables + i], luts[tables + 256u + i]);
  }
  workgroupBarrier();
}

/** An invocation's span of a block after count_block. */
struct Span {
  first_bit: u32,  // block-local bit of its first code
  count: u32,      // codes that start in the span
  start: u32,      // block-local index of its first element
  total: u32,      // codes of the whole block
  kept: u32,       // exponent bytes `kept` holds for elements start, start + 1, ... (0 after a failure)
}

/** Append the n (1..3) exponent bytes `exps` at kept byte `at`; `acc` holds the bytes of word at / 4 so far. */
fn keep(acc: ptr<function, u32>, at: u32, n: u32, exps: u32) {
  let sh = (at & 3u) * 8u;
  *acc |= exps << sh;
  if ((at & 3u) + n >= 4u) {  // word complete (sh >= 8 here): store it, keep the bytes that spill over
    if ((at >> 2u) < KEEP_WORDS) { kept[at >> 2u] = *acc; }
    *acc = exps >> (32u - sh);
  }
}

/**
 * Fill `multi`, count the codes of this invocation's span of `block` (elements [s, e) by
 * output_positions) and prefix-sum the counts over the workgroup; flag bad codes, gaps, and a total that
 * disagrees with e - s. Call from uniform control flow (barriers).
 */
fn count_block(block: u32, s: u32, e: u32, lid: u32) -> Span {
  let span_begin = lid * SPAN_BITS;
  let block_bits = min(BLOCK_BITS, (params.n_bytes - block * (BLOCK_BITS / 8u)) * 8u);
  let limit = min(span_begin + SPAN_BITS, block_bits);
  // the reader's loads do not wait for the gap: it is < 32, so the span's first code lies in its first word
  var r = reader_at(block, span_begin);
  let gap = read_gap(block, lid * (SPAN_BITS / 64u));
  r.used = gap;
  let first_bit = span_begin + gap;
  // the code that reaches the next window must end at that window's gap: read a window ahead of its use
  // (so no load waits in the loop), the first with the span's first words
  var next_window = span_begin + 64u;  // first bit of the window after pos's
  var next_gap = window_gap(block, next_window);
  // after the span's first stream loads are issued, so their latency overlaps the tables'
  load_tables(lid);
  var pos = first_bit;
  var window_stop = min(limit, next_window);  // codes of pos's window count if they start before this
  var count = 0u;
  var failed = 0u;  // DECODE_ERROR | flag of the code at block-local index start + count
  var acc = 0u;     // kept bytes of the word being filled
  let last_block = block + 1u == params.n_blocks;
  for (var i = 0u; i < SPAN_BITS && pos < limit; i++) {
    let win = peek(&r);
    let m = multi[win >> 24u];
    // only codes that start before the span's limit count, and the first code of every window must be seen
    // (to check it against the window's gap): a step ends with the first code that reaches the next window.
    // So the step takes the entry's codes that start before `room`: the 2nd starts at e1, the 3rd at e2 (all
    // of them when the entry ends within room, as e1, e2 < bits)
    let room = window_stop - pos;
    let e1 = m.y & 15u;
    let e2 = (m.y >> 4u) & 15u;
    let all = m.x >> 28u;
    var n = 1u + u32(all >= 2u && e1 < room) + u32(all >= 3u && e2 < room);
    var len = select(select((m.x >> 24u) & 15u, e2, n == 2u), e1, n == 1u);
    var exps = m.x & (0xffffffu >> (8u * (3u - n)));
    // at the stream's end one code at a time: the codes before a bad one still count
    if (m.x == SLOW || (last_block && pos + len > block_bits)) {
      let code = decode(win);
      if (code >= DECODE_ERROR) { failed = code; break; }
      len = code >> 8u;
      n = 1u;
      exps = code & 0xffu;
      if (last_block && pos + len > block_bits) { failed = DECODE_ERROR | FLAG_STREAM; break; }
    }
    keep(&acc, count, n, exps);
    advance(&r, len);
    count += n;
    let q = pos + len;
    if (q >= next_window) {  // (codes are <= 32 bits: q lies in that window)
      if (next_gap != NO_GAP && next_gap != q - next_window) { failed = DECODE_ERROR | FLAG_GAP; break; }
      next_window += 64u;
      window_stop = min(limit, next_window);
      if (next_window <= limit) { next_gap = window_gap(block, next_window); }
    }
    pos = q;
  }

  var kept_bytes = 0u;
  if (failed == 0u) {
    // the code right after the span (the next block's first element, when this span holds the block's last)
    let next = decode(peek(&r));
    kept_bytes = count;
    if (next < DECODE_ERROR) {
      keep(&acc, count, 1u, next & 0xffu);
      kept_bytes += 1u;
    }
    if ((kept_bytes >> 2u) < KEEP_WORDS) { kept[kept_bytes >> 2u] = acc; }
    kept_bytes = min(kept_bytes, 4u * KEEP_WORDS);
  }

  let prefix = span_prefix(count, lid);
  let start = prefix.x;   // block-local index of this span's first element
  let total = prefix.y;
  // padding after the last element decodes as junk: only codes before n are checked
  if (failed != 0u && s + start + count < params.n) { flag(failed & ~DECODE_ERROR, block); }
  if (lid == 0u && select(total != e - s, total < e - s, last_block)) { flag(FLAG_COUNT, block); }
  return Span(first_bit, count, start, total, kept_bytes);
}

/** Kept word `i` (0 outside `kept`). */
fn kept_word(i: i32) -> u32 {
  if (i < 0 || i >= i32(KEEP_WORDS)) { return 0u; }
  return kept[u32(i)];
}

/**
 * What stage_codes stages, from `kept` (stop <= sp.start + sp.kept): the exponent bytes of block-local
 * elements [max(sp.start, c0), stop) ORed in at stage byte l - c0, a stage word at a time.
 */
fn copy_kept(sp: Span, c0: u32, stop: u32) {
  let lo = max(sp.start, c0);
  if (lo >= stop) { return; }
  let d0 = lo - c0;    // stage bytes [d0, d1)
  let d1 = stop - c0;
  let delta = i32(c0) - i32(sp.start);  // kept byte of stage byte x: x + delta
  let words_end = (d1 + 3u) / 4u;
  // stage word j is kept bytes 4j + delta ..: kept words k and k + 1 shifted by sh, the same for every j
  let sh = u32(delta & 3) * 8u;
  var k = (i32(d0 & ~3u) + delta) >> 2u;  // (may be -1: those bytes are masked off below)
  var w0 = kept_word(k);
  for (var j = d0 / 4u; j < words_end; j++) {
    let w1 = kept_word(k + 1);
    let v = select((w0 >> sh) | (w1 << (32u - sh)), w0, sh == 0u);
    if (4u * j >= d0 && 4u * j + 4u <= d1) {
      atomicStore(&stage[j], v);  // all 4 bytes are this span's: no neighbour shares the word
    } else {
      let first = (max(4u * j, d0) - 4u * j) * 8u;       // bits of the word's bytes in [d0, d1)
      let last = (min(4u * j + 4u, d1) - 4u * j) * 8u;   // 8..32
      let mask = (0xffffffffu << first) & select(0xffffffffu >> (32u - last), 0xffffffffu, last == 32u);
      atomicOr(&stage[j], v & mask);
    }
    w0 = w1;
    k += 1;
  }
}

/**
 * Stage this invocation's exponent bytes of block-local elements [max(sp.start, c0), stop) at stage byte
 * l - c0 (stop may reach one code past the span: the next span's first), from `kept` where it holds them.
 */
fn stage_span(block: u32, s: u32, sp: Span, c0: u32, stop: u32) {
  if (stop <= sp.start + sp.kept) {
    copy_kept(sp, c0, stop);
  } else {
    stage_codes(block, s, sp, c0, stop);
  }
}

/**
 * Stage the exponent bytes of this invocation's codes with block-local indices in [c0, stop) at stage
 * byte l - c0 (ORed in: the stage words must be zero). `sp` is the invocation's span of `block`, whose
 * elements start at unit element s; stop may reach one code past the span (the next span's first).
 */
fn stage_codes(block: u32, s: u32, sp: Span, c0: u32, stop: u32) {
  var d = reader_at(block, sp.first_bit);
  var l = sp.start;
  // exponent bytes are gathered per stage word and ORed in once (neighbours may share the word)
  var acc = 0u;
  var acc_word = NO_WORD;
  for (var i = 0u; i <= SPAN_BITS && l < stop; i++) {
    let win = peek(&d);
    let m = multi[win >> 24u].x;
    var exps = m & 0xffffffu;
    var n = m >> 28u;
    var len = (m >> 24u) & 15u;
    if (m == SLOW || l < c0 || l + n > stop) {  // one code at a time outside the plain case
      let code = decode(win);
      if (code >= DECODE_ERROR) {
        if (s + l < params.n) { flag(code & ~DECODE_ERROR, block); }
        break;
      }
      exps = code & 0xffu;
      n = 1u;
      len = code >> 8u;
    }
    if (l >= c0) {
      let k = l - c0;
      if ((k >> 2u) != acc_word) {
        if (acc_word != NO_WORD) { atomicOr(&stage[acc_word], acc); }
        acc_word = k >> 2u;
        acc = 0u;
      }
      let shift = (k & 3u) * 8u;
      acc |= exps << shift;
      if ((k & 3u) + n >= 4u) {  // word complete (shift >= 8 here): flush, keep the bytes that spill over
        atomicOr(&stage[acc_word], acc);
        acc_word += 1u;
        acc = exps >> (32u - shift);
      }
    }
    advance(&d, len);
    l += n;
  }
  // (acc_word may be one past the stage after an exact fill, with nothing left in acc)
  if (acc_word != NO_WORD && acc != 0u) { atomicOr(&stage[acc_word], acc); }
}

/** Zero the first `words` stage words (workgroup memory starts zeroed: only later chunks need it). */
fn clear_stage(words: u32, lid: u32) {
  for (var i = lid; i < words; i += WG) { atomicStore(&stage[i], 0u); }
  workgroupBarrier();
}
