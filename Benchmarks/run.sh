#!/usr/bin/env bash
# One command for the kernel benchmarks, side by side with the peers measured in the same run.
#   Benchmarks/run.sh [FILTER] [--threads N,...] [--quick]
# Builds kernel-bench for this CPU (SAFETUNE_CPU=native, release), runs the cases matching FILTER
# (default: all), runs every peer script under Benchmarks/Peers (each skips itself when its peer
# is not installed), and prints the comparison. JSON files land in Benchmarks/Results/latest/.
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-}"; [ $# -gt 0 ] && shift
out=Benchmarks/Results/latest
mkdir -p "$out"
echo "== building kernel-bench (SAFETUNE_CPU=${SAFETUNE_CPU:-native}, release)" >&2
SAFETUNE_CPU="${SAFETUNE_CPU:-native}" swift build -c release --product kernel-bench >&2
bin="$(SAFETUNE_CPU="${SAFETUNE_CPU:-native}" swift build -c release --show-bin-path)/kernel-bench"
echo "== SafeTune kernels" >&2
"$bin" ${filter:+--filter "$filter"} --json "$out/ours.json" "$@"
peers=()
for script in Benchmarks/Peers/*.py; do
    name="$(basename "$script" .py)"
    case "$name" in *_common|*_fixtures|llamacpp_bench) continue ;; esac  # helpers, fixture makers, the engine peer
    echo "== peer $name" >&2
    python3 "$script" --ours "$out/ours.json" --out "$out/$name.json" && [ -f "$out/$name.json" ] && peers+=("$out/$name.json")
done
echo
python3 Benchmarks/compare.py "$out/ours.json" "${peers[@]}"
