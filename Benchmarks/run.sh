#!/usr/bin/env bash
# One command for the kernel benchmarks, side by side with the peers measured in the same run.
#   Benchmarks/run.sh [FILTER] [--rounds R] [--threads N,...] [--quick]
# Builds kernel-bench for this CPU (SAFETUNE_CPU=native, release), runs the cases matching FILTER
# (default: all), runs every peer script under Benchmarks/Peers (each skips itself when its peer
# is not installed), and prints the comparison. JSON files land in Benchmarks/Results/latest/.
# --rounds R (default 1) alternates our run and the peers' R times and keeps each case's best
# round for each tool (Benchmarks/best_of.py): on a virtual machine single runs of both sides
# move by 10-40% with the neighbours' load, and alternating gives both the same quiet moments.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then filter="$1"; shift; fi
rounds=1
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
        --rounds=*) rounds="${1#--rounds=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "$rounds" in ''|*[!0-9]*|0) echo "run.sh: --rounds must be a positive integer, got '$rounds'" >&2; exit 2 ;; esac
out=Benchmarks/Results/latest
mkdir -p "$out"
rm -f "$out"/*.r[0-9]*.json  # rounds of an earlier run must not mix into this one
echo "== building kernel-bench (SAFETUNE_CPU=${SAFETUNE_CPU:-native}, release)" >&2
SAFETUNE_CPU="${SAFETUNE_CPU:-native}" swift build -c release --product kernel-bench >&2
bin="$(SAFETUNE_CPU="${SAFETUNE_CPU:-native}" swift build -c release --show-bin-path)/kernel-bench"
scripts=()
for script in Benchmarks/Peers/*.py; do
    name="$(basename "$script" .py)"
    case "$name" in *_common|*_fixtures|llamacpp_bench|peft_roundtrip|torch_train) continue ;; esac  # helpers, fixture makers, other harnesses
    scripts+=("$script")
done
for r in $(seq 1 "$rounds"); do
    echo "== SafeTune kernels (round $r of $rounds)" >&2
    "$bin" ${filter:+--filter "$filter"} --json "$out/ours.r$r.json" "${args[@]+"${args[@]}"}"
    for script in "${scripts[@]}"; do
        name="$(basename "$script" .py)"
        echo "== peer $name (round $r of $rounds)" >&2
        python3 "$script" --ours "$out/ours.r$r.json" --out "$out/$name.r$r.json" || true
    done
done
python3 Benchmarks/best_of.py "$out/ours.json" "$out"/ours.r*.json
peers=()
for script in "${scripts[@]}"; do
    name="$(basename "$script" .py)"
    files=("$out/$name".r*.json)
    [ -f "${files[0]}" ] || continue
    python3 Benchmarks/best_of.py "$out/$name.json" "${files[@]}" && peers+=("$out/$name.json")
done
echo
python3 Benchmarks/compare.py "$out/ours.json" "${peers[@]+"${peers[@]}"}"
