#!/usr/bin/env bash
# Builds self-contained SafeTune binaries, one complete build per CPU level, and lays out dist/:
#   dist/safetune-<version>-linux-<arch>/bin/<tool>           links to the launcher (picks the build)
#   dist/safetune-<version>-linux-<arch>/libexec/<variant>/    the tools built for that CPU level
#   dist/safetune-<version>-linux-<arch>/README.md, SHA256SUMS
#   dist/safetune-<version>-linux-<arch>.tar.gz
# Usage: Scripts/release.sh [--variants avx512,avx2,portable] [--out DIR]
# Every tool lives in one multi-call binary per variant (`safetune TOOL ...`; 60 MB static, so one per
# variant instead of one per tool). Each variant is `swift build -c release --static-swift-stdlib` with SAFETUNE_CPU set to its level
# (see Docs/DEPLOYMENT.md); builds live in .build-dist/<variant> and are reused when nothing changed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
say() { echo "release: $*" >&2; }
fail() { echo "release: error: $*" >&2; exit 1; }

arch="$(uname -m)"
case "$arch" in
  x86_64) all_variants="avx512,avx2,portable" ;;
  aarch64|arm64) all_variants="neon"; arch=arm64 ;;
  *) fail "unsupported architecture $arch" ;;
esac
variants="$all_variants"
out="$repo/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --variants) variants="${2:?--variants needs a list}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) fail "unknown option $1 (see --help)" ;;
  esac
done

target_cpu() {
  case "$1" in
    avx512) echo skylake-avx512 ;;
    avx2) echo haswell ;;
    portable|neon) echo "" ;;
    *) fail "unknown variant '$1' (variants for $arch: $all_variants)" ;;
  esac
}

version="$(sed -n 's/.*static let version = "\(.*\)"/\1/p' Kernels/Support/BuildInfo.swift)"
[ -n "$version" ] || fail "cannot read the version from Kernels/Support/BuildInfo.swift"
name="safetune-$version-linux-$arch"
stage="$out/$name"
rm -rf "$stage" "$out/$name.tar.gz"
mkdir -p "$stage/bin" "$stage/libexec"

IFS=, read -r -a list <<< "$variants"
# The launcher always comes from a baseline build, so it starts on any CPU of the architecture.
base_variant=portable; [ "$arch" = arm64 ] && base_variant=neon
need_base=1; for v in "${list[@]}"; do [ "$v" = "$base_variant" ] && need_base=0; done
build_list=("${list[@]}"); [ $need_base = 1 ] && build_list+=("$base_variant")

for v in "${build_list[@]}"; do
  cpu="$(target_cpu "$v")"
  scratch="$repo/.build-dist/$v"
  say "building $v (SAFETUNE_CPU=${cpu:-<none>}) in $scratch"
  start=$(date +%s)
  SAFETUNE_CPU="$cpu" swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product safetune 2>&1 \
    | grep -E "error|warning: unre|Compiling|Build complete" | grep -v "^\[" | tail -3 >&2 || true
  bindir="$(SAFETUNE_CPU="$cpu" swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)"
  if [ "$v" = "$base_variant" ]; then
    SAFETUNE_CPU="$cpu" swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product safetune-launch 2>&1 | grep -E "error" >&2 || true
  fi
  [ -x "$bindir/safetune" ] || fail "the $v build failed (no $bindir/safetune)"
  say "$v built in $(( $(date +%s) - start )) s"
  if [ "$v" = "$base_variant" ]; then cp "$bindir/safetune-launch" "$stage/bin/safetune-launch"; fi
  keep=0; for w in "${list[@]}"; do [ "$w" = "$v" ] && keep=1; done
  [ $keep = 1 ] || continue
  mkdir -p "$stage/libexec/$v"
  cp "$bindir/safetune" "$stage/libexec/$v/safetune"
  strip "$stage/libexec/$v/safetune" 2>/dev/null || true
done
strip "$stage/bin/safetune-launch" 2>/dev/null || true
# One link per tool the multi-call binary holds (its --help lists them).
tools=($(env -i "$stage/libexec/${list[0]}/safetune" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' || true))
[ ${#tools[@]} -gt 0 ] || tools=($("$stage/libexec/$base_variant/safetune" --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'))
for t in "${tools[@]}"; do ln -sf safetune-launch "$stage/bin/$t"; done

# Self-contained: nothing from the Swift toolchain may be needed at run time.
for f in "$stage"/bin/safetune-launch "$stage"/libexec/*/*; do
  if ldd "$f" 2>/dev/null | grep -Eq "libswift|libFoundation|libdispatch|libBlocksRuntime|lib_Foundation"; then
    fail "$f links a Swift runtime library: $(ldd "$f" | grep -E 'swift|Foundation|dispatch' | tr '\n' ' ')"
  fi
done

cat > "$stage/README.md" <<README
# SafeTune $version for Linux $arch

Self-contained binaries: no Swift toolchain, Python or other library is needed beyond the C library
(glibc, libstdc++, libgcc_s, libm). Copy this folder anywhere and run the tools from \`bin/\`.

Each tool in \`bin/\` is a link to \`safetune-launch\`, which reads the CPU's feature flags from
/proc/cpuinfo and runs the tool from the fastest build this CPU supports, \`libexec/<variant>/safetune\`
(one binary holding every tool):

| variant | CPUs | built with |
| --- | --- | --- |
$(for v in "${list[@]}"; do case $v in
  avx512) echo "| avx512 | AVX-512 F/CD/BW/DQ/VL (Skylake-X, Ice Lake, Sapphire Rapids, Zen 4, Zen 5) | SAFETUNE_CPU=skylake-avx512 |" ;;
  avx2) echo "| avx2 | AVX2 + FMA (Haswell and later, Zen 1 and later) | SAFETUNE_CPU=haswell |" ;;
  portable) echo "| portable | any x86-64 | baseline x86-64 (SSE2) |" ;;
  neon) echo "| neon | any arm64 | baseline arm64 (NEON) |" ;;
esac; done)

- \`bin/<tool> --version\` prints the build that ran and why the launcher chose it; every JSON report
  carries the same under "build".
- \`SAFETUNE_VARIANT=<variant> bin/<tool> ...\` forces a variant (refused if the CPU lacks it).
- \`bin/safetune-launch --which\` prints the variant this machine gets.

Tools: $(ls "$stage/bin" | grep -v safetune-launch | tr '\n' ' ')
Each has \`--help\`. The model they need (e.g. SmolLM2-135M-Instruct.Q4_1.gguf) is not included.

Benchmark this machine:
    bin/kernel-bench --all --json kernels-\$(hostname).json
    bin/engine-bench --model SmolLM2-135M-Instruct.Q4_1.gguf --json engine-\$(hostname).json
Compare machines with Benchmarks/compare-machines.py from the source tree (reads several JSON files).
README

( cd "$stage" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS )
tar -C "$out" -czf "$out/$name.tar.gz" "$name"
say "ready: $stage ($(du -sh "$stage" | cut -f1)), archive $out/$name.tar.gz ($(du -sh "$out/$name.tar.gz" | cut -f1))"
