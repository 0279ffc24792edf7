// Fused DFloat11 decode + GEMV for one token, included by df11_gemv.wgsl and df11_gemv_sg.wgsl (which
// define `row_total`: the workgroup's sum of one row's per-invocation products, and include span_prefix):
// out[r] = [out[r] +] sum_k W[r, k] * xin[k] [+ bias[r]] for one matrix W (rows, cols) of a DF11 unit,
// without writing W in BF16 anywhere. Two entry points:
//   main:   one workgroup per stream block holding elements of W (df11_stream.wgsl: count, stage). For each
//           row the block touches, the workgroup sums w * xin over the row's elements in the block (in
//           chunks as staged) and writes one partial: partials[r + b - first_block] (unique: the rows of
//           block b + 1 start at or after the last row of block b).
//   reduce: one invocation per row adds its partials in block order (output_positions says which blocks
//           hold the row), then bias and the residual, and stores out[r].
// xin is x, or with ACT != 0 a gated MLP's act(gate) * up (activation.wgsl; gate | up per token, as in
// matmul_common.wgsl). The sum order differs from the GEMV's (decode then matmul_gemv*): results agree
// within f32 summation error, not bit for bit; the decoded weights themselves are exact.
// Corrupt streams set the same status flags as df11_decode.wgsl.
// #include df11_stream
// #include activation

// REDUCE_WG (invocations per workgroup of `reduce`): declared from src/gpu/shader-constants.ts (DF11_GEMV).

struct Params {
  n: u32,            // elements in the unit
  n_bytes: u32,      // bytes of the encoded exponent stream
  n_blocks: u32,     // ceil(n_bytes / 4096)
  n_tables: u32,     // k: k-1 decode tables, then the code-length table
  first_block: u32,  // block holding the matrix's first element
  work_items: u32,   // blocks holding elements of the matrix
  begin: u32,        // first element of the matrix in the unit
  rows: u32,
  cols: u32,
  x_offset: u32,     // element of xin's column 0 in x (with ACT: of the gate)
  out_offset: u32,   // element of row 0 in out
  bias: u32,         // 1: add bias[bias_offset + r]
  bias_offset: u32,
  accumulate: u32,   // 1: add to what out holds (residual connection)
}

@group(0) @binding(0) var<uniform> params: Params;
// bindings 1..5 and 7: the unit's arrays and the status word (df11_stream.wgsl)
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;  // (rows + work_items) row sums per block
@group(0) @binding(8) var<storage, read> x: array<f32>;               // (cols), with ACT (2 * cols) from x_offset
@group(0) @binding(9) var<storage, read> bias: array<f32>;            // (rows) from bias_offset
@group(0) @binding(10) var<storage, read_write> out: array<f32>;      // (rows) from out_offset

struct Job {
  valid: u32,
  block: u32,
  s: u32,  // block's elements are [s, e)
  e: u32,
}

var<workgroup> job: Job;

fn resolve_job(item: u32) -> Job {
  var j = Job(0u, 0u, 0u, 0u);
  if (item >= params.work_items) { return j; }
  j.block = params.first_block + item;
  j.s = output_positions[j.block];
  j.e = output_positions[j.block + 1u];
  if (j.e < j.s || j.e - j.s > MAX_BLOCK_ELEMENTS) {
    flag(FLAG_COUNT, j.block);
    return j;
  }
  j.valid = u32(max(j.s, params.begin) < min(j.e, params.begin + params.rows * params.cols));
  return j;
}

fn xin(k: u32) -> f32 {
  let i = params.x_offset + k;
  if (ACT == 0u) {
    return x[i];
  }
  return act(x[i]) * x[i + params.cols];
}

/**
 * Sum over the 4 elements of one stage word (exponent bytes `exps`) of w * xin, for those in row r: stage
 * bytes k..k+3 of [a, b), matrix elements q..q+3.
 */
fn word_dot(q: u32, r: u32, k: u32, a: u32, b: u32, exps: u32) -> f32 {
  let g = q + params.begin;  // unit element of stage byte k
  let sm = sm_bytes(g, sm_word(g >> 2u), sm_word((g >> 2u) + 1u));
  let lo = bf16_pair(exps, sm);              // elements q, q + 1
  let hi = bf16_pair(exps >> 16u, sm >> 16u);  // q + 2, q + 3
  let w = vec4<f32>(bitcast<f32>(lo << 16u), bitcast<f32>(lo & 0xffff0000u), bitcast<f32>(hi << 16u), bitcast<f32>(hi & 0xffff0000u));
  let col = q - r * params.cols;
  var sum = 0.0;
  for (var i = 0u; i < 4u; i++) {
    if (k + i >= a && k + i < b) { sum += w[i] * xin(col + i); }
  }
  return sum;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) { job = resolve_job(wid.x + wid.y * groups.x); }
  let w = workgroupUniformLoad(&job);
  if (w.valid == 0u) { return; }
  let sp = count_block(w.block, w.s, w.e, lid);

  let cols = params.cols;
  let slot = w.block - params.first_block;
  // block-local elements of the matrix: [lb, le)
  let lb = max(w.s, params.begin) - w.s;
  let le = min(w.e, params.begin + params.rows * cols) - w.s;
  let cap = STAGE_WORDS * 4u;
  // invocation 0 carries the open row's sum across chunks
  var row = 0xffffffffu;
  var sum = 0.0;
  for (var c0 = lb; c0 < le; c0 += cap) {
    let c1 = min(c0 + cap, le);
    if (c0 != lb) { clear_stage((c1 - c0 + 3u) / 4u, lid); }
    if (sp.start < c1 && sp.start + sp.count > c0) {
      stage_span(w.block, w.s, sp, c0, min(sp.start + sp.count, c1));
    }
    workgroupBarrier();
    // matrix elements [q0, q1) are staged at stage bytes 0..q1-q0
    let q0 = w.s + c0 - params.begin;
    let q1 = w.s + c1 - params.begin;
    for (var r = q0 / cols; r <= (q1 - 1u) / cols; r++) {
      // row r's elements are stage bytes [a, b); each invocation takes whole stage words (4 elements)
      let a = max(q0, r * cols) - q0;
      let b = min(q1, (r + 1u) * cols) - q0;
      var acc = 0.0;
      for (var j = a / 4u + lid; 4u * j < b; j += WG) {
        acc += word_dot(q0 + 4u * j, r, 4u * j, a, b, atomicLoad(&stage[j]));
      }
      let total = row_total(acc, lid, r);
      if (lid == 0u) {
        if (r != row) {
          if (row != 0xffffffffu) { partials[row + slot] = sum; }
          row = r;
          sum = 0.0;
        }
        sum += total;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u && row != 0xffffffffu) { partials[row + slot] = sum; }
}

@compute @workgroup_size(REDUCE_WG)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let r = gid.x + gid.y * groups.x * REDUCE_WG;
  if (r >= params.rows) { return; }
  let first = params.begin + r * params.cols;
  let b0 = block_of(first);
  let b1 = block_of(first + params.cols - 1u);
  var v = 0.0;
  for (var b = b0; b <= b1; b++) {
    v += partials[r + b - params.first_block];
  }
  if (params.bias == 1u) {
    v += bias[params.bias_offset + r];
  }
  let o = params.out_offset + r;
  if (params.accumulate == 1u) {
    v = out[o] + v;
  }
  out[o] = v;
}
