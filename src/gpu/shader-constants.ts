/**
 * Numbers both TS and a shader need, declared once: `Gpu.shaderSource` puts each file's entries at the top
 * of shaders/<file>.wgsl (after its leading comments and directives) as WGSL `const NAME: u32 = ...;`
 * declarations, so the .wgsl files name them but never
 * hold a copy (test/shader-constants.test.ts fails if one declares them). Numbers TS picks per pipeline
 * (tile sizes, workgroup sizes of variants, flags) are WGSL `override`s set through `constants` instead.
 */
import { Df11Error } from '../errors.ts';
import { MAX_LINEAR_KEY_HEAD_DIM } from '../format/config.ts';
import { BYTES_PER_BLOCK, GAP_BYTES_PER_BLOCK } from '../format/df11-types.ts';

/** shaders/attention.wgsl: workgroup size, query rows per block, accumulators per invocation. */
export const ATTENTION = { WG: 256, MAX_ROWS: 64, MAX_ACC: 16 } as const;

/**
 * shaders/attention_decode.wgsl: workgroup size, most query heads per KV head, vec4 query slots
 * (4 * Q_VEC floats), most 16-byte K words and 8-byte V units one invocation loads per round.
 */
export const ATTENTION_DECODE = { WG: 256, MAX_GROUP: 8, Q_VEC: 256, K_LOADS: 4, V_LOADS: 8 } as const;

/** shaders/rope.wgsl: the largest head_dim the rope and attention kernels hold in workgroup memory. */
export const ROPE = { MAX_HEAD_DIM: 256 } as const;

/** shaders/matmul_gemv_body.wgsl: most rows per row group. */
export const GEMV = { MAX_ROWS: 8 } as const;

/** shaders/matmul_gemm.wgsl: tokens per tile. */
export const GEMM = { BT: 64 } as const;

/** shaders/activation.wgsl: values of its ACT override. */
export const ACTIVATION = { ACT_NONE: 0, ACT_SILU: 1, ACT_GELU_TANH: 2 } as const;

/** shaders/embed.wgsl: elements per workgroup. */
export const EMBED = { WG: 256 } as const;

/**
 * shaders/df11_stream.wgsl (the stream reader of df11_decode.wgsl and the fused df11_gemv*.wgsl): the status
 * flags its kernels OR into the status word, the stream geometry, and its SLOW table entry.
 */
export const DF11_STREAM = {
  FLAG_LENGTH: 1, // code length 0 or > 32 for a reached symbol
  FLAG_POINTER: 2, // pointer past the decode tables, or a chain deeper than 4 tables
  FLAG_COUNT: 4, // a block's code count disagrees with output_positions
  FLAG_TOKEN: 8, // rows mode: token id >= n_rows
  FLAG_GAP: 16, // a window's gap disagrees with where the previous window's last code ended
  FLAG_STREAM: 32, // a code runs past the end of the stream
  SLOW: 0xffffffff, // lookup-table entry the kernel resolves by walking the LUTs
  BLOCK_BITS: BYTES_PER_BLOCK * 8,
  BLOCK_WORDS: BYTES_PER_BLOCK / 4,
  GAP_BITS_PER_BLOCK: GAP_BYTES_PER_BLOCK * 8,
  KEEP_WORDS: 17, // the count's kept exponent bytes per invocation: 68, every code of a 64-bit span (<= 64) and the next
} as const;

/** shaders/df11_gemv_body.wgsl: invocations per workgroup of the row reduction (`reduce`), one row each. */
export const DF11_GEMV = { REDUCE_WG: 64 } as const;

/**
 * shaders/df11_scan_sg.wgsl (and df11_gemv_sg.wgsl, which includes it): most subgroups of a workgroup, WG <= 512
 * over the smallest subgroup size WebGPU allows, 4 (one total per subgroup; df11_gemv_sg: per row parity).
 */
export const DF11_SCAN_SG = { SLOTS: 512 / 4 } as const;

/** shaders/conv1d.wgsl: invocations per workgroup, one channel each. */
export const CONV1D = { WG: 64 } as const;

/** shaders/output_gate.wgsl: invocations per workgroup, one element each. */
export const OUTPUT_GATE = { WG: 256 } as const;

/** shaders/delta_rule.wgsl: invocations per workgroup, and the largest key head dim its workgroup arrays hold. */
export const DELTA_RULE = { WG: 128, MAX_KEY_DIM: MAX_LINEAR_KEY_HEAD_DIM } as const;

/** The constants each shader file receives, by file name (shaders/<name>.wgsl). */
export const SHADER_CONSTANTS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  attention: ATTENTION,
  attention_decode: ATTENTION_DECODE,
  rope: ROPE,
  matmul_gemv_body: GEMV,
  matmul_gemm: GEMM,
  activation: ACTIVATION,
  embed: EMBED,
  df11_stream: DF11_STREAM,
  df11_gemv_body: DF11_GEMV,
  df11_scan_sg: DF11_SCAN_SG,
  conv1d: CONV1D,
  output_gate: OUTPUT_GATE,
  delta_rule: DELTA_RULE,
};

/** WGSL declarations of shaders/<file>.wgsl's shared constants ('' when it has none). */
export function constantDeclarations(file: string): string {
  const constants = SHADER_CONSTANTS[file];
  if (!constants) return '';
  const lines = Object.entries(constants).map(([name, value]) => {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Df11Error('internal', `shader constant ${file}.${name} = ${value} is not a u32`);
    return `const ${name}: u32 = ${value}u;`;
  });
  return `// from src/gpu/shader-constants.ts\n${lines.join('\n')}\n`;
}
