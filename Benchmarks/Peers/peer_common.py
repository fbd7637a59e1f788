"""Shared scaffolding of the kernel peer scripts (imported, not run).

Every peer re-runs the cases of a kernel-bench JSON file that it knows, one child process per
thread count, so that each child sets its library's thread count before importing it, and with
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (they pin old OpenBLAS kernels on some machines).
"""
import argparse, json, os, statistics, subprocess, sys, time


def parse_args(doc):
    """--ours OURS.json --out PEER.json [--min-time S]; --child and --threads are internal."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--ours", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    return ap.parse_args()


def cases_of(args, names):
    """The cases of --ours named in `names` (only the child's thread count in a child)."""
    cases = [r for r in json.load(open(args.ours))["results"] if r["name"] in names]
    return [c for c in cases if c["threads"] == args.threads] if args.child else cases


def time_samples(fn, min_time, warmup=3):
    """Seconds per call of `fn` after `warmup` calls, until at least 5 samples and `min_time` elapsed."""
    for _ in range(warmup):
        fn()
    samples, start = [], time.perf_counter()
    while len(samples) < 5 or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def record(case, params, samples, flops, nbytes, **extra):
    """A result in kernel-bench's schema: the case's parameters, timings, GFLOP/s and GB/s of the median."""
    med = statistics.median(samples)
    r = {key: case[key] for key in params if key in case}
    r.update(name=case["name"], threads=case["threads"], iterations=len(samples),
             minNs=int(min(samples) * 1e9), medianNs=int(med * 1e9),
             gflops=round(flops / med / 1e9, 2), gbps=round(nbytes / med / 1e9, 2))
    r.update(extra)
    return r


def run_children(script, args, cases, label):
    """Runs `script --child` once per thread count of `cases`; returns the concatenated results."""
    results = []
    for threads in sorted({c["threads"] for c in cases}):
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
        print(f"{label}: {sum(c['threads'] == threads for c in cases)} cases with {threads} threads", file=sys.stderr)
        proc = subprocess.run([sys.executable, script, "--child", "--threads", str(threads), "--ours", args.ours,
                               "--out", args.out, "--min-time", str(args.min_time)],
                              env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"{label}: child with {threads} threads failed (see its messages above)")
        results += json.loads(proc.stdout)
    return results


def write(path, doc):
    """Writes the peer's JSON through a temporary file and a rename."""
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)
