#!/usr/bin/env node
// Chromium / Node ratios of the same benchmark figures, from JSON lines measured in one call:
//   node bench/chromium-compare.mjs node-decode.jsonl node-forward.jsonl -- chromium.jsonl
// Lines are matched by benchmark and shape (decode: rows, cols, workgroup size; copy: method, bytes; forward:
// model, mode, prefill chunk, resident percent); the first line of each key counts. Prints a Markdown table.
import { readFileSync } from 'node:fs';

const FIGURES = {
  'df11-decode': { key: ['rows', 'cols', 'workgroup_size'], figures: ['gbps', 'gpu_gbps'] },
  'df11-decode-summary': { key: ['elements'], figures: ['decode_gbps', 'shader_copy_gbps_rw'] },
  'webgpu-copy': { key: ['method', 'bytes'], figures: ['gbps_rw', 'gpu_gbps_rw'] },
  forward: { key: ['model', 'mode', 'prefill_chunk', 'resident_percent'], figures: ['prefill_tok_s', 'decode_tok_s'] },
};

const args = process.argv.slice(2);
const split = args.indexOf('--');
if (split < 1 || split === args.length - 1) {
  console.error('usage: node bench/chromium-compare.mjs NODE.jsonl... -- CHROMIUM.jsonl...');
  process.exit(2);
}

/** Figures by "bench key figure" from JSON-lines files (the first occurrence of each). */
function figures(files) {
  const out = new Map();
  const adapters = new Set();
  for (const file of files) {
    for (const text of readFileSync(file, 'utf8').split('\n')) {
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text);
      const spec = FIGURES[line.bench];
      if (!spec || line.skipped) continue;
      if (line.adapter_info) adapters.add(`${line.runtime}: ${Object.values(line.adapter_info).filter(Boolean).join(' ')}`);
      const key = spec.key.map((k) => line[k]).filter((v) => v !== undefined).join(' ');
      for (const f of spec.figures) {
        const id = `${line.bench}|${key}|${f}`;
        if (typeof line[f] === 'number' && !out.has(id)) out.set(id, line[f]);
      }
    }
  }
  return { out, adapters };
}

const node = figures(args.slice(0, split));
const chrome = figures(args.slice(split + 1));
for (const a of [...node.adapters, ...chrome.adapters]) console.log(`- ${a}`);
console.log('\n| bench | shape | figure | Node | Chromium | Chromium / Node |\n| --- | --- | --- | ---: | ---: | ---: |');
for (const [id, n] of node.out) {
  const c = chrome.out.get(id);
  if (c === undefined) continue;
  const [bench, key, figure] = id.split('|');
  console.log(`| ${bench} | ${key} | ${figure} | ${n} | ${c} | ${(c / n).toFixed(3)} |`);
}
