#!/usr/bin/env python3
"""Regenerates the llama.cpp reference fixtures of the engine tests with stock llama.cpp binaries.

usage:
  llamacpp_fixtures.py tokenizer  [--llama-cpp-dir D] [--models-dir M]
      Tests/Fixtures/tokenizer/texts.json -> Tests/Fixtures/tokenizer/smollm2-ids.json
      (llama-tokenize --stdin --ids --no-bos --no-escape, with and without --no-parse-special, on the Q4_1 GGUF)
  llamacpp_fixtures.py reference  [--llama-cpp-dir D] [--models-dir M] [--data-dir S] [--work-dir W]
      -> Tests/Fixtures/reference/perplexity.json and top1.json
      (llama-perplexity -c 256 -t 2 --kl-divergence-base W/<weights>.logits on the F32, F16 and Q4_1 GGUFs;
      the text is rebuilt from the shared data, see llamacpp_common.perplexity_text)

The F32 and F16 GGUFs are made from the Q4_1 one with
  llama-quantize --allow-requantize SmolLM2-135M-Instruct.Q4_1.gguf SmolLM2-135M-Instruct.F32.gguf F32
(and F16); the script makes them when they are missing.

The --kl-divergence-base file holds, for each chunk of n_ctx tokens, the log-probabilities at positions
n_ctx/2 ... n_ctx-2 (each predicting the next token) quantized to uint16 per position: two floats (scale,
min log-prob) then round((logit - min_logit) / scale) per vocabulary entry, min_logit >= max_logit - 16, so the
argmax is exact up to one quantum (scale <= 16/65535 in logit units). Positions whose two best logits are closer
than NEAR_TIE are listed with the runner-up so a test can accept either.
"""
import argparse, datetime, json, os, re, subprocess, sys, tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llamacpp_common as lc

FIXTURES = lc.REPO / "Tests" / "Fixtures"
N_CTX = 256
NEAR_TIE = 0.05


def need(ldir, name):
    b = lc.binary(ldir, name)
    if b is None:
        sys.exit(f"llamacpp_fixtures: {name} not found under {ldir} (set LLAMA_CPP_DIR or --llama-cpp-dir)")
    return b


def ensure_weights(ldir, mdir, weights):
    path = lc.model_path(mdir, weights)
    if path.is_file():
        return path
    src = lc.model_path(mdir, "Q4_1")
    if not src.is_file():
        sys.exit(f"llamacpp_fixtures: {src} missing (run Scripts/fetch-model.sh {mdir})")
    cmd = [str(need(ldir, "llama-quantize")), "--allow-requantize", str(src), str(path), weights]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return path


def tokenize(tok_bin, model, text, parse_special):
    cmd = [str(tok_bin), "-m", str(model), "--stdin", "--ids", "--no-bos", "--no-escape", "--log-disable"]
    if not parse_special:
        cmd.append("--no-parse-special")
    out = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def cmd_tokenizer(args):
    ldir, mdir = lc.llama_dir(args.llama_cpp_dir), lc.models_dir(args.models_dir)
    tok_bin, model = need(ldir, "llama-tokenize"), lc.model_path(mdir, "Q4_1")
    texts = json.loads((FIXTURES / "tokenizer" / "texts.json").read_text(encoding="utf-8"))
    special = [tokenize(tok_bin, model, t, True) for t in texts]
    plain = [tokenize(tok_bin, model, t, False) for t in texts]
    doc = {
        "about": "llama.cpp token ids of Tests/Fixtures/tokenizer/texts.json (same order), no BOS; "
                 "parseSpecial: special tokens in the text are matched, noParseSpecial: they are plain text",
        "model": model.name,
        "llamaCppCommit": lc.commit(ldir),
        "command": "llama-tokenize -m " + model.name + " --stdin --ids --no-bos --no-escape --log-disable "
                   "[--no-parse-special]  (text on stdin, UTF-8, as is)",
        "generated": datetime.date.today().isoformat(),
        "parseSpecial": special,
        "noParseSpecial": plain,
    }
    write_json(FIXTURES / "tokenizer" / "smollm2-ids.json", doc, rows=("parseSpecial", "noParseSpecial"))


def read_logits(path):
    import numpy as np
    with open(path, "rb") as f:
        if f.read(8) != b"_logits_":
            sys.exit(f"llamacpp_fixtures: {path} is not a llama-perplexity logits file")
        n_ctx, n_vocab, n_chunk = (int(x) for x in np.frombuffer(f.read(12), dtype=np.int32))
        tokens = np.frombuffer(f.read(4 * n_ctx * n_chunk), dtype=np.int32)
        nv = 2 * ((n_vocab + 1) // 2) + 4
        per = n_ctx - 1 - n_ctx // 2
        data = np.fromfile(f, dtype=np.uint16)
    if data.size != n_chunk * per * nv:
        sys.exit(f"llamacpp_fixtures: {path}: {data.size} values, expected {n_chunk * per * nv}")
    data = data.reshape(n_chunk * per, nv)
    scale = data[:, :2].copy().view(np.float32)[:, 0].astype(np.float64)
    q = data[:, 4:4 + n_vocab]
    top = np.argmax(q, axis=1)          # first index among equal maxima
    order = np.argsort(q, axis=1, kind="stable")[:, -2:]
    rows = np.arange(q.shape[0])
    second = np.where(order[:, 1] == top, order[:, 0], order[:, 1])
    gap = (q[rows, top].astype(np.float64) - q[rows, second]) * scale
    # negative log-likelihood of the actual next token (to about one quantum; 0 entries mean "below max - 16")
    min_log_prob = data[:, 2:4].copy().view(np.float32)[:, 0].astype(np.float64)
    targets = np.concatenate([tokens[c * n_ctx + n_ctx // 2 + 1:(c + 1) * n_ctx] for c in range(n_chunk)])
    nll = -(min_log_prob + q[rows, targets] * scale)
    return n_ctx, n_chunk, tokens, top, second, gap, nll


def run_perplexity(ldir, model, text_file, logits_file, log_file, reuse):
    if not (reuse and logits_file.is_file() and log_file.is_file()):
        cmd = [str(need(ldir, "llama-perplexity")), "-m", str(model), "-f", str(text_file), "-c", str(N_CTX),
               "-t", "2", "--kl-divergence-base", str(logits_file)]
        print("+", " ".join(cmd), file=sys.stderr)
        with open(log_file, "w") as log:
            subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    log = log_file.read_text(errors="replace")
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
    c = re.search(r"calculating perplexity over (\d+) chunks, n_ctx=(\d+), batch_size=(\d+), n_seq=(\d+)", log)
    if not m or not c:
        sys.exit(f"llamacpp_fixtures: no final estimate in {log_file}")
    return float(m.group(1)), float(m.group(2)), int(c.group(1)), int(c.group(3))


def cmd_reference(args):
    ldir, mdir = lc.llama_dir(args.llama_cpp_dir), lc.models_dir(args.models_dir)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="llamacpp-ref-"))
    work.mkdir(parents=True, exist_ok=True)
    text = lc.perplexity_text(lc.shared_data_dir(args.data_dir))
    text_file = work / "alpaca-outputs-128.txt"
    text_file.write_bytes(text.encode("utf-8"))
    n_text_tokens = len(tokenize(need(ldir, "llama-tokenize"), lc.model_path(mdir, "Q4_1"), text, False))
    today, commit = datetime.date.today().isoformat(), lc.commit(ldir)
    results, tops = [], {}
    for w in lc.WEIGHTS:
        model = ensure_weights(ldir, mdir, w)
        lf, logf = work / f"{w}.logits", work / f"{w}.log"
        ppl, err, n_chunk, n_batch = run_perplexity(ldir, model, text_file, lf, logf, args.reuse)
        n_ctx, n_chunk_f, tokens, top, second, gap, nll = read_logits(lf)
        assert n_ctx == N_CTX and n_chunk_f == n_chunk
        tops[w] = (tokens, top, second, gap)
        per_chunk = nll.reshape(n_chunk, -1).mean(axis=1)
        results.append({"weights": w, "model": model.name, "perplexity": ppl, "plusMinus": err,
                        "chunkMeanNll": [round(float(x), 4) for x in per_chunk]})
        if not args.keep_logits:
            lf.unlink()
    tokens, top, second, gap = tops["F32"]
    per = N_CTX - 1 - N_CTX // 2
    for r in results:
        r["top1AgreementWithF32"] = round(float((tops[r["weights"]][1] == top).mean()), 5)
    construction = ("stanford_alpaca/alpaca_5000.json (shared data): the `output` strings of the first 128 list "
                    "entries, in file order, joined with \"\\n\\n\", no trailing newline, UTF-8")
    ppl_doc = {
        "about": "llama.cpp perplexity at n_ctx 256 of the SmolLM2-135M-Instruct weights on the text below",
        "text": construction,
        "textCharacters": len(text),
        "textTokens": n_text_tokens,
        "nCtx": N_CTX, "nChunks": n_chunk, "evaluatedTokens": n_chunk * N_CTX,
        "scoredPositionsPerChunk": f"positions {N_CTX // 2}...{N_CTX - 2} of each chunk predict the next token",
        "scoredTokens": n_chunk * per,
        "bos": "none (tokenizer.ggml.add_bos_token is false, so no token is replaced at the start of a chunk)",
        "llamaCppCommit": commit,
        "command": f"llama-perplexity -m SmolLM2-135M-Instruct.<W>.gguf -f TEXT -c {N_CTX} -t 2 "
                   f"--kl-divergence-base LOGITS  (batch {n_batch}: {n_batch // N_CTX} chunks per decode)",
        "generated": today,
        "chunkMeanNllNote": "mean negative log-likelihood of the scored tokens of each chunk, from the 16-bit "
                            "logits file (about 1e-4 accurate); exp(mean of all) ~ perplexity",
        "results": results,
    }
    write_json(FIXTURES / "reference" / "perplexity.json", ppl_doc)
    near = [[i, int(second[i]), round(float(gap[i]), 4)] for i in range(len(top)) if gap[i] < NEAR_TIE]
    top_doc = {
        "about": "llama.cpp greedy top-1 next-token ids from the F32 weights, same text and chunking as "
                 "perplexity.json. inputIds: the nChunks*nCtx tokens evaluated (chunk c = inputIds[c*nCtx ..< "
                 "(c+1)*nCtx], each chunk a fresh sequence starting at position 0). top1[c*perChunk + (p - first)] is "
                 "the argmax of the logits at position p of chunk c, for p in first ..< nCtx-1. nearTies: "
                 f"[index into top1, runner-up id, logit gap] where the two best logits differ by less than {NEAR_TIE} "
                 "(gaps are exact to about 2.4e-4: llama.cpp stores the logits quantized to 16 bits)",
        "text": construction,
        "model": "SmolLM2-135M-Instruct.F32.gguf",
        "llamaCppCommit": commit,
        "command": ppl_doc["command"].replace("<W>", "F32") + "; argmax of the LOGITS file",
        "generated": today,
        "nCtx": N_CTX, "nChunks": n_chunk, "first": N_CTX // 2, "perChunk": per,
        "inputIds": [int(t) for t in tokens],
        "top1": [int(t) for t in top],
        "nearTies": near,
    }
    write_json(FIXTURES / "reference" / "top1.json", top_doc, rows=("inputIds", "top1", "nearTies"))
    print(json.dumps(results, indent=1))


def write_json(path, doc, rows=()):
    """Pretty JSON with each long array on one line (keeps the fixtures small and diffable)."""
    parts = []
    for k, v in doc.items():
        if k in rows:
            body = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
            if k in ("parseSpecial", "noParseSpecial", "nearTies"):
                body = "[\n  " + ",\n  ".join(json.dumps(x, separators=(",", ":")) for x in v) + "\n ]"
        else:
            body = json.dumps(v, ensure_ascii=False, indent=1).replace("\n", "\n ")
        parts.append(f" {json.dumps(k)}: {body}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{\n" + ",\n".join(parts) + "\n}\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("tokenizer", "reference"))
    ap.add_argument("--llama-cpp-dir")
    ap.add_argument("--models-dir")
    ap.add_argument("--data-dir")
    ap.add_argument("--work-dir", help="where the text, logs and logits files go (default: a new temp dir)")
    ap.add_argument("--reuse", action="store_true", help="reuse logits and logs already in --work-dir")
    ap.add_argument("--keep-logits", action="store_true", help="keep the ~340 MB logits files")
    args = ap.parse_args()
    {"tokenizer": cmd_tokenizer, "reference": cmd_reference}[args.what](args)


if __name__ == "__main__":
    main()
