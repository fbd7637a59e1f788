#!/usr/bin/env bash
# Checks a dist folder made by Scripts/release.sh the way a machine with nothing installed runs it:
# every command under `env -i` (no PATH, no toolchain), from the folder's own bin/.
#   Scripts/check-dist.sh [DIST_FOLDER]   (default: the newest dist/safetune-*/ folder)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dist="${1:-$(ls -d "$repo"/dist/safetune-*/ 2>/dev/null | sort | tail -1)}"
[ -d "$dist" ] || { echo "check-dist: no dist folder (run Scripts/release.sh)" >&2; exit 1; }
dist="$(cd "$dist" && pwd)"
fail() { echo "check-dist: FAILED: $*" >&2; exit 1; }
run() { env -i "$@"; }

( cd "$dist" && sha256sum --quiet -c SHA256SUMS ) || fail "checksums"
best="$(run "$dist/bin/safetune-launch" --which | cut -d';' -f1 | cut -d' ' -f1)"
echo "check-dist: this CPU gets '$best'"
for t in "$dist"/bin/*; do
  name="$(basename "$t")"; [ "$name" = safetune-launch ] && continue
  run "$t" --help > /dev/null || fail "$name --help"
  v="$(run "$t" --version)" || fail "$name --version"
  case "$v" in *"launcher chose $best"*) ;; *) fail "$name --version does not report the launcher's choice: $v" ;; esac
done
echo "check-dist: every tool answers --help and --version under env -i ($(run "$dist/bin/saft" --version))"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
run "$dist/bin/kernel-bench" --filter sgemm --quick --json "$tmp/k.json" > /dev/null || fail "kernel-bench --quick"
grep -q "\"launcher\"" "$tmp/k.json" || fail "kernel-bench JSON lacks the launcher's choice"
for v in $(ls "$dist/libexec"); do
  [ "$v" = "$best" ] && continue
  if run SAFETUNE_VARIANT="$v" "$dist/bin/kernel-bench" --dump "$tmp/$v.json" 2>/dev/null; then
    run "$dist/bin/kernel-bench" --against "$tmp/$v.json" || fail "$best and $v disagree"
  else
    echo "check-dist: variant $v does not run on this CPU; skipped"
  fi
done
echo "check-dist: ok"
