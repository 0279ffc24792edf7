// CUDA transliteration of shaders/df11_decode.wgsl (range mode only), line for line, to measure the
// kernel's algorithm on an NVIDIA GPU where Node + Dawn cannot be run (see bench/RESULTS.md). Keep it in
// step with the WGSL when the algorithm changes; the WGSL file is the product, this is an instrument.
// One difference: this builds the fast/multi tables in every block, the WGSL kernel reads them
// precomputed per unit (withLookupTables in src/gpu/df11-decode.ts).
typedef unsigned int u32;
#ifndef WG
#define WG 256
#endif
#define SPAN_BITS (64u * (512u / WG))
#define STAGE_WORDS 4096u
#define BLOCK_BITS 32768u
#define BLOCK_WORDS 1024u
#define GAP_BITS_PER_BLOCK 2560u
#define MAX_BLOCK_ELEMENTS 32768u
#define FLAG_LENGTH 1u
#define FLAG_POINTER 2u
#define FLAG_COUNT 4u
#define DECODE_ERROR 0x80000000u
#define SLOW 0xffffffffu
#define NO_WORD 0xffffffffu

struct Params { u32 n, n_bytes, n_blocks, n_tables, first_block, work_items, begin, end; };

__device__ __forceinline__ u32 byte_of(u32 w, u32 i) { return (w >> ((i & 3u) * 8u)) & 0xffu; }

struct Ctx { const u32* stream; const u32* luts; const Params* p; const u32* fast; };

__device__ __forceinline__ u32 stream_word(const Ctx& c, u32 w) {
  if (w >= (c.p->n_bytes + 3u) / 4u) return 0u;
  u32 x = c.stream[w];
  return (x << 24) | ((x & 0xff00u) << 8) | ((x >> 8) & 0xff00u) | (x >> 24);
}
// hi/lo: the 64 bits from the current word on; nx: the word after, loaded one word ahead
struct Reader { u32 hi, lo, nx, next, used; };
__device__ __forceinline__ Reader reader_at(const Ctx& c, u32 block, u32 bit) {
  u32 w = block * BLOCK_WORDS + (bit >> 5);
  Reader r; r.hi = stream_word(c, w); r.lo = stream_word(c, w + 1); r.nx = stream_word(c, w + 2); r.next = w + 3; r.used = bit & 31u; return r;
}
// branch-free: (lo >> 1) >> (31 - used) is lo >> (32 - used), and 0 when used == 0
__device__ __forceinline__ u32 peek(const Reader& r) { return (r.hi << r.used) | ((r.lo >> 1) >> (31u - r.used)); }
__device__ __forceinline__ void advance(const Ctx& c, Reader& r, u32 len) {
  u32 u = r.used + len;
  bool sh = u >= 32u;
  r.used = u & 31u;
  if (sh) { r.hi = r.lo; r.lo = r.nx; r.nx = stream_word(c, r.next); r.next += 1; }
}
__device__ __forceinline__ u32 lut_byte(const Ctx& c, u32 table, u32 i) { u32 at = table * 256u + i; return byte_of(c.luts[at >> 2], at); }
__device__ u32 decode_tables(const Ctx& c, u32 win) {
  u32 d = lut_byte(c, 0, win >> 24);
  for (u32 level = 1; level < 4 && d >= 240u; level++) {
    u32 table = 256u - d;
    if (table >= c.p->n_tables - 1u) return DECODE_ERROR | FLAG_POINTER;
    d = lut_byte(c, table, (win >> (24u - 8u * level)) & 0xffu);
  }
  if (d >= 240u) return DECODE_ERROR | FLAG_POINTER;
  u32 len = lut_byte(c, c.p->n_tables - 1u, d);
  if (len == 0 || len > 32) return DECODE_ERROR | FLAG_LENGTH;
  return (len << 8) | d;
}
__device__ __forceinline__ u32 decode(const Ctx& c, u32 win) { u32 f = c.fast[win >> 24]; return f != SLOW ? f : decode_tables(c, win); }
__device__ u32 read_gap(const u32* gaps, const Params& p, u32 block, u32 window) {
  u32 bit = block * GAP_BITS_PER_BLOCK + window * 5u; u32 i = bit >> 3;
  u32 b0 = byte_of(gaps[i >> 2], i);
  u32 b1 = (i + 1 < p.n_blocks * 320u) ? byte_of(gaps[(i + 1) >> 2], i + 1) : 0u;
  return (((b0 << 8) | b1) >> (11u - (bit & 7u))) & 31u;
}
__device__ void flag(u32* status, u32 bits, u32 block) { atomicOr(&status[0], bits); atomicMin(&status[1], block); }
__device__ __forceinline__ u32 bf16(u32 e, u32 sm) { return ((sm & 0x80u) << 8) | (e << 7) | (sm & 0x7fu); }

extern "C" __global__ void __launch_bounds__(WG) decode_kernel(const u32* stream, const u32* sign_mantissa, const u32* luts,
    const u32* gaps, const u32* output_positions, u32* out, u32* status,
    u32 pn, u32 pn_bytes, u32 pn_blocks, u32 pn_tables, u32 pfirst, u32 pitems, u32 pbegin, u32 pend) {
  Params p{pn, pn_bytes, pn_blocks, pn_tables, pfirst, pitems, pbegin, pend};
  __shared__ u32 fast[256];
  __shared__ u32 multi[256];  // top byte -> up to 3 whole codes: (count << 28) | (bits << 24) | exponents
  __shared__ u32 scan[WG];
  __shared__ u32 stage[STAGE_WORDS];
  u32 lid = threadIdx.x;
  u32 item = blockIdx.x + blockIdx.y * gridDim.x;
  if (item >= p.work_items) return;
  u32 block = p.first_block + item;
  u32 s = output_positions[block], e = output_positions[block + 1];
  if (e < s || e - s > MAX_BLOCK_ELEMENTS) { if (lid == 0) flag(status, FLAG_COUNT, block); return; }
  if (!(max(s, p.begin) < min(e, p.end))) return;
  Ctx c{stream, luts, &p, fast};
  for (u32 i = lid; i < 256u; i += WG) {
    u32 d = lut_byte(c, 0, i);
    u32 len = lut_byte(c, p.n_tables - 1u, min(d, 239u));
    fast[i] = (d < 240u && len > 0 && len <= 8) ? ((len << 8) | d) : SLOW;
    u32 ex = 0, bits = 0, cnt = 0;
    for (u32 j = 0; j < 3u; j++) {
      u32 dj = lut_byte(c, 0, (i << bits) & 0xffu);
      if (dj >= 240u) break;
      u32 lj = lut_byte(c, p.n_tables - 1u, dj);
      if (lj == 0 || bits + lj > 8u) break;
      ex |= dj << (8u * j); bits += lj; cnt++;
    }
    multi[i] = cnt == 0 ? SLOW : ((cnt << 28) | (bits << 24) | ex);
  }
  for (u32 i = lid; i < STAGE_WORDS; i += WG) stage[i] = 0;  // WGSL zero-initializes workgroup memory
  __syncthreads();
  u32 span_begin = lid * SPAN_BITS;
  u32 block_bits = min(BLOCK_BITS, (p.n_bytes - block * 4096u) * 8u);
  u32 limit = min(span_begin + SPAN_BITS, block_bits);
  u32 first_bit = span_begin + read_gap(gaps, p, block, lid * (SPAN_BITS / 64u));
  Reader r = reader_at(c, block, first_bit);
  u32 pos = first_bit, count = 0, failed = 0;
  while (pos < limit) {  // bounded: pos grows by >= 1 per step
    u32 win = peek(r), m = multi[win >> 24], len, cnt;
    if (m != SLOW && pos + 8u <= limit) { len = (m >> 24) & 15u; cnt = m >> 28; }
    else { u32 code = decode(c, win); if (code >= DECODE_ERROR) { failed = code; break; } len = code >> 8; cnt = 1; }
    advance(c, r, len); pos += len; count += cnt;
  }
  scan[lid] = count;
  __syncthreads();
  for (u32 off = 1; off < WG; off <<= 1) {
    u32 v = 0; if (lid >= off) v = scan[lid - off];
    __syncthreads(); scan[lid] += v; __syncthreads();
  }
  u32 start = scan[lid] - count, total = scan[WG - 1];
  bool last_block = block + 1 == p.n_blocks;
  if (failed && s + start + count < p.n) flag(status, failed & ~DECODE_ERROR, block);
  if (lid == 0 && (last_block ? total < e - s : total != e - s)) flag(status, FLAG_COUNT, block);
  u32 extra = (count > 0 && start + count == total && !last_block) ? 1u : 0u;
  u32 gb = max(s, p.begin);
  u32 g_first = gb + ((gb - p.begin) & 1u);
  u32 l_end = min(e, p.end) - s;
  u32 chunk = STAGE_WORDS * 4u - 2u;
  for (u32 c0 = g_first - s; c0 < l_end; c0 += chunk) {
    u32 c1 = c0 + chunk + 1u;
    if (c0 != g_first - s) {
      u32 sw = (min(c1, l_end + 1u) - c0 + 3u) / 4u;
      for (u32 i = lid; i < sw; i += WG) stage[i] = 0;
      __syncthreads();
    }
    u32 my_end = start + count + extra;
    if (start < c1 && my_end > c0) {
      Reader d = reader_at(c, block, first_bit);
      u32 l = start, acc = 0, acc_word = NO_WORD;
      u32 l_stop = min(my_end, c1);
      while (l < l_stop) {
        u32 win = peek(d), m = multi[win >> 24], ex, cnt, len;
        if (m != SLOW && l >= c0 && l + (m >> 28) <= l_stop) { ex = m & 0xffffffu; cnt = m >> 28; len = (m >> 24) & 15u; }
        else {
          u32 code = decode(c, win);
          if (code >= DECODE_ERROR) { if (s + l < p.n) flag(status, code & ~DECODE_ERROR, block); break; }
          ex = code & 0xffu; cnt = 1; len = code >> 8;
        }
        if (l >= c0) {
          u32 k = l - c0;
          if ((k >> 2) != acc_word) { if (acc_word != NO_WORD) atomicOr(&stage[acc_word], acc); acc_word = k >> 2; acc = 0; }
          u32 sh = (k & 3u) * 8u;
          acc |= ex << sh;
          if ((k & 3u) + cnt >= 4u) { atomicOr(&stage[acc_word], acc); acc_word += 1; acc = ex >> (32u - sh); }
        }
        advance(c, d, len); l += cnt;
      }
      if (acc_word != NO_WORD && acc != 0) atomicOr(&stage[acc_word], acc);
    }
    __syncthreads();
    u32 lows = (min(l_end, c0 + chunk) - c0 + 1u) / 2u;
    for (u32 j = lid; j < lows; j += WG) {
      u32 g = s + c0 + 2u * j;
      u32 pair = stage[j >> 1] >> ((j & 1u) * 16u);
      u32 lo = bf16(pair & 0xffu, byte_of(sign_mantissa[g >> 2], g));
      u32 hi = 0;
      if (g + 1u < p.end) hi = bf16((pair >> 8) & 0xffu, byte_of(sign_mantissa[(g + 1u) >> 2], g + 1u));
      out[(g - p.begin) >> 1] = lo | (hi << 16);
    }
    __syncthreads();
  }
}
