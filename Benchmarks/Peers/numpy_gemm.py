#!/usr/bin/env python3
"""Peer for kernel-bench's sgemm/sgemv cases: numpy matmul (OpenBLAS) on the same shapes and threads.

usage: numpy_gemm.py --ours OURS.json --out PEER.json [--min-time 0.5]

Each thread count runs in a child process with OPENBLAS_NUM_THREADS set and OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE removed (they pin old OpenBLAS kernels on some machines and slow current ones).
"""
import json, sys

from peer_common import cases_of, parse_args, record, run_children, time_samples, write

PARAMS = ("m", "n", "k", "transA", "transB", "cache")


def child(cases, min_time):
    import numpy as np
    out = []
    rng = np.random.default_rng(1)
    for case in cases:
        m, n, k, ta, tb = case["m"], case["n"], case["k"], case["transA"], case["transB"]
        cold = case.get("cache") == "cold"
        a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
        copies = max(1, (256 << 20) // (4 * k * n)) if cold else 1
        bs = [rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32) for _ in range(copies)]
        c = np.empty((m, n), dtype=np.float32)
        A = a.T if ta else a
        Bs = [b.T if tb else b for b in bs]
        calls = [0]

        def run():
            np.matmul(A, Bs[calls[0] % copies], out=c)
            calls[0] += 1
        samples = time_samples(run, min_time)
        out.append(record(case, PARAMS, samples, 2.0 * m * n * k, 4.0 * (m * k + k * n + m * n)))
    return out


def main():
    args = parse_args(__doc__)
    cases = cases_of(args, ("sgemm", "sgemv"))
    if args.child:
        json.dump(child(cases, args.min_time), sys.stdout)
        return
    try:
        import numpy as np
    except ImportError:
        print("numpy_gemm: skipped: numpy not installed")
        return
    results = run_children(__file__, args, cases, "numpy_gemm")
    config = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    blas = config.get("Build Dependencies", {}).get("blas", {}) if isinstance(config, dict) else {}
    write(args.out, {"tool": "numpy", "version": f"numpy {np.__version__}, {blas.get('name', '?')} {blas.get('version', '')}".strip(),
                     "results": results})


if __name__ == "__main__":
    main()
