#!/usr/bin/env bash
# A/B call 1 (session 6): base (main c5c7d93) vs lut2 (vec2 table, branchless tail) vs fgemv (lut2 + fused GEMV kept codes / word steps)
set -uo pipefail
o=$OUT
r() { bash .gpu/run node "$@"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $o/device.txt
for rep in 1 2; do
  for v in base lut2; do
    r dist-bench/$v/decode-bench.mjs --wg 256,512 --scan subgroup --copy-mib 256 > $o/dec-$rep-$v.jsonl 2>>$o/err.txt
  done
done
r dist-bench/lut2/decode-bench.mjs --wg 128 --scan subgroup --copy-mib 64 --layer '' > $o/dec-lut2-wg128.jsonl 2>>$o/err.txt
for v in base fgemv; do
  r dist-bench/$v/decode-bench.mjs --only fused --fused 14336x4096,4096x4096 > $o/fused-$v.jsonl 2>>$o/err.txt
done
r dist-bench/fgemv/forward-bench.mjs --models llama-1b,llama-8b --modes df11 --chunk 512 --kv f16 --resident 0 --fused > $o/fwd-fgemv.jsonl 2>>$o/err.txt
python3 - "$o" <<'PY'
import json,sys,glob,os
for f in sorted(glob.glob(sys.argv[1]+'/*.jsonl')):
  for l in open(f):
    try: d=json.loads(l)
    except: continue
    b=d.get('bench')
    if b=='df11-decode': print(os.path.basename(f),'dec',d['workgroup_size'],d['gbps'],d.get('gpu_gbps'),d['correct'])
    elif b=='df11-decode-layer': print(os.path.basename(f),'layer',{k:v for k,v in d.items() if 'gbps' in k})
    elif b and 'fused' in b: print(os.path.basename(f),b,{k:v for k,v in d.items() if k.endswith('ms') or k in ('rows','cols','workgroup_size','ratio','correct')})
    elif b=='forward' and 'mode' in d: print(os.path.basename(f),d['model'],d['mode'],d.get('resident_percent'),d.get('fused_decode'),d['decode_tok_s'],d.get('record_ms_median'))
PY
