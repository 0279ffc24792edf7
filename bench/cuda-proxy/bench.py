# CUDA proxy of the WGSL DF11 decode kernel (decode.cu): GB/s of BF16 output on an NVIDIA GPU, one JSON
# line per result. Data from export-unit.ts (the unit's stream, gaps, output positions, LUTs and an
# exponent hash); sign/mantissa bytes are random here (raw bytes: they do not change the decode work).
#   npx tsx bench/cuda-proxy/export-unit.ts dist-bench/cuda-proxy 4096     # here
#   python3 bench/cuda-proxy/bench.py dist-bench/cuda-proxy               # on the GPU machine (CuPy)
# The unit is decoded as is (output checked: exponent hash + sign/mantissa) and tiled 4x (whole blocks,
# ~5300 blocks like 14336 x 4096; the seams decode padding, so their count flags are expected).
import json, os, sys
import numpy as np, cupy as cp

here = os.path.dirname(os.path.abspath(__file__))
data = sys.argv[1]
meta = json.load(open(f"{data}/meta.json"))
src = open(f"{here}/decode.cu").read()
load = lambda name, dtype=np.uint8: np.fromfile(f"{data}/{name}", dtype=dtype)
stream_b, gaps_b, outpos, luts_b = load("stream.bin"), load("gaps.bin"), load("outpos.bin", np.uint32), load("luts.bin")
n, nbytes, nblocks, k = meta["n"], meta["nBytes"], meta["nBlocks"], meta["k"]


def words(b):
    return np.frombuffer(np.concatenate([b, np.zeros((-len(b)) % 4, np.uint8)]).tobytes(), np.uint32)


def run(wg, stream_b, gaps_b, outpos, n, nbytes, nblocks, check=None, iters=20, warm=3):
    kern = cp.RawModule(code=src, options=(f"-DWG={wg}", "-arch=sm_90")).get_function("decode_kernel")
    st, gp, op, lt = (cp.asarray(x) for x in (words(stream_b), words(gaps_b), outpos, words(luts_b)))
    sm = cp.asarray(np.random.default_rng(1).integers(0, 2**32, size=(n + 3) // 4, dtype=np.uint32))
    out = cp.zeros((n + 1) // 2, cp.uint32)
    status = cp.array([0, 0xFFFFFFFF], cp.uint32)
    u = np.uint32
    args = (st, sm, lt, gp, op, out, status, u(n), u(nbytes), u(nblocks), u(k), u(0), u(nblocks), u(0), u(n))
    for _ in range(warm):
        kern((nblocks,), (wg,), args)
    ev0, ev1, ts = cp.cuda.Event(), cp.cuda.Event(), []
    for _ in range(iters):
        ev0.record(); kern((nblocks,), (wg,), args); ev1.record(); ev1.synchronize()
        ts.append(cp.cuda.get_elapsed_time(ev0, ev1))
    ms = float(np.median(ts))
    res = {"bench": "df11-decode-cuda-proxy", "device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
           "workgroup_size": wg, "elements": n, "blocks": nblocks, "median_ms": round(ms, 4),
           "gbps": round(n * 2 / (ms * 1e6), 1), "status_flags": int(status.get()[0])}
    if check is not None:
        o = out.get().view(np.uint16)[:n].astype(np.uint64)
        idx = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
        sm8 = sm.get().view(np.uint8)[:n].astype(np.uint64)
        res["correct"] = int(np.sum(((o >> 7) & 0xFF) * idx, dtype=np.uint64)) == int(check) and bool(
            np.all((o & 0x807F) == (((sm8 & 0x80) << 8) | (sm8 & 0x7F))))
    print(json.dumps(res), flush=True)


for wg in (256, 512):
    run(wg, stream_b, gaps_b, outpos, n, nbytes, nblocks, check=meta["expHash"])
T = 4
padded = np.concatenate([stream_b, np.zeros(nblocks * 4096 - nbytes, np.uint8)])
tiled_op = np.concatenate([outpos[:-1].astype(np.uint64) + t * n for t in range(T)] + [np.array([T * n], np.uint64)]).astype(np.uint32)
for wg in (256, 512):
    run(wg, np.tile(padded, T), np.tile(gaps_b[: nblocks * 320], T), tiled_op, T * n, T * nblocks * 4096, T * nblocks)
