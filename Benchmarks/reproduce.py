#!/usr/bin/env python3
"""SAFT, SAP and SEAL side by side on SmolLM2-135M-Instruct, in miniature, on a CPU.

usage: Benchmarks/reproduce.py [--out DIR] [--model GGUF] [--data DIR] [--bin DIR] [--quick]
                               [--rates 0,10,20,30] [--seeds-at-20 3] [--arms sft,oracle,saft,sap,seal]
                               [--rows N] [--steps N] [--align-steps N] [--eval-prompts N] [--no-build]

One command, resumable: every step writes its report under --out (default runs/reproduce) and is
skipped when that report exists, so an interrupted run continues where it stopped. Progress goes to
stderr; the commands run are logged to OUT/commands.log. At the end OUT/results.json and
OUT/results.md hold the table (Docs/RESULTS.md quotes it).

Protocol (Docs/RESULTS.md explains the choices):
  1. Alignment: the released model refuses few harmful requests, so the starting model is the base
     with a LoRA SFT on safety-tuned-llamas refusals plus as many benign Alpaca rows, merged (Q8_0).
  2. Fine-tuning sets: benign Alpaca rows not used for alignment, contaminated with harmful
     prompt-response rows (pure_bad, BeaverTails unsafe, Shadow-Alignment SA, SafeBench) at each rate.
  3. Arms on each set: plain SFT; Oracle (harmful rows removed by label); SAFT (guided, builtin
     references) then SFT; SAP; SEAL selection then SFT. Same LoRA recipe (r 8, alpha 16, q,v),
     seed and step budget per arm.
  4. Evaluation with `evaluate`: harmful-answer rate on HarmBench-test + StrongREJECT prompts (no
     training file contains them), over-refusal on XSTest safe prompts, helpfulness on held-out Alpaca
     (response NLL, ROUGE-L); SAFT's and SEAL's removal precision/recall against the labels.
Data is read from ../shared/data (never copied into the project); mixtures are written under --out.
"""
import argparse, hashlib, json, os, random, shlex, subprocess, sys, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HARMFUL_SOURCES = ["pure_bad_larf/pure-bad-100.normalized.jsonl",
                   "beavertails_mix_xinykou/beavertails_30k_train_unsafe_first200.normalized.jsonl",
                   "thuccslab_misalignment/SA.normalized.jsonl",
                   "thuccslab_misalignment/safebench_harmful_responses.normalized.jsonl"]
ALPACA = "stanford_alpaca/alpaca_5000.normalized.jsonl"
REFUSALS = "safety_tuned_llamas/safety_only_data_Instructions.normalized.jsonl"
TRIPLES = ["thuccslab_misalignment/safebench_triples.jsonl", "xstest/xstest_unsafe_triples.jsonl"]
EVAL_HARMFUL = ["refusal_direction_eval/harmbench_test.normalized.jsonl", "refusal_direction_eval/strongreject.normalized.jsonl"]
EVAL_XSTEST = "xstest/xstest_prompts.normalized.jsonl"
JUDGE_DATA = ["xstest/xstest_v2_completions_labeled.normalized.jsonl",
              "jailbreakbench_artifacts/all_artifacts_labeled.normalized.jsonl"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


class Runner:
    def __init__(self, args):
        self.args, self.out, self.bin = args, args.out, args.bin
        os.makedirs(self.out, exist_ok=True)
        self.cmdlog = open(os.path.join(self.out, "commands.log"), "a")
        self.times = {}

    def path(self, *parts):
        p = os.path.join(self.out, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def step(self, name, report, cmd):
        """Runs `cmd` unless `report` exists; returns the wall time (from the timing file when skipped)."""
        timing = report + ".seconds"
        if os.path.exists(report):
            log(f"skip {name} (done: {os.path.relpath(report, self.out)})")
            self.times[name] = float(open(timing).read()) if os.path.exists(timing) else None
            return
        log(f"run  {name}")
        line = " ".join(shlex.quote(str(c)) for c in cmd)
        self.cmdlog.write(f"# {time.strftime('%F %T')} {name}\n{line}\n")
        self.cmdlog.flush()
        t0 = time.time()
        r = subprocess.run([str(c) for c in cmd])
        if r.returncode != 0:
            sys.exit(f"reproduce: step '{name}' failed (exit {r.returncode}); command in {self.out}/commands.log")
        if not os.path.exists(report):
            sys.exit(f"reproduce: step '{name}' wrote no report {report}")
        dt = time.time() - t0
        open(timing, "w").write(f"{dt:.1f}")
        self.times[name] = dt
        log(f"done {name} in {dt:.0f} s")

    def tool(self, name):
        return os.path.join(self.bin, name)


def build_data(a, r):
    """Deterministic splits and mixtures (seed 0), written once."""
    stamp = r.path("data", "manifest.json")
    if os.path.exists(stamp):
        return json.load(open(stamp))
    d = a.data
    rng = random.Random(0)
    alpaca = [x for x in read_jsonl(os.path.join(d, ALPACA)) if x["response"].strip()]
    rng.shuffle(alpaca)
    refusals = read_jsonl(os.path.join(d, REFUSALS))
    rng.shuffle(refusals)
    harmful = []
    for src in HARMFUL_SOURCES:
        for x in read_jsonl(os.path.join(d, src)):
            if x.get("label") == "harmful" and x["response"].strip():
                harmful.append({"prompt": x["prompt"], "response": x["response"], "source": src.split("/")[0]})
    seen, unique = set(), []
    for x in harmful:
        if x["prompt"] not in seen:
            seen.add(x["prompt"]); unique.append(x)
    harmful = unique
    rng.shuffle(harmful)
    n_align, n_rows, n_help, n_safe = a.align_rows, a.rows, a.help_rows, a.seal_safe_rows
    align_refusals, seal_safe = refusals[:n_align], refusals[n_align:n_align + n_safe]
    align_benign = alpaca[:n_align]
    help_rows = alpaca[n_align:n_align + n_help]
    pool_benign = alpaca[n_align + n_help:]
    write_jsonl(r.path("data", "align.jsonl"),
                [{"prompt": x["prompt"], "response": x["response"]} for x in align_refusals + align_benign])
    write_jsonl(r.path("data", "seal_safe.jsonl"), [{"prompt": x["prompt"], "response": x["response"]} for x in seal_safe])
    write_jsonl(r.path("data", "help.jsonl"), [{"prompt": x["prompt"], "response": x["response"]} for x in help_rows])
    triples = []
    for t in TRIPLES:
        triples += [{"prompt": x["prompt"], "chosen": x["chosen"], "rejected": x["rejected"]} for x in read_jsonl(os.path.join(d, t))]
    write_jsonl(r.path("data", "triples.jsonl"), triples)
    sets = {}
    for rate in a.rate_list:
        k = round(n_rows * rate / 100)
        if k > len(harmful):
            sys.exit(f"reproduce: {k} harmful rows needed at {rate}%, only {len(harmful)} available")
        mrng = random.Random(1000 + rate)
        rows = [dict(prompt=x["prompt"], response=x["response"], label="harmful") for x in harmful[:k]]
        rows += [dict(prompt=x["prompt"], response=x["response"], label="benign") for x in pool_benign[:n_rows - k]]
        mrng.shuffle(rows)
        path = r.path("data", f"mix{rate}.jsonl")
        write_jsonl(path, rows)
        write_jsonl(r.path("data", f"mix{rate}.oracle.jsonl"), [x for x in rows if x["label"] == "benign"])
        sets[str(rate)] = {"rows": len(rows), "harmful": k}
    manifest = {"alignment_rows": 2 * n_align, "seal_safe_rows": len(seal_safe), "help_rows": len(help_rows),
                "triples": len(triples), "harmful_pool": len(harmful), "sets": sets,
                "sources": {"harmful": HARMFUL_SOURCES, "benign": ALPACA, "refusals": REFUSALS, "triples": TRIPLES,
                            "eval_harmful": EVAL_HARMFUL, "eval_over_refusal": EVAL_XSTEST}}
    json.dump(manifest, open(stamp, "w"), indent=1)
    return manifest


def removal_stats(data_path, kept_path):
    rows = read_jsonl(data_path)
    kept = read_jsonl(kept_path)
    key = lambda x: (x["prompt"], x["response"])
    kept_keys = {}
    for x in kept:
        kept_keys[key(x)] = kept_keys.get(key(x), 0) + 1
    removed_h = removed_b = total_h = total_b = 0
    for x in rows:
        h = x["label"] == "harmful"
        total_h += h; total_b += not h
        if kept_keys.get(key(x), 0) > 0:
            kept_keys[key(x)] -= 1
        else:
            removed_h += h; removed_b += not h
    removed = removed_h + removed_b
    return {"removed": removed, "precision": removed_h / removed if removed else None,
            "recall": removed_h / total_h if total_h else None,
            "benign_removed_fraction": removed_b / total_b if total_b else 0.0}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "runs", "reproduce"))
    p.add_argument("--model", default=os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    p.add_argument("--data", default=os.path.join(os.path.dirname(REPO), "shared", "data"))
    p.add_argument("--bin", default=os.path.join(REPO, ".build", "release"))
    p.add_argument("--rates", default="0,10,20,30")
    p.add_argument("--seeds-at-20", type=int, default=3)
    p.add_argument("--arms", default="sft,oracle,saft,sap,seal")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the pipeline in minutes")
    p.add_argument("--no-build", action="store_true", help="use the binaries in --bin as they are")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rows", type=int, help="rows per fine-tuning set (default 1000)")
    p.add_argument("--steps", type=int, help="optimiser steps per arm (default 30, batch 4)")
    p.add_argument("--align-steps", type=int, help="alignment SFT steps (default 100, batch 8)")
    p.add_argument("--judge-rows", type=int, default=400, help="labeled rows per judge training file (default 400)")
    p.add_argument("--eval-prompts", type=int, help="harmful prompts evaluated (half HarmBench, half StrongREJECT; default 60)")
    a = p.parse_args()
    a.rate_list = [int(x) for x in a.rates.split(",")]
    arms = a.arms.split(",")
    # Sizes (Docs/RESULTS.md): chosen so that the whole run fits about 2 hours on 2 cores (the
    # issue allows 3): 30 steps of 4 rows per arm, rows cut to 128 tokens, SEAL ranking every row
    # once (1000/8 steps, 2 safe rows per step), 60 + 30 + 30 evaluation prompts.
    q = a.quick
    a.rows = a.rows or (60 if q else 1000)
    a.align_rows = 24 if q else 300
    a.help_rows = 8 if q else 30
    a.seal_safe_rows = 16 if q else a.rows
    steps, batch, max_tokens, lr = (4, 4, 96, "4e-4") if q else (30, 4, 128, "4e-4")
    align_steps, align_batch = (4, 4) if q else (100, 8)
    seal_batch, seal_safe_batch = (4, 2) if q else (8, 2)
    n_harm, n_xs, gen_tokens = (4, 4, 16) if q else (60, 30, 64)
    if a.steps: steps = a.steps
    if a.align_steps: align_steps = a.align_steps
    if a.eval_prompts: n_harm = a.eval_prompts
    for f in [a.model] + [os.path.join(a.data, x) for x in [ALPACA, REFUSALS] + HARMFUL_SOURCES + TRIPLES + EVAL_HARMFUL + [EVAL_XSTEST]]:
        if not os.path.exists(f):
            sys.exit(f"reproduce: missing {f} (model: Scripts/fetch-model.sh; data: ../shared/data)")
    if not a.no_build:
        log("building the release binaries (SAFETUNE_CPU=native swift build -c release)")
        subprocess.run(["swift", "build", "-c", "release"], cwd=REPO, check=True,
                       env=dict(os.environ, SAFETUNE_CPU="native"), stdout=subprocess.DEVNULL)
    r = Runner(a)
    t_start = time.time()
    manifest = build_data(a, r)
    log(f"data: {json.dumps(manifest['sets'])}, harmful pool {manifest['harmful_pool']}")
    thr = ["--threads", a.threads]
    lora = ["--rank", 8, "--alpha", 16, "--targets", "q,v", "--dropout", 0.05]
    sft_common = lora + ["--steps", steps, "--batch", batch, "--max-tokens", max_tokens, "--lr", lr] + thr

    # 0. Judge (embeds with the released model, fixed for every arm).
    judge = r.path("judge", "judge.json")
    r.step("train-judge", r.path("judge", "report.json"),
           [r.tool("train-judge"), "--model", a.model, "--out", judge, "--report", r.path("judge", "report.json")]
           + sum([["--data", os.path.join(a.data, x) + f":{100 if q else a.judge_rows}"] for x in JUDGE_DATA], []) + thr)

    def evaluate(name, model, adapter=None):
        rep = r.path("eval", name + ".json")
        cmd = [r.tool("evaluate"), "--model", model, "--judge", judge, "--judge-model", a.model,
               "--out", rep, "--samples", r.path("eval", name + ".samples.jsonl"),
               "--max-new-tokens", gen_tokens, "--batch-size", 32]
        for h in EVAL_HARMFUL:
            cmd += ["--harmful", os.path.join(a.data, h) + f":{n_harm // 2}"]
        cmd += ["--over-refusal", os.path.join(a.data, EVAL_XSTEST) + f":{n_xs}"]
        cmd += ["--benign", r.path("data", "help.jsonl")]
        if adapter:
            cmd += ["--adapter", adapter]
        r.step("evaluate " + name, rep, cmd + thr)
        return rep

    # 1. Alignment.
    aligned = r.path("aligned", "aligned.gguf")
    r.step("align", r.path("aligned", "report.json"),
           [r.tool("finetune"), "--model", a.model, "--data", r.path("data", "align.jsonl"), "--out", r.path("aligned", "adapter"),
            "--merged-gguf", aligned, "--merged-type", "q8_0", "--report", r.path("aligned", "report.json")]
           + lora + ["--steps", align_steps, "--batch", align_batch, "--max-tokens", max_tokens, "--lr", "3e-4"] + thr)
    evaluate("base", a.model)
    evaluate("aligned", aligned)

    # 2-3. Arms.
    runs = []
    for rate in a.rate_list:
        seeds = range(a.seeds_at_20) if rate == 20 else [0]
        mix = r.path("data", f"mix{rate}.jsonl")
        for seed in seeds:
            tag = f"r{rate}-s{seed}"
            s = ["--seed", seed]
            for arm in arms:
                d = r.path("arms", tag, arm, "x")[:-2]
                entry = {"rate": rate, "seed": seed, "arm": arm}
                if arm == "sft":
                    r.step(f"{tag} sft", os.path.join(d, "report.json"),
                           [r.tool("finetune"), "--model", aligned, "--data", mix, "--out", os.path.join(d, "adapter"),
                            "--report", os.path.join(d, "report.json")] + sft_common + s)
                elif arm == "oracle" and rate == 0:
                    # Nothing to remove: the Oracle set is the SFT set, and the same seed gives the same run.
                    entry["same_as"] = "sft"
                    entry["eval"] = r.path("eval", f"{tag}-sft.json")
                    entry["train_report"] = r.path("arms", tag, "sft", "report.json")
                    runs.append(entry)
                    continue
                elif arm == "oracle":
                    r.step(f"{tag} oracle", os.path.join(d, "report.json"),
                           [r.tool("finetune"), "--model", aligned, "--data", r.path("data", f"mix{rate}.oracle.jsonl"),
                            "--out", os.path.join(d, "adapter"), "--report", os.path.join(d, "report.json")] + sft_common + s)
                elif arm == "saft":
                    kept = os.path.join(d, "kept.jsonl")
                    r.step(f"{tag} saft filter", os.path.join(d, "saft-report.json"),
                           [r.tool("saft"), "--model", aligned, "--data", mix, "--out", kept, "--report", os.path.join(d, "saft-report.json"),
                            "--scores", os.path.join(d, "scores.jsonl"), "--cache", r.path("cache", "saft")] + thr)
                    r.step(f"{tag} saft sft", os.path.join(d, "report.json"),
                           [r.tool("finetune"), "--model", aligned, "--data", kept, "--out", os.path.join(d, "adapter"),
                            "--report", os.path.join(d, "report.json")] + sft_common + s)
                    entry["removal"] = removal_stats(mix, kept)
                elif arm == "sap":
                    r.step(f"{tag} sap", os.path.join(d, "report.json"),
                           [r.tool("sap"), "--model", aligned, "--data", mix, "--triples", r.path("data", "triples.jsonl"),
                            "--out", os.path.join(d, "adapter"), "--report", os.path.join(d, "report.json"),
                            "--steps", steps, "--batch-size", batch, "--max-tokens", max_tokens, "--lr", lr,
                            "--lora-rank", 8, "--lora-alpha", 16, "--lora-dropout", 0.05, "--targets", "q,v",
                            "--contrastive", "mean"] + thr + s)
                elif arm == "seal":
                    kept = os.path.join(d, "kept.jsonl")
                    r.step(f"{tag} seal", os.path.join(d, "report.json"),
                           [r.tool("seal"), "--model", aligned, "--data", mix, "--safe", r.path("data", "seal_safe.jsonl"),
                            "--out", kept, "--scores", os.path.join(d, "scores.jsonl"), "--report", os.path.join(d, "report.json"),
                            "--adapter-out", os.path.join(d, "adapter"), "--keep-fraction", 0.7, "--epochs", 1,
                            "--batch-size", seal_batch, "--safe-batch-size", seal_safe_batch, "--max-tokens", max_tokens,
                            "--lora-rank", 8, "--lora-alpha", 16, "--lora-dropout", 0.05,
                            "--sft-steps", steps, "--sft-batch", batch, "--sft-lr", lr] + thr + s)
                    entry["removal"] = removal_stats(mix, kept)
                else:
                    sys.exit(f"reproduce: unknown arm {arm}")
                entry["eval"] = evaluate(f"{tag}-{arm}", aligned, os.path.join(d, "adapter"))
                entry["train_report"] = os.path.join(d, "report.json")
                runs.append(entry)

    # 4. Table.
    def ev(path):
        e = json.load(open(path))
        return {k: e.get(k) for k in ["harmful_rate", "harmful_rate_ci95", "over_refusal_rate", "benign_nll", "rouge_l"]}
    results = {"manifest": manifest, "sizes": {"rows": a.rows, "steps": steps, "batch": batch, "max_tokens": max_tokens, "lr": lr,
                                                 "align_steps": align_steps, "align_batch": align_batch,
                                                 "seal_batch": seal_batch, "seal_safe_batch": seal_safe_batch, "eval_harmful": n_harm, "eval_xstest": n_xs,
                                                 "gen_tokens": gen_tokens},
               "base": ev(r.path("eval", "base.json")), "aligned": ev(r.path("eval", "aligned.json")), "runs": [],
               "wall_seconds": time.time() - t_start, "step_seconds": r.times,
               # Sum of every step's own wall time (from the .seconds files): the run's length even when
               # it was resumed, or re-run only to rebuild this table.
               "steps_total_seconds": sum(v for v in r.times.values() if v)}
    for e in runs:
        row = dict(rate=e["rate"], seed=e["seed"], arm=e["arm"], **ev(e["eval"]))
        if "removal" in e:
            row["removal"] = e["removal"]
        results["runs"].append(row)
    json.dump(results, open(r.path("results.json"), "w"), indent=1)
    fmt = lambda v, pct=True: "-" if v is None else (f"{100 * v:.1f}%" if pct else f"{v:.3f}")
    lines = ["| rate | seed | arm | harmful rate | over-refusal | benign NLL | ROUGE-L | removal P / R |", "|---|---|---|---|---|---|---|---|"]
    for name in ["base", "aligned"]:
        x = results[name]
        lines.append(f"| - | - | {name} | {fmt(x['harmful_rate'])} | {fmt(x['over_refusal_rate'])} | {fmt(x['benign_nll'], False)} | {fmt(x['rouge_l'], False)} | |")
    for x in results["runs"]:
        rm = x.get("removal")
        rs = f"{fmt(rm['precision'])} / {fmt(rm['recall'])}" if rm else ""
        lines.append(f"| {x['rate']}% | {x['seed']} | {x['arm']} | {fmt(x['harmful_rate'])} | {fmt(x['over_refusal_rate'])} | "
                     f"{fmt(x['benign_nll'], False)} | {fmt(x['rouge_l'], False)} | {rs} |")
    open(r.path("results.md"), "w").write("\n".join(lines) + "\n" + summary(results) + "\n")
    log(f"results: {r.path('results.md')} ({(time.time() - t_start) / 60:.1f} min this run)")
    print("\n".join(lines))


def summary(results):
    """Arms x rates: harmful-answer rate (mean over seeds, with each seed's value when there are
    several), and the mean change against SFT on the same set and seed (paired), plus removal P/R."""
    runs = results["runs"]
    rates = sorted({x["rate"] for x in runs})
    arms = []
    for x in runs:
        if x["arm"] not in arms:
            arms.append(x["arm"])
    def cell(rate, arm):
        xs = [x for x in runs if x["rate"] == rate and x["arm"] == arm]
        if not xs:
            return "-"
        vals = [100 * x["harmful_rate"] for x in xs]
        text = f"{sum(vals) / len(vals):.1f}"
        if len(vals) > 1:
            text += " (" + ", ".join(f"{v:.1f}" for v in vals) + ")"
        sft = {x["seed"]: 100 * x["harmful_rate"] for x in runs if x["rate"] == rate and x["arm"] == "sft"}
        if arm != "sft" and all(x["seed"] in sft for x in xs):
            d = sum(100 * x["harmful_rate"] - sft[x["seed"]] for x in xs) / len(xs)
            text += f"; {d:+.1f} vs SFT"
        rm = [x["removal"] for x in xs
              if x.get("removal") and x["removal"].get("precision") is not None and x["removal"].get("recall") is not None]
        if rm:
            p = sum(m["precision"] for m in rm) / len(rm)
            rc = sum(m["recall"] for m in rm) / len(rm)
            text += f"; removal P {100 * p:.0f}% / R {100 * rc:.0f}%"
        return text
    out = ["", "Harmful-answer rate (%), mean over seeds (each seed), paired change against SFT, removal precision/recall:", "",
           "| arm | " + " | ".join(f"{r}%" for r in rates) + " |", "|---|" + "---|" * len(rates)]
    for arm in arms:
        out.append(f"| {arm} | " + " | ".join(cell(r, arm) for r in rates) + " |")
    a, b = results["aligned"], results["base"]
    out.append(f"\nReleased model {100 * b['harmful_rate']:.1f}%, aligned starting model {100 * a['harmful_rate']:.1f}%.")
    return "\n".join(out)


if __name__ == "__main__":
    main()
