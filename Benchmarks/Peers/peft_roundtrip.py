#!/usr/bin/env python3
"""Peer check: a SafeTune LoRA adapter, merged by Hugging Face PEFT, equals SafeTune's own merged GGUF.

usage: peft_roundtrip.py --base BASE.gguf --adapter ADAPTER_DIR --merged MERGED.gguf [--prompt TEXT] [--json OUT.json]

Loads BASE.gguf with transformers (AutoModelForCausalLM.from_pretrained(dir, gguf_file=name), float32;
the GGUF loader undoes llama.cpp's q/k row permutation, so the model is in Hugging Face layout), applies
ADAPTER_DIR (written by `finetune --out`) with peft.PeftModel.from_pretrained and merge_and_unload(), and
loads MERGED.gguf (written by `finetune --merged-gguf --merged-type f32`) the same way. Compares:
  - every weight tensor of the two models: max |diff| and ||diff||_F / ||PEFT-merged||_F,
  - the logits of both on a fixed prompt (tokenized by the tokenizer read from BASE.gguf),
    and those of the unmerged PeftModel (LoRA branch in the forward pass),
and reports the adapter's effect (max |merged - base| over the q_proj weights and over all weights, and the
logits' max |merged - base|) so that a reader sees the comparison is not trivially zero.
Exits 0 when the weights agree within --weight-tol (1e-5) and the logits within --logit-tol (1e-3), 1 otherwise;
0 with "skipped: ..." when torch, transformers, peft or gguf is not installed.
"""
import argparse, json, os, sys

PROMPT = "The quick brown fox jumps over the lazy dog. What colour is the sky on a clear day?"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="base model GGUF (F32 for an exact comparison)")
    ap.add_argument("--adapter", required=True, help="PEFT adapter directory written by `finetune --out`")
    ap.add_argument("--merged", required=True, help="merged GGUF written by `finetune --merged-gguf --merged-type f32`")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--weight-tol", type=float, default=1e-5)
    ap.add_argument("--logit-tol", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", help="also write the figures here")
    return ap.parse_args()


def versions():
    """Versions of the libraries, or None (with the name missing) when one is not installed."""
    found = {}
    for name in ("torch", "transformers", "peft", "gguf"):
        try:
            mod = __import__(name)
        except ImportError:
            return None, name
        if name == "gguf":
            try:
                from importlib.metadata import version
                found[name] = version("gguf")
            except Exception:
                found[name] = "?"
        else:
            found[name] = mod.__version__
    return found, None


def load_gguf(path, torch, transformers):
    """A float32 Hugging Face model from a GGUF file (dtype= on transformers >= 5, torch_dtype= before)."""
    from transformers import AutoModelForCausalLM
    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(path)) or ".",
                                                 gguf_file=os.path.basename(path), **{key: torch.float32})
    return model.eval()


def tensors(model):
    """name -> float32 copy of every floating-point tensor of the state dict (a copy: PEFT merges in place)."""
    import torch
    return {k: v.detach().to(torch.float32, copy=True) for k, v in model.state_dict().items() if v.is_floating_point()}


def max_abs(a, b):
    return (a - b).abs().max().item()


def main():
    args = parse_args()
    found, missing = versions()
    if found is None:
        print(f"peft_roundtrip: skipped: {missing} not installed (pip install torch transformers peft gguf)")
        return 0
    for p, what in ((args.base, "base GGUF"), (args.merged, "merged GGUF")):
        if not os.path.isfile(p):
            sys.exit(f"peft_roundtrip: {what} {p} not found")
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        if not os.path.isfile(os.path.join(args.adapter, f)):
            sys.exit(f"peft_roundtrip: {args.adapter} has no {f}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch, transformers, peft
    from transformers import AutoTokenizer
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    base_dir, base_name = os.path.dirname(os.path.abspath(args.base)), os.path.basename(args.base)
    tok = AutoTokenizer.from_pretrained(base_dir, gguf_file=base_name)
    ids = tok(args.prompt, return_tensors="pt")["input_ids"]

    model = load_gguf(args.base, torch, transformers)
    base_w = tensors(model)
    with torch.no_grad():
        base_logits = model(ids).logits[0].float()

    adapted = peft.PeftModel.from_pretrained(model, args.adapter).eval()
    cfg = json.load(open(os.path.join(args.adapter, "adapter_config.json")))
    with torch.no_grad():
        unmerged_logits = adapted(ids).logits[0].float()
    peft_model = adapted.merge_and_unload().eval()
    peft_w = tensors(peft_model)
    with torch.no_grad():
        peft_logits = peft_model(ids).logits[0].float()
    del adapted, peft_model, model

    ours_model = load_gguf(args.merged, torch, transformers)
    ours_w = tensors(ours_model)
    with torch.no_grad():
        ours_logits = ours_model(ids).logits[0].float()
    del ours_model

    only_peft, only_ours = sorted(set(peft_w) - set(ours_w)), sorted(set(ours_w) - set(peft_w))
    shape_bad = [k for k in peft_w if k in ours_w and peft_w[k].shape != ours_w[k].shape]
    rows = []  # (name, max |ours - peft|, relative Frobenius, max |peft - base|)
    for k in sorted(peft_w):
        if k not in ours_w or k in shape_bad:
            continue
        a, b = peft_w[k], ours_w[k]
        d = (b - a)
        rel = (d.norm() / a.norm().clamp_min(1e-30)).item()
        eff = max_abs(a, base_w[k]) if k in base_w else float("nan")
        rows.append((k, d.abs().max().item(), rel, eff))

    w_max = max(r[1] for r in rows)
    w_rel = max(r[2] for r in rows)
    worst = max(rows, key=lambda r: r[1])
    num = sum(((ours_w[k] - peft_w[k]).norm() ** 2).item() for k, *_ in rows)
    den = sum((peft_w[k].norm() ** 2).item() for k, *_ in rows)
    rel_all = (num / den) ** 0.5
    changed = [r for r in rows if r[3] > 0]
    q_eff = max((r[3] for r in rows if r[0].endswith("q_proj.weight")), default=0.0)
    all_eff = max(r[3] for r in rows)
    logit_ours_peft = max_abs(ours_logits, peft_logits)
    logit_ours_unmerged = max_abs(ours_logits, unmerged_logits)
    logit_effect = max_abs(peft_logits, base_logits)
    top1_same = bool((ours_logits.argmax(-1) == peft_logits.argmax(-1)).all().item())

    print(f"peft_roundtrip: torch {found['torch']}, transformers {found['transformers']}, peft {found['peft']}, gguf {found['gguf']}")
    print(f"adapter: r {cfg.get('r')}, lora_alpha {cfg.get('lora_alpha')}, targets {','.join(cfg.get('target_modules', []))}; "
          f"prompt of {ids.shape[1]} tokens")
    print(f"tensors compared: {len(rows)} ({len(changed)} changed by the adapter)"
          + (f"; only in PEFT-merged: {only_peft}" if only_peft else "")
          + (f"; only in SafeTune-merged: {only_ours}" if only_ours else "")
          + (f"; shape mismatch: {shape_bad}" if shape_bad else ""))
    print()
    print("| figure | value | limit |")
    print("| --- | --- | --- |")
    print(f"| weights: max abs diff, SafeTune-merged vs PEFT-merged | {w_max:.3e} ({worst[0]}) | {args.weight_tol:g} |")
    print(f"| weights: relative Frobenius diff (all tensors / worst tensor) | {rel_all:.3e} / {w_rel:.3e} | |")
    print(f"| logits: max abs diff, SafeTune-merged vs PEFT-merged | {logit_ours_peft:.3e} | {args.logit_tol:g} |")
    print(f"| logits: max abs diff, SafeTune-merged vs PEFT unmerged (LoRA branch) | {logit_ours_unmerged:.3e} | {args.logit_tol:g} |")
    print(f"| logits: argmax equal at every position | {top1_same} | |")
    print(f"| adapter effect: max abs (merged - base), q_proj weights | {q_eff:.3e} | |")
    print(f"| adapter effect: max abs (merged - base), all weights | {all_eff:.3e} | |")
    print(f"| adapter effect: logits max abs (merged - base) | {logit_effect:.3e} | |")
    worst_rows = sorted(rows, key=lambda r: -r[1])[:5]
    print()
    print("worst tensors (max abs diff, relative diff, adapter effect):")
    for name, d, rel, eff in worst_rows:
        print(f"  {name}: {d:.3e}  {rel:.3e}  {eff:.3e}")

    ok = (not only_peft and not only_ours and not shape_bad and w_max <= args.weight_tol
          and logit_ours_peft <= args.logit_tol and logit_ours_unmerged <= args.logit_tol
          and q_eff > 0)
    if q_eff == 0:
        print("peft_roundtrip: the adapter changes no q_proj weight: the comparison says nothing about q", file=sys.stderr)
    print(f"\npeft_roundtrip: {'agree' if ok else 'DISAGREE'}")
    if args.json:
        doc = {"tool": "peft", "versions": found, "adapter": {k: cfg.get(k) for k in ("r", "lora_alpha", "target_modules")},
               "promptTokens": int(ids.shape[1]), "tensors": len(rows), "tensorsChanged": len(changed),
               "weightMaxAbsDiff": w_max, "weightRelDiffAll": rel_all, "weightRelDiffWorst": w_rel,
               "logitsMaxAbsDiff": logit_ours_peft, "logitsMaxAbsDiffUnmerged": logit_ours_unmerged, "top1Equal": top1_same,
               "effectQProjMaxAbs": q_eff, "effectAllMaxAbs": all_eff, "effectLogitsMaxAbs": logit_effect, "agree": ok}
        with open(args.json + ".tmp", "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(args.json + ".tmp", args.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
