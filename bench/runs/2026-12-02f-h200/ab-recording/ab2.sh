#!/usr/bin/env bash
# A/B call 2 (session 6): host recording, base (4f8d998) vs rec (de8971b, helper's packing changes), and rec with Dawn's skip_validation
set -uo pipefail
o=$OUT
r() { bash .gpu/run node "$@"; }
a=(--models llama-1b,tiny-1b --modes bf16,df11 --chunk 512 --kv f16 --resident 0,100)
r dist-bench/base/forward-bench.mjs --models llama-1b --modes bf16,df11 --chunk 512 --kv f16 --resident 0,100 > $o/fwd-base.jsonl 2>>$o/err.txt
r dist-bench/rec/forward-bench.mjs "${a[@]}" > $o/fwd-rec.jsonl 2>>$o/err.txt
r dist-bench/rec/forward-bench.mjs "${a[@]}" --dawn-features skip_validation > $o/fwd-rec-skipval.jsonl 2>>$o/err.txt
r dist-bench/base/forward-bench.mjs --models llama-1b --modes bf16,df11 --chunk 512 --kv f16 --resident 100 > $o/fwd-base-2.jsonl 2>>$o/err.txt
r dist-bench/rec/forward-bench.mjs --models llama-1b --modes bf16,df11 --chunk 512 --kv f16 --resident 100 > $o/fwd-rec-2.jsonl 2>>$o/err.txt
python3 - "$o" <<'PY'
import json,sys,glob,os
for f in sorted(glob.glob(sys.argv[1]+'/*.jsonl')):
  for l in open(f):
    try: d=json.loads(l)
    except: continue
    if d.get('bench')=='forward' and 'mode' in d: print(os.path.basename(f),d['model'][10:],d['mode'],d.get('resident_percent'),d['decode_tok_s'],'ms',d['decode_ms_median'],'rec',d.get('record_ms_median'),d['planned_bytes']==d['allocated_bytes'])
PY
