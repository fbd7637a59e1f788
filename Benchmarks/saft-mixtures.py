#!/usr/bin/env python3
"""SAFT on labeled mixtures of ../shared/data (Docs/SAFT.md, "Measured").

Builds 1,000-row mixtures at 0, 10, 20, 30 and 70% harmful rows from public data into a scratch
directory (never into the repository), then runs `saft` on them and on the ready-made BeaverTails
mixtures (SST-2, GSM8K) with the published (subspace), guided and combined scores, writing one JSON
report per run and a summary. Every distinct row is embedded once per position: the mixtures are
nested samples of one benign and one harmful pool, and `saft --cache` keeps the embeddings.

  benign  : stanford_alpaca (700) + the safety-topic Alpaca (200) and Dolly (100) subsets of
            llms_finetuning_safety (hard negatives)
  harmful : pure_bad (100), BeaverTails unsafe (200), Shadow-Alignment SA (100),
            SafeBench harmful responses (140, all distinct), JailbreakBench jailbroken (260)

usage: Benchmarks/saft-mixtures.py [--scratch DIR] [--positions last-prompt,last,mean-response]
"""
import argparse, json, os, random, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def pick(rows, n, rng, label=None):
    rows = [r for r in rows if label is None or r["label"] == label]
    seen, out = set(), []
    for r in rows:  # distinct (prompt, response) pairs only
        key = (r["prompt"], r["response"])
        if key not in seen:
            seen.add(key); out.append(r)
    rng.shuffle(out)
    if len(out) < n:
        sys.exit(f"only {len(out)} distinct rows, need {n}")
    return [{"prompt": r["prompt"], "response": r["response"], "label": r["label"]} for r in out[:n]]


def build(shared, scratch, rows, seed):
    rng = random.Random(seed)
    d = lambda p: os.path.join(shared, p)
    benign = (pick(read_jsonl(d("stanford_alpaca/alpaca_5000.normalized.jsonl")), 700, rng)
              + pick(read_jsonl(d("llms_finetuning_safety/alpaca_data_safety_only.normalized.jsonl")), 200, rng)
              + pick(read_jsonl(d("llms_finetuning_safety/databricks-dolly-15k-safety-only.normalized.jsonl")), 100, rng))
    harmful = (pick(read_jsonl(d("pure_bad_larf/pure-bad-100.normalized.jsonl")), 100, rng)
               + pick(read_jsonl(d("beavertails_mix_xinykou/beavertails_30k_train_unsafe_first200.normalized.jsonl")), 198, rng)
               + pick(read_jsonl(d("thuccslab_misalignment/SA.normalized.jsonl")), 100, rng)
               + pick(read_jsonl(d("thuccslab_misalignment/safebench_harmful_responses.normalized.jsonl")), 140, rng)
               + pick(read_jsonl(d("jailbreakbench_artifacts/all_artifacts_labeled.normalized.jsonl")), 260, rng, "harmful"))
    rng.shuffle(benign); rng.shuffle(harmful)
    files = {}
    for rate in (0, 10, 20, 30, 70):
        h = round(rows * rate / 100)
        mix = harmful[:h] + benign[:rows - h]  # nested: lower rates reuse rows of higher ones
        random.Random(seed + rate).shuffle(mix)
        path = os.path.join(scratch, f"mix-{rate:02d}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for r in mix:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        files[f"mix-{rate:02d}"] = path
    for name in ("sst2_train_merged_n1000_p0.2", "sst2_train_merged_n1000_p0", "gsm8k_train_merged_n1000_p0.05"):
        files[name] = d(f"beavertails_mix_xinykou/{name}.normalized.jsonl")
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--scratch", default="/tmp/saft-mixtures")
    ap.add_argument("--model", default=os.path.join(REPO, "..", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--saft", default=os.path.join(REPO, ".build", "release", "saft"))
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--positions", default="last-prompt")
    ap.add_argument("--datasets", default="", help="comma list of dataset names (default: all)")
    ap.add_argument("--methods", default="guided,guided-fprbalanced,guided-mean,subspace,combined,combined-fprbalanced",
                    help="guided (default settings), guided-fpr<F> / combined-fpr<F> (guided threshold at benign-reference "
                         "FPR F, or balanced), guided-adapt<N> / combined-adapt<N> (N rounds of adaptation to the pool; 0: references only), "
                         "guided-mean (mean-difference direction), subspace (published), combined; -response adds the response view "
                         "(saft's default since session 7; without it --guide-response off); suffixes combine: guided-fpr0.01-adapt0")
    ap.add_argument("--blocks", default="0.33,0.5,0.67,0.75")
    ap.add_argument("--max-tokens", default="512")
    ap.add_argument("--threads", default="")
    ap.add_argument("--summary", default="summary.json", help="summary file name in the scratch directory")
    a = ap.parse_args()
    os.makedirs(os.path.join(a.scratch, "reports"), exist_ok=True)
    files = build(a.shared, a.scratch, a.rows, a.seed)
    if a.datasets:
        files = {k: v for k, v in files.items() if k in a.datasets.split(",")}
    summary = []
    for position in a.positions.split(","):
        for name, path in files.items():
            for method in a.methods.split(","):
                tag = f"{name}.{position}.{method}"
                report = os.path.join(a.scratch, "reports", tag + ".json")
                cmd = [a.saft, "--model", a.model, "--data", path, "--out", os.path.join(a.scratch, tag + ".kept.jsonl"),
                       "--report", report, "--position", position, "--cache", os.path.join(a.scratch, "cache"),
                       "--method", method.split("-")[0], "--max-tokens", a.max_tokens]
                response = "off"  # a method name means what it meant when its table was measured
                for part in method.split("-")[1:]:  # e.g. guided-fpr0.001-adapt0
                    if part == "response":
                        response = "on"
                    elif part.startswith("fpr"):
                        cmd += ["--guide-fpr", part[3:]]
                    elif part.startswith("adapt"):
                        cmd += ["--guide-adapt", part[5:]]
                    elif part == "mean":
                        cmd += ["--guide-direction", "mean"]
                    else:
                        sys.exit(f"unknown method suffix '{part}' in {method}")
                if method != "subspace":
                    cmd += ["--guide-response", response]
                if a.threads:
                    cmd += ["--threads", a.threads]
                if method.startswith("guided"):
                    cmd += ["--block", a.blocks, "--sweep", "--plot", os.path.join(a.scratch, tag + ".svg")]
                elif method != "subspace":
                    cmd += ["--block", a.blocks]
                t0 = time.time()
                print("+", " ".join(cmd), file=sys.stderr, flush=True)
                subprocess.run(cmd, check=True)
                r = json.load(open(report))
                r["wall_seconds"] = time.time() - t0
                summary.append({"dataset": name, "position": position, "method": method, "block": r.get("block"),
                                "auroc": r.get("auroc"), "recall": r.get("recall"), "benign_removed": r.get("benign_removed_fraction"),
                                "removed": r["removed"], "rows": r["rows"], "harmful_rows": r.get("harmful_rows"),
                                "timings": r["timings"], "cache": r.get("cache"), "guide": {k: v for k, v in r.get("guide", {}).items() if k != "blocks"},
                                "subspace": r.get("subspace"), "sweep": r.get("sweep"), "warnings": r.get("warnings")})
                with open(os.path.join(a.scratch, a.summary), "w") as f:
                    json.dump(summary, f, indent=1)
                fmt = lambda v: "-" if v is None else f"{v:.3f}"
                print(f"{tag}: block {r.get('block')} AUROC {fmt(r.get('auroc'))} recall {fmt(r.get('recall'))} "
                      f"benign removed {fmt(r.get('benign_removed_fraction'))} removed {r['removed']}/{r['rows']}", flush=True)




def table(paths):
    """Markdown tables of summary files (python3 Benchmarks/saft-mixtures.py --table SUMMARY [SUMMARY...])."""
    rows = [r for p in paths for r in json.load(open(p))]
    rows.sort(key=lambda r: (r["dataset"], r["position"]))
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    print("| data | position | method | block | AUROC | recall | benign removed | removed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['dataset']} | {r['position']} | {r['method']} | {r['block']} | {fmt(r['auroc'])} | {fmt(r['recall'])} | "
              f"{fmt(r['benign_removed'])} | {r['removed']}/{r['rows']} |")
    print("\nPublished score, every embedded block and k (label-free threshold), from the guided runs' --sweep:\n")
    print("| data | position | block | k=1 | k=2 | k=3 | k=4 | best: recall / benign removed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    seen = set()
    for r in rows:  # the first run with a sweep per data set and position
        if not r.get("sweep") or (r["dataset"], r["position"]) in seen:
            continue
        seen.add((r["dataset"], r["position"]))
        sub = [s for s in r["sweep"] if s["method"] == "subspace"]
        for b in sorted({s["block"] for s in sub}):
            cells = {s["k"]: s for s in sub if s["block"] == b}
            best = max(cells.values(), key=lambda s: s.get("auroc") or 0)
            print(f"| {r['dataset']} | {r['position']} | {b} | " + " | ".join(fmt(cells[k].get("auroc")) if k in cells else "-" for k in range(1, 5))
                  + f" | k={best['k']}: {fmt(best['recall'])} / {fmt(best['benign_removed_fraction'])} |")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--table":
        table(sys.argv[2:])
    else:
        main()
