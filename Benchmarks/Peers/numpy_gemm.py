#!/usr/bin/env python3
"""Peer for kernel-bench's sgemm/sgemv cases: numpy matmul (OpenBLAS) on the same shapes and threads.

usage: numpy_gemm.py --ours OURS.json --out PEER.json [--min-time 0.5]

Each thread count runs in a child process with OPENBLAS_NUM_THREADS set and OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE removed (they pin old OpenBLAS kernels on some machines and slow current ones).
"""
import argparse, json, os, statistics, subprocess, sys, time

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
        for i in range(3):
            np.matmul(A, Bs[i % copies], out=c)
        samples, start, i = [], time.perf_counter(), 0
        while len(samples) < 5 or time.perf_counter() - start < min_time:
            t0 = time.perf_counter()
            np.matmul(A, Bs[i % copies], out=c)
            samples.append(time.perf_counter() - t0)
            i += 1
        med = statistics.median(samples)
        flops = 2.0 * m * n * k
        r = {key: case[key] for key in PARAMS if key in case}
        r.update(name=case["name"], threads=case["threads"], iterations=len(samples),
                 minNs=int(min(samples) * 1e9), medianNs=int(med * 1e9),
                 gflops=round(flops / med / 1e9, 2), gbps=round(4.0 * (m * k + k * n + m * n) / med / 1e9, 2))
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    ours = json.load(open(args.ours))
    cases = [r for r in ours["results"] if r["name"] in ("sgemm", "sgemv")]
    if args.child:
        json.dump(child(cases, args.min_time), sys.stdout)
        return
    try:
        import numpy as np
    except ImportError:
        print("numpy_gemm: skipped: numpy not installed")
        return
    results = []
    for threads in sorted({c["threads"] for c in cases}):
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        env["OPENBLAS_NUM_THREADS"] = str(threads)
        mine = [c for c in cases if c["threads"] == threads]
        tmp = args.out + f".cases{threads}.json"
        with open(tmp, "w") as f:
            json.dump({"results": mine}, f)
        print(f"numpy_gemm: {len(mine)} cases with {threads} OpenBLAS threads", file=sys.stderr)
        proc = subprocess.run([sys.executable, __file__, "--child", "--ours", tmp, "--out", "-",
                               "--min-time", str(args.min_time)], env=env, capture_output=True, text=True)
        os.unlink(tmp)
        if proc.returncode != 0:
            sys.exit(f"numpy_gemm: child failed:\n{proc.stderr}")
        results += json.loads(proc.stdout)
    config = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    blas = config.get("Build Dependencies", {}).get("blas", {}) if isinstance(config, dict) else {}
    doc = {"tool": "numpy", "version": f"numpy {np.__version__}, {blas.get('name', '?')} {blas.get('version', '')}".strip(),
           "results": results}
    with open(args.out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
