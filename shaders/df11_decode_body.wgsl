// DFloat11 decode: Huffman-coded BF16 exponents + raw sign/mantissa bytes -> BF16 pairs packed in u32.
// Included by df11_decode.wgsl and df11_decode_sg.wgsl (which supply the workgroup prefix sum, span_prefix).
// One workgroup decodes one 4096-byte block of the stream (df11_stream.wgsl: the format, spans, tables).
//   1. count the codes of each span, keeping their exponent bytes in private memory (`kept`: 68 bytes, every
//      code a 64-bit span can hold and the one after it); workgroup prefix sum -> each span's first element
//   2. stage the exponent bytes in workgroup memory (chunks of up to STAGE_WORDS * 4 - 1 elements): copied
//      from `kept` (copy_kept), or decoded again (stage_codes) for a span whose codes did not all fit there
//      (possible only in spans of several windows: workgroups under 512) or whose count failed
//   3. all invocations combine staged exponents with sign/mantissa bytes and write whole u32 words, in rounds
//      of 4 steps per invocation whose sign/mantissa loads are issued together (the first round's before the
//      staging and its barrier); a step writes 2 words (4 elements: one stage word, the sign/mantissa bytes
//      of at most two words)
// Output element of global index g goes to local index g - begin + dest (dest is even): word local/2,
// low half if local is even. A workgroup writes exactly the words whose LOW element is one of its
// block's elements inside [begin, end), so no word is written twice: the high half of its last word
// may be the first element of the next block, the "extra" code decoded right after the block's last.
// #include df11_stream


struct Params {
  n: u32,              // elements in the unit
  n_bytes: u32,        // bytes of the encoded exponent stream
  n_blocks: u32,       // ceil(n_bytes / 4096)
  n_tables: u32,       // k: k-1 decode tables, then the code-length table
  mode: u32,           // 0: range decode; 1: row decode (embedding lookup)
  first_block: u32,    // mode 0: block of workgroup 0
  work_items: u32,     // workgroups that do work (mode 0: blocks; mode 1: n_tokens * blocks_per_row)
  begin: u32,          // mode 0: first element to write; mode 1: offset of the matrix in the unit
  end: u32,            // mode 0: end of the range (exclusive); mode 1: unused
  row_len: u32,        // mode 1: elements per row (even)
  n_rows: u32,         // mode 1: rows of the matrix
  blocks_per_row: u32, // mode 1: most blocks one row touches
}

@group(0) @binding(0) var<uniform> params: Params;
// bindings 1..5 and 7: the unit's arrays and the status word (df11_stream.wgsl)
@group(0) @binding(6) var<storage, read_write> out: array<u32>;         // BF16 pairs: mode 0 (ceil((end-begin)/2)), mode 1 (n_tokens, row_len/2)
@group(0) @binding(8) var<storage, read> token_ids: array<u32>;         // mode 1: (n_tokens)

struct Work {
  valid: u32,
  block: u32,
  s: u32,      // block's elements are [s, e)
  e: u32,
  begin: u32,  // elements wanted: [begin, end), the one at `begin` goes to output element `dest`
  end: u32,
  dest: u32,
}

var<workgroup> work: Work;

/** Which block this workgroup decodes and which of its elements it writes where. */
fn resolve_work(item: u32) -> Work {
  var w = Work(0u, 0u, 0u, 0u, 0u, 0u, 0u);
  if (item >= params.work_items) { return w; }
  if (params.mode == 0u) {
    w.block = params.first_block + item;
    w.begin = params.begin;
    w.end = params.end;
    w.dest = 0u;
  } else {
    let token = item / params.blocks_per_row;
    let j = item % params.blocks_per_row;
    let row = token_ids[token];
    if (row >= params.n_rows) {
      if (j == 0u) { flag(FLAG_TOKEN, 0xffffffffu); }
      return w;
    }
    w.begin = params.begin + row * params.row_len;
    w.end = w.begin + params.row_len;
    w.dest = token * params.row_len;
    w.block = block_of(w.begin) + j;
    if (w.block >= params.n_blocks || (j > 0u && output_positions[w.block] >= w.end)) { return w; }
  }
  w.s = output_positions[w.block];
  w.e = output_positions[w.block + 1u];
  if (w.e < w.s || w.e - w.s > MAX_BLOCK_ELEMENTS) {
    flag(FLAG_COUNT, w.block);
    return w;
  }
  w.valid = u32(max(w.s, w.begin) < min(w.e, w.end));
  return w;
}

/** bf16_pair (df11_stream.wgsl) with the high half 0 unless `with_high`. */
fn out_pair(exps: u32, sm: u32, with_high: bool) -> u32 {
  let pair = bf16_pair(exps, sm);
  return select(pair & 0xffffu, pair, with_high);
}

/** The sign/mantissa word pairs of output steps q0 + k WG, k < 4 (elements g = base + 4q: words g / 4, g / 4 + 1). */
struct SmRound {
  lo: vec4<u32>,
  hi: vec4<u32>,
}

fn sm_round(base: u32, q0: u32) -> SmRound {
  var r: SmRound;
  for (var k = 0u; k < 4u; k++) {
    let i = (base + 4u * (q0 + k * WG)) >> 2u;
    r.lo[k] = sm_word(i);
    r.hi[k] = sm_word(i + 1u);
  }
  return r;
}

/**
 * Output words j = 2q and 2q + 1 (if j < lows) of the chunk at block-local c0: elements g..g+3 (g = s + c0
 * + 4q), staged bytes 4q..4q+3 (stage word q); sm0, sm1: sign/mantissa words g / 4 and g / 4 + 1.
 */
fn write_step(w: Work, c0: u32, q: u32, lows: u32, sm0: u32, sm1: u32) {
  let g = w.s + c0 + 4u * q;
  let exps = atomicLoad(&stage[q]);
  let sm = sm_bytes(g, sm0, sm1);
  let at = (g - w.begin + w.dest) >> 1u;
  out[at] = out_pair(exps, sm, g + 1u < w.end);
  if (2u * q + 1u < lows) { out[at + 1u] = out_pair(exps >> 16u, sm >> 16u, g + 3u < w.end); }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let item = wid.x + wid.y * groups.x;
  // ---- phase 1: count the codes of this invocation's span, prefix sum over the workgroup
  if (lid == 0u) { work = resolve_work(item); }
  let w = workgroupUniformLoad(&work);
  if (w.valid == 0u) { return; }
  let sp = count_block(w.block, w.s, w.e, lid);
  // the span holding the block's last code also decodes the next block's first (high half of a shared word)
  let extra = u32(sp.count > 0u && sp.start + sp.count == sp.total && w.block + 1u != params.n_blocks);

  // ---- phases 2 and 3, per chunk of staged elements
  let g_first = max(w.s, w.begin) + ((max(w.s, w.begin) - w.begin) & 1u);  // first element that is a low half
  let l_end = min(w.e, w.end) - w.s;
  let chunk = STAGE_WORDS * 4u - 2u;  // low halves per chunk; chunk + 1 elements staged
  for (var c0 = g_first - w.s; c0 < l_end; c0 += chunk) {
    let c1 = c0 + chunk + 1u;
    let lows = (min(l_end, c0 + chunk) - c0 + 1u) / 2u;
    // the first output round's sign/mantissa loads are in flight during the staging and its barrier
    var sm = sm_round(w.s + c0, lid);
    if (c0 != g_first - w.s) { clear_stage((min(c1, l_end + 1u) - c0 + 3u) / 4u, lid); }
    if (sp.start < c1 && sp.start + sp.count + extra > c0) {
      stage_span(w.block, w.s, sp, c0, min(sp.start + sp.count + extra, c1));
    }
    workgroupBarrier();
    // rounds of 4 steps per invocation, each round's 8 loads issued before its writes
    for (var q0 = lid; 2u * q0 < lows; q0 += 4u * WG) {
      if (q0 != lid) { sm = sm_round(w.s + c0, q0); }
      for (var k = 0u; k < 4u; k++) {
        let q = q0 + k * WG;
        if (2u * q < lows) { write_step(w, c0, q, lows, sm.lo[k], sm.hi[k]); }
      }
    }
    workgroupBarrier();
  }
}
