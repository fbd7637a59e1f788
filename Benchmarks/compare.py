#!/usr/bin/env python3
"""Side-by-side table of kernel-bench results and peer results from the same run.

usage: compare.py OURS.json PEER.json [PEER.json ...] [--markdown]

Cases are joined on name, parameters and threads. Compute-bound cases compare GFLOP/s,
bandwidth-bound ones GB/s; the ratio is ours / peer (above 1 means SafeTune is faster).
"""
import json, sys

TIMING = {"iterations", "minNs", "medianNs", "p90Ns", "gflops", "gflopsPerCore", "gbps", "verified",
          "cpuNsPerCall", "bound", "threads", "name", "tokensPerSecond", "seconds", "relErr", "rounds"}


def key(r):
    params = tuple(sorted((k, str(v)) for k, v in r.items() if k not in TIMING))
    return (r["name"], params, r.get("threads"))


def label(r):
    params = ",".join(f"{k}={'T' if v is True else 'N' if v is False else v}" for k, v in r.items() if k not in TIMING)
    return f"{r['name']}({params})"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    if len(args) < 2:
        sys.exit(__doc__)
    ours = json.load(open(args[0]))
    peers = []
    for path in args[1:]:
        try:
            doc = json.load(open(path))
        except (OSError, ValueError) as e:
            print(f"compare: skipping {path}: {e}", file=sys.stderr)
            continue
        peers.append((doc.get("tool", path), {key(r): r for r in doc.get("results", [])}, doc.get("version", "")))
    machine = ours.get("machine", {})
    print(f"machine: {machine.get('cpu', '?')}, {machine.get('logicalCores', '?')} cores; "
          f"SafeTune build: {ours.get('build', {}).get('isa', '?')}; date {ours.get('date', '?')}")
    for tool, _, version in peers:
        print(f"peer: {tool} ({version})")
    header = ["case", "threads", "unit", "SafeTune"] + [h for tool, _, _ in peers for h in (tool, "ratio")]
    rows = []
    for r in ours["results"]:
        bw = r.get("bound") == "bandwidth"
        unit = "GB/s" if bw else "GFLOP/s"
        metric = "gbps" if bw else "gflops"
        row = [label(r), str(r["threads"]), unit, f"{r[metric]:.1f}"]
        for _, table, _ in peers:
            p = table.get(key(r))
            if p is None:
                row += ["-", "-"]
            else:
                row += [f"{p[metric]:.1f}", f"{r[metric] / p[metric]:.2f}x" if p[metric] else "-"]
        rows.append(row)
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(x[i]) for x in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            print("  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(row, widths))))


if __name__ == "__main__":
    main()
