#!/usr/bin/env python3
"""Merges repeated benchmark JSON files of one tool into one, keeping each case's best round.

usage: best_of.py OUT.json IN.json [IN.json ...]

The machines we measure on are virtual: for seconds at a time one vCPU can run 25-40% slower
(another guest on its physical core; no steal time is reported), which moves single runs of ours
and of the peers alike. `Benchmarks/run.sh --rounds N` alternates our run and the peers' N times
and keeps every case's fastest round for each tool, so both sides get the same chance at a quiet
moment. The output records the rounds and every round's figure per case ("rounds" field).
"""
import json, os, sys, tempfile

from compare import key  # the same case identity as the side-by-side table (same directory)


def metric(r):
    """The figure compare.py reads: GB/s for bandwidth-bound cases, else GFLOP/s (or tokens/s)."""
    if r.get("bound") == "bandwidth" and isinstance(r.get("gbps"), (int, float)):
        return "gbps"
    for m in ("gflops", "tokensPerSecond", "gbps"):
        if isinstance(r.get(m), (int, float)):
            return m
    return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, inputs = sys.argv[1], sys.argv[2:]
    docs = []
    for path in inputs:
        try:
            docs.append(json.load(open(path)))
        except (OSError, ValueError) as e:
            print(f"best_of: skipping {path}: {e}", file=sys.stderr)
    if not docs:
        sys.exit("best_of: no readable input")
    merged = dict(docs[0])
    best, order, seen = {}, [], {}
    for doc in docs:
        for r in doc.get("results", []):
            k, m = key(r), metric(r)
            seen.setdefault(k, []).append(r.get(m) if m else None)
            if k not in best:
                order.append(k)
                best[k] = r
            elif m and r.get(m, 0) > best[k].get(m, 0):
                best[k] = r
    merged["results"] = [dict(best[k], rounds=seen[k]) for k in order]
    merged["rounds"] = len(docs)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out)) or ".", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(merged, f, indent=1)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
