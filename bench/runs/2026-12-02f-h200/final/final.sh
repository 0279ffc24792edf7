#!/usr/bin/env bash
# Final call (session 6): the quoted figures at main. Bundles in dist-bench/ (node bench/build.mjs).
set -uo pipefail
o=$OUT
r() { bash .gpu/run node "$@"; }
OUT=$o SUITES='decode forward' bash bench/gpu-run.sh > $o/log.txt 2>&1
r dist-bench/decode-bench.mjs --only fused --fused 14336x4096,4096x4096 --wg 256,512 > $o/fused-gemv.jsonl 2>>$o/err.txt
r dist-bench/forward-bench.mjs --models llama-1b,llama-8b --modes df11 --chunk 512 --kv f16 --resident 0 --fused > $o/forward-fused.jsonl 2>>$o/err.txt
r dist-bench/forward-bench.mjs --models llama-1b --modes bf16,df11 --chunk 512 --kv f16 --resident 100 > $o/forward-1b-repeat.jsonl 2>>$o/err.txt
python3 - "$o" <<'PY'
import json,sys,glob,os
for f in sorted(glob.glob(sys.argv[1]+'/*.jsonl')):
  for l in open(f):
    try: d=json.loads(l)
    except: continue
    b=d.get('bench'); n=os.path.basename(f)
    if b=='df11-decode': print(n,'dec',d['workgroup_size'],d['scan'],d['gbps'],d.get('gpu_gbps'),d['correct'])
    elif b=='df11-decode-layer': print(n,'layer',d['merged_gbps'],d.get('gpu_merged_gbps'),d['per_matrix_gbps'])
    elif b=='webgpu-copy': print(n,'copy',d['method'],d['gbps_rw'],d.get('gpu_gbps_rw'))
    elif b=='df11-gemv-fused': print(n,'fused',d['rows'],d['cols'],d['workgroup_size'],d['subgroups'],d['fused_ms'],d['decode_gemv_ms'],d['bf16_gemv_ms'],d.get('gpu_fused_ms'),d.get('gpu_decode_gemv_ms'),d['correct'])
    elif b=='forward' and 'mode' in d: print(n,d['model'][10:],d['mode'],d.get('resident_percent'),'fused' if d.get('fused_decode') else '',d['decode_tok_s'],'rec',d.get('record_ms_median'),'split',d.get('df11_decode_only_ms'),d.get('per_layer_ms'),'pre',d['prefill_tok_s'],d['planned_bytes']==d['allocated_bytes'])
    elif b=='forward': print(n,d['model'][10:],'ratios',d.get('df11_over_bf16_decode_by_resident_percent'))
PY
