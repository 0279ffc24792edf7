/**
 * Forward benchmark in Node: prefill and decode tokens/s of the GPU forward in BF16 and DF11 weight modes
 * (stories-15m, synthetic Llama 1B and 8B shapes), long-context and attention suites. The measuring core and
 * the options are bench/forward-suite.ts (read its header), shared with the bench page (bench.html).
 *
 *   npx tsx bench/forward-bench.ts --small          # smoke test on SwiftShader (tiny synthetic model)
 *   node bench/build.mjs && bash .gpu/run node dist-bench/forward-bench.mjs   # on the GPU machine
 *   node dist-bench/forward-bench.mjs --suites context,attention --models llama-1b
 *   npx tsx bench/forward-bench.ts --small --models tiny-1b --resident 0,100   # a 1B step's host recording (record_ms_median)
 *
 * stories-15m comes from models/stories-15m or, when that is absent (a checkout trimmed to travel to the GPU
 * machine), from test/fixtures/official-df11/stories-15m or the app build's DF11 copy (dist/models, the one
 * the bench page reads).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openModel } from '../src/format/model-reader.ts';
import { directoryFiles } from '../src/format/node-files.ts';
import { createNodeGpu } from '../src/gpu/node.ts';
import { FORWARD_OPTIONS, runForwardBench } from './forward-suite.ts';
import { stringOption } from './options.ts';
import { reportFrom, BENCH_DAWN_FLAGS } from './gpu-timing.ts';
import { benchShaders } from './shaders.ts';

const { values } = parseArgs({ options: FORWARD_OPTIONS });
const dir = ['models/stories-15m', 'test/fixtures/official-df11/stories-15m', 'dist/models/stories-15m-df11'].find((d) => existsSync(`${d}/model.safetensors`));
const dawnFeatures = stringOption(values, 'dawn-features');
const gpu = await createNodeGpu({ shaders: benchShaders }, dawnFeatures ? [...BENCH_DAWN_FLAGS, `enable-dawn-features=${dawnFeatures}`] : BENCH_DAWN_FLAGS);
reportFrom(gpu, 'node', undefined, dawnFeatures ? { dawn_features: dawnFeatures } : {});
await runForwardBench(gpu, values, dir ? { source: dir, open: async () => openModel(directoryFiles(dir)) } : undefined);
gpu.destroy();
