#!/usr/bin/env python3
"""Kernel and engine speed across machines (or CPU variants), one table per kernel family.

usage: compare-machines.py RESULT.json [RESULT.json ...] [--markdown]

Each file is the --json output of `kernel-bench` or `engine-bench` (for instance from dist/ on
several machines, or SAFETUNE_VARIANT=portable|avx2|avx512 on one). Columns are the files, labelled
by CPU model, core count and the build that ran; rows are the cases, joined on name, parameters and
threads. Compute-bound cases show GFLOP/s, memory-bound ones GB/s, engine figures tokens/s.
"""
import json, sys

TIMING = {"iterations", "minNs", "medianNs", "p90Ns", "gflops", "gflopsPerCore", "gbps", "verified",
          "cpuNsPerCall", "bound", "threads", "name", "tokensPerSecond", "seconds", "relErr"}


def column_label(doc, path):
    m, b = doc.get("machine", {}), doc.get("build", {})
    cpu = str(m.get("cpu", "?")).replace("(R)", "").replace("(TM)", "").replace(" CPU", "")
    return f"{cpu} x{m.get('logicalCores', '?')} [{b.get('isa', '?')}]"


def rows(doc):
    out = {}
    for r in doc.get("results", []):
        params = ",".join(f"{k}={v}" for k, v in sorted(r.items()) if k not in TIMING)
        key = (r.get("name", "?"), params, r.get("threads"))
        if r.get("tokensPerSecond") is not None:
            out[key] = (r["tokensPerSecond"], "tok/s")
        elif r.get("bound") == "memory" or (not r.get("gflops") and r.get("gbps")):
            out[key] = (r.get("gbps", 0.0), "GB/s")
        else:
            out[key] = (r.get("gflops", 0.0), "GFLOP/s")
    return out


def main():
    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    if not paths:
        sys.exit(__doc__)
    docs = []
    for p in paths:
        try:
            docs.append(json.load(open(p)))
        except (OSError, ValueError) as e:
            sys.exit(f"compare-machines: cannot read {p}: {e}")
    labels = [column_label(d, p) for d, p in zip(docs, paths)]
    tables = [rows(d) for d in docs]
    keys = sorted(set().union(*[t.keys() for t in tables]), key=lambda k: (k[0], k[1], k[2] or 0))
    families = {}
    for k in keys:
        families.setdefault(k[0].split(".")[0].split("_")[0], []).append(k)
    for fam, ks in families.items():
        print(f"\n## {fam}\n" if markdown else f"\n== {fam}")
        head = ["case", "threads", "unit"] + labels + ([f"{labels[-1]} / {labels[0]}"] if len(labels) > 1 else [])
        lines = []
        for k in ks:
            vals = [t.get(k) for t in tables]
            unit = next((v[1] for v in vals if v), "")
            cells = [f"{v[0]:.1f}" if v else "-" for v in vals]
            if len(vals) > 1:
                cells.append(f"{vals[-1][0] / vals[0][0]:.2f}x" if vals[0] and vals[-1] and vals[0][0] > 0 else "-")
            lines.append([f"{k[0]}({k[1]})", str(k[2] or ""), unit] + cells)
        if markdown:
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for l in lines:
                print("| " + " | ".join(l) + " |")
        else:
            widths = [max(len(r[i]) for r in [head] + lines) for i in range(len(head))]
            for r in [head] + lines:
                print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
