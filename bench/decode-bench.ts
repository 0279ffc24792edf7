/**
 * DF11 GPU decode benchmark in Node (the measuring core is bench/decode-suite.ts, shared with the bench
 * page bench.html): one unit of N(0, 0.02) BF16 weights decoded repeatedly, beside the device's WebGPU
 * copy bandwidth. Prints one JSON line per result.
 *
 *   npx tsx bench/decode-bench.ts --rows 512 --copy-mib 64        # smoke test (SwiftShader here)
 *   node bench/build.mjs && bash .gpu/run node dist-bench/decode-bench.mjs   # on the GPU machine
 *
 * Options: --rows R --cols C (matrix shape), --iters N (timed repetitions, >= 20), --batch B (decodes
 * per submit), --wg 256,512 (workgroup sizes to try; those the device allows), --scan subgroup,workgroup
 * (span prefix sums to try; subgroup only where the device has `subgroups`), --layer HxKVxI (a Llama layer
 * unit decoded per matrix vs as merged ranges; default 2048x512x8192, '' skips), --copy-mib M,
 * --fused 14336x4096,4096x4096 (fused decode + GEMV lines for these shapes), --only decode|fused.
 *   node dist-bench/decode-bench.mjs --only fused        # fused decode + GEMV vs decode + GEMV vs BF16 GEMV
 */
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../src/gpu/node.ts';
import { DECODE_OPTIONS, runDecodeBench } from './decode-suite.ts';
import { reportFrom, BENCH_DAWN_FLAGS } from './gpu-timing.ts';
import { benchShaders } from './shaders.ts';

const { values } = parseArgs({ options: DECODE_OPTIONS });
const gpu = await createNodeGpu({ shaders: benchShaders }, BENCH_DAWN_FLAGS);
reportFrom(gpu, 'node');
await runDecodeBench(gpu, values);
gpu.destroy();
