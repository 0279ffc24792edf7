#!/usr/bin/env bash
# The benchmark batch for one call to the GPU machine (see bench/RESULTS.md for how it gets there):
# every suite's JSON lines into $OUT (or bench/runs/latest), a short table last.
#   node bench/build.mjs && ../shared/gpu/pack.sh      # here: dist-bench/*.mjs and .gpu/
#   bash bench/gpu-run.sh                               # there, carrying .gpu and dist-bench
# SUITES (default: all) picks a subset: decode matmul forward context attention kernels (a call runs at most 10
# minutes: two calls, e.g. SUITES='decode matmul forward' then SUITES='context attention'); 'linear' (Qwen3.5's
# Gated DeltaNet kernels, seconds) runs only when named.
# SUITES=chromium (never in the default; bench/CHROMIUM.md): decode + forward in Node and in Chromium in one
# call, their ratios, and the chat demo; needs dist/ (with bench.html), node_modules/playwright-core and
# CHROMIUM_PATH.
# SUITES=overlap (never in the default): does the GPU run a DF11 layer decode beside the GEMVs of another layer
# when both are in one pass (bench/overlap-bench.ts; 1B and 8B layer shapes).
# SUITES=fused (never in the default): the fused DF11 decode + GEMV against decode + GEMV and the BF16 GEMV
# (14336x4096, 4096x4096), then 1B/8B decode tok/s of BF16, DF11 and DF11 fused (--fused) in one run.
set -uo pipefail
out=${OUT:-bench/runs/latest}
mkdir -p "$out"
suites=${SUITES:-decode matmul forward context attention kernels}
node_run() { bash .gpu/run node "$@"; }
has() { [[ " $suites " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | tee "$out/device.txt"
has decode && node_run dist-bench/decode-bench.mjs --copy-mib 256 | tee "$out/decode.jsonl"
has matmul && node_run dist-bench/matmul-bench.mjs --copy-mib 256 | tee "$out/matmul.jsonl" | grep -E '"gemv-summary"|"bench":"gemm"'
has forward && node_run dist-bench/forward-bench.mjs --models llama-1b,llama-8b --modes bf16,df11 --chunk 512 --kv f16 --resident 0,25,50,100 | tee "$out/forward.jsonl"
has context && node_run dist-bench/forward-bench.mjs --suites context --models llama-1b --kv f16 --modes bf16,df11 --decode 16 | tee "$out/context-1b.jsonl"
has context && node_run dist-bench/forward-bench.mjs --suites context --models llama-1b --kv f32 --modes bf16 --decode 16 --prefill-contexts 4096 | tee "$out/context-1b-f32.jsonl"
has context && node_run dist-bench/forward-bench.mjs --suites context --models llama-8b --kv f16 --modes bf16 --decode 16 --prefill-contexts 4096 | tee "$out/context-8b.jsonl"
has attention && node_run dist-bench/forward-bench.mjs --suites attention --models llama-1b,llama-8b --kv f32,f16 | tee "$out/attention.jsonl"
has kernels && node_run dist-bench/forward-bench.mjs --suites kernels --models llama-1b,llama-8b --kv f16 | tee "$out/kernels.jsonl"
if has chromium; then
  cmp=(--models stories-15m,llama-1b --modes bf16,df11 --chunk 64,512 --kv f16 --resident 0,100 --copy-mib 256)
  query=bench=decode,forward
  for ((i = 0; i < ${#cmp[@]}; i += 2)); do query+="&${cmp[i]#--}=${cmp[i + 1]}"; done
  node_run dist-bench/decode-bench.mjs --copy-mib 256 > "$out/node-decode.jsonl"
  node_run dist-bench/forward-bench.mjs "${cmp[@]}" > "$out/node-forward.jsonl"
  node_run bench/chromium-run.mjs --chromium "${CHROMIUM_PATH:?set CHROMIUM_PATH}" --query "$query" \
    --gpu-info "$out/chrome-gpu.txt" --out "$out/chromium.jsonl" --screenshot "$out/chromium-chat.png"
  node_run bench/chromium-compare.mjs "$out/node-decode.jsonl" "$out/node-forward.jsonl" -- "$out/chromium.jsonl" | tee "$out/chromium-vs-node.md"
fi
has fused && node_run dist-bench/decode-bench.mjs --only fused --fused 14336x4096,4096x4096 | tee "$out/fused-gemv.jsonl"
has fused && node_run dist-bench/forward-bench.mjs --models llama-1b,llama-8b --modes bf16,df11 --chunk 512 --kv f16 --resident 0,50 --fused | tee "$out/forward-fused.jsonl"
has overlap && node_run dist-bench/overlap-bench.mjs | tee "$out/overlap.jsonl"
has overlap && node_run dist-bench/overlap-bench.mjs --layer 4096x1024x14336 | tee -a "$out/overlap.jsonl"
has linear && node_run dist-bench/linear-attention-bench.mjs | tee "$out/linear-attention.jsonl"
exit 0
