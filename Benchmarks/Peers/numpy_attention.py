#!/usr/bin/env python3
"""Peer for kernel-bench's attention cases: a numpy reference, per head softmax(Q Kᵀ/√D) V.

usage: numpy_attention.py --ours OURS.json --out PEER.json [--min-time 0.5]

Re-runs the attention_forward and attention_decode cases of OURS.json (numpy has no autograd,
so backward cases are not run) with the same shapes and threads: per (batch, head) one
float32 matmul for the scores (OpenBLAS), an additive -inf causal mask, a max-subtracted exp,
a row normalisation and one matmul with V. FLOPs counted exactly as ours (forward 4·B·H·T²·D,
half when causal, although numpy computes the full square; decode 4·B·H·T·D). Each thread count
runs in a child process with OPENBLAS_NUM_THREADS set and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed.
"""
import json, sys

from peer_common import cases_of, parse_args, record, run_children, time_samples, write

PARAMS = ("B", "heads", "kvHeads", "T", "D", "causal")
NAMES = ("attention_forward", "attention_decode")


def child(cases, min_time):
    import numpy as np
    rng = np.random.default_rng(1)
    out = []
    for case in cases:
        B, H, Hkv, T, D = case["B"], case["heads"], case["kvHeads"], case["T"], case["D"]
        decode = case["name"] == "attention_decode"
        causal = bool(case.get("causal", False)) and not decode
        Tq = 1 if decode else T
        q = rng.uniform(-1, 1, (B, H, Tq, D)).astype(np.float32)
        k = rng.uniform(-1, 1, (B, Hkv, T, D)).astype(np.float32)
        v = rng.uniform(-1, 1, (B, Hkv, T, D)).astype(np.float32)
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1) if causal else None
        scale = np.float32(1 / np.sqrt(D))
        o = np.empty((B, H, Tq, D), dtype=np.float32)

        def run():
            for b in range(B):
                for h in range(H):
                    g = h // (H // Hkv)
                    s = (q[b, h] @ k[b, g].T) * scale
                    if mask is not None:
                        s += mask
                    s -= s.max(axis=1, keepdims=True)
                    np.exp(s, out=s)
                    s /= s.sum(axis=1, keepdims=True)
                    np.matmul(s, v[b, g], out=o[b, h])

        run()
        s0 = (q[0, 0].astype(np.float64) @ k[0, 0].T.astype(np.float64)) / np.sqrt(D)
        if causal:
            s0 = s0 + np.triu(np.full((T, T), -np.inf), 1)
        p0 = np.exp(s0 - s0.max(axis=1, keepdims=True))
        ref = (p0 / p0.sum(axis=1, keepdims=True)) @ v[0, 0].astype(np.float64)
        verified = bool(np.allclose(o[0, 0], ref, atol=1e-4))
        samples = time_samples(run, min_time, warmup=1)
        fl = 4.0 * B * H * T * D if decode else 4.0 * B * H * T * T * D * (0.5 if causal else 1.0)
        out.append(record(case, PARAMS, samples, fl, 0.0, gbps=0.0, verified=verified))
    return out


def main():
    args = parse_args(__doc__)
    cases = cases_of(args, NAMES)
    if args.child:
        json.dump(child(cases, args.min_time), sys.stdout)
        return
    try:
        import numpy as np
    except ImportError:
        print("numpy_attention: skipped: numpy not installed")
        return
    results = run_children(__file__, args, cases, "numpy_attention")
    write(args.out, {"tool": "numpy", "version": np.__version__, "results": results})
    for r in results:
        print(f"numpy {r['name']} " + ",".join(f"{k}={r[k]}" for k in PARAMS if k in r) + f" threads={r['threads']}: {r['gflops']} GFLOP/s")


if __name__ == "__main__":
    main()
