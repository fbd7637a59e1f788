#!/usr/bin/env python3
"""Peer for the engine benchmark: llama.cpp's llama-bench on SmolLM2-135M-Instruct (F32, F16, Q4_1 GGUFs).

usage: llamacpp_bench.py [--out PEER.json] [--ours OURS.json] [--threads 2] [--weights F32,F16,Q4_1]
                         [--prompt 512] [--gen 128] [--repetitions 5]
                         [--llama-cpp-dir D] [--models-dir M]
Runs `llama-bench -m <gguf> -t T -p 512 -n 128 -r 5 -o json` once per weight type and writes
  {"tool": "llama.cpp", "version": <commit>, "results": [{"name": "pp512" | "tg128", "weights": "F32", "threads": 2,
   "tokensPerSecond": ..., "stddevTokensPerSecond": ..., "repetitions": 5, "loadAverage1m": ...}]}
With --ours, runs exactly the cases of OURS.json named pp<N> / tg<N> (same threads; same weights when a
row names them, else every type of --weights: engine-bench measures one file) and skips cleanly when it has none (so Benchmarks/run.sh may call it with a kernel-bench file).
llama.cpp is found with --llama-cpp-dir or LLAMA_CPP_DIR (binary build/bin/llama-bench), the GGUFs with
--models-dir or MODELS_DIR (see llamacpp_common.py); when either is missing the script prints
"skipped: ..." and exits 0. F32/F16 GGUFs are made from the Q4_1 one with
  llama-quantize --allow-requantize SmolLM2-135M-Instruct.Q4_1.gguf SmolLM2-135M-Instruct.F32.gguf F32
"""
import argparse, json, os, re, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llamacpp_common as lc


def skip(msg):
    print(f"llamacpp_bench: skipped: {msg}")
    sys.exit(0)


def cases_from_ours(path, weights):
    """pp<N>/tg<N> rows of OURS.json; a row without a "weights" field (engine-bench measures one file)
    is compared with every weight type in `weights`, the peer's best being the reference."""
    ours = json.load(open(path))
    out = []
    for r in ours.get("results", []):
        m = re.fullmatch(r"(pp|tg)(\d+)", str(r.get("name", "")))
        if not m:
            continue
        threads = int(r.get("threads", ours.get("threads", 2)))
        for w in ([r["weights"]] if r.get("weights") in lc.WEIGHTS else weights):
            out.append((m.group(1), int(m.group(2)), w, threads))
    return out


def run_bench(bench, model, kind, n, threads, reps):
    args = ["-p", str(n), "-n", "0"] if kind == "pp" else ["-p", "0", "-n", str(n)]
    cmd = [str(bench), "-m", str(model), "-t", str(threads), *args, "-r", str(reps), "-o", "json"]
    print("+", " ".join(cmd), file=sys.stderr)
    load0 = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"llamacpp_bench: llama-bench failed ({out.returncode}):\n{out.stderr[-2000:]}")
    rows = [r for r in json.loads(out.stdout) if (r["n_prompt"] if kind == "pp" else r["n_gen"]) == n]
    assert len(rows) == 1, rows
    r = rows[0]
    return {"tokensPerSecond": round(r["avg_ts"], 2), "stddevTokensPerSecond": round(r["stddev_ts"], 2),
            "repetitions": len(r["samples_ts"]), "loadAverage1m": round(max(load0, os.getloadavg()[0]), 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default=",".join(lc.WEIGHTS))
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--llama-cpp-dir")
    ap.add_argument("--models-dir")
    args = ap.parse_args()

    ldir, mdir = lc.llama_dir(args.llama_cpp_dir), lc.models_dir(args.models_dir)
    ws = [w.strip() for w in args.weights.split(",") if w.strip()]
    bad = [w for w in ws if w not in lc.WEIGHTS]
    if bad:
        sys.exit(f"llamacpp_bench: unknown weights {bad}; known: {', '.join(lc.WEIGHTS)}")
    if args.ours:
        cases = cases_from_ours(args.ours, ws)
        if not cases:
            skip(f"no pp<N>/tg<N> engine cases in {args.ours}")
    else:
        cases = [(k, n, w, args.threads) for w in ws for k, n in (("pp", args.prompt), ("tg", args.gen))]
    bench = lc.binary(ldir, "llama-bench")
    if bench is None:
        skip(f"llama.cpp not installed (no build/bin/llama-bench under {ldir}; set LLAMA_CPP_DIR)")
    results = []
    for kind, n, w, threads in cases:
        model = lc.model_path(mdir, w)
        if not model.is_file():
            print(f"llamacpp_bench: skipped {kind}{n} {w}: {model} missing", file=sys.stderr)
            continue
        r = {"name": f"{kind}{n}", "weights": w, "threads": threads}
        r.update(run_bench(bench, model, kind, n, threads, args.repetitions))
        print(f"llamacpp_bench: {r['name']:6} {w:5} t={threads} {r['tokensPerSecond']:9.2f} tok/s "
              f"(+/- {r['stddevTokensPerSecond']}, load {r['loadAverage1m']})", file=sys.stderr)
        results.append(r)
    if not results:
        skip(f"no SmolLM2 GGUFs in {mdir} (run Scripts/fetch-model.sh; set MODELS_DIR)")
    doc = {"tool": "llama.cpp", "version": lc.commit(ldir),
           "command": f"llama-bench -m <gguf> -t <threads> -p <N> -n 0 | -p 0 -n <N> -r {args.repetitions} -o json",
           "results": results}
    text = json.dumps(doc, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
