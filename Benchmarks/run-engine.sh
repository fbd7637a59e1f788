#!/usr/bin/env bash
# The engine benchmark side by side with llama.cpp (built beside the project, see Benchmarks/Peers/README.md):
#   Benchmarks/run-engine.sh [--threads N]
# Builds engine-bench for this CPU, fetches the model if needed, measures pp512 / tg128 / batched generation,
# then runs llama-bench on the F32, F16 and Q4_1 GGUFs that exist in models/ (skipped when llama.cpp is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
out=Benchmarks/Results/latest
mkdir -p "$out"
Scripts/fetch-model.sh models
SAFETUNE_CPU="${SAFETUNE_CPU:-native}" swift build -c release --product engine-bench >&2
bin="$(SAFETUNE_CPU="${SAFETUNE_CPU:-native}" swift build -c release --show-bin-path)"
"$bin/engine-bench" --model models/SmolLM2-135M-Instruct.Q4_1.gguf --json "$out/engine.json" "$@"
python3 Benchmarks/Peers/llamacpp_bench.py --ours "$out/engine.json" --out "$out/llamacpp.json" --models-dir models || true
if [ -f "$out/llamacpp.json" ]; then
    python3 - "$out/engine.json" "$out/llamacpp.json" <<'PY'
import json, sys
ours = {r["name"]: r["tokensPerSecond"] for r in json.load(open(sys.argv[1]))["results"]}
peer = json.load(open(sys.argv[2]))
print(f"\nllama.cpp {peer.get('version', '?')[:12]}")
print(f"{'test':<10} {'SafeTune':>10} {'llama.cpp':>10} {'weights':>8} {'ratio':>7}")
for r in peer["results"]:
    mine = ours.get(r["name"])
    if mine:
        print(f"{r['name']:<10} {mine:>10.1f} {r['tokensPerSecond']:>10.1f} {r['weights']:>8} {mine / r['tokensPerSecond']:>6.2f}x")
PY
fi
