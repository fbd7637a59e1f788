"""Shared helpers for the llama.cpp peer scripts: where llama.cpp, the models and the shared data are.

llama.cpp is built beside the project, never inside it:
  LLAMA_CPP_DIR   source tree with build/bin/llama-* (default: <repo>/../peers/llama.cpp)
  MODELS_DIR      directory with the SmolLM2 GGUFs (default: <repo>/models, filled by Scripts/fetch-model.sh)
  SAFETUNE_SHARED_DATA  shared data directory (default: <repo>/../shared/data)
The llama.cpp commit is read from LLAMA_CPP_COMMIT, else `git rev-parse HEAD` in LLAMA_CPP_DIR, else the file
LLAMA_CPP_DIR/COMMIT (written by hand when the tree was exported from git without its history).
"""
import json, os, subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL_STEM = "SmolLM2-135M-Instruct"
WEIGHTS = ("F32", "F16", "Q4_1")


def llama_dir(arg=None):
    return Path(arg or os.environ.get("LLAMA_CPP_DIR") or REPO.parent / "peers" / "llama.cpp")


def models_dir(arg=None):
    return Path(arg or os.environ.get("MODELS_DIR") or REPO / "models")


def shared_data_dir(arg=None):
    return Path(arg or os.environ.get("SAFETUNE_SHARED_DATA") or REPO.parent / "shared" / "data")


def binary(ldir, name):
    """Path of a llama.cpp binary, or None when it was not built."""
    for sub in ("build/bin", "bin", "build"):
        p = Path(ldir) / sub / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def model_path(mdir, weights):
    return Path(mdir) / f"{MODEL_STEM}.{weights}.gguf"


def commit(ldir):
    if os.environ.get("LLAMA_CPP_COMMIT"):
        return os.environ["LLAMA_CPP_COMMIT"]
    try:
        out = subprocess.run(["git", "-C", str(ldir), "rev-parse", "HEAD"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except OSError:
        pass
    f = Path(ldir) / "COMMIT"
    return f.read_text().strip() if f.is_file() else "unknown"


def perplexity_text(data_dir, rows=128):
    """The perplexity / top-1 reference text, rebuilt from the shared data (never copied into the repo).

    stanford_alpaca/alpaca_5000.json is a JSON list of {instruction, input, output}; the text is the `output`
    strings of the first `rows` entries, in file order, joined with "\\n\\n" (no trailing newline). The first
    128 outputs are all non-empty.
    """
    rows_ = json.loads((Path(data_dir) / "stanford_alpaca" / "alpaca_5000.json").read_text(encoding="utf-8"))
    outs = [r["output"] for r in rows_[:rows]]
    assert all(outs), "an empty output inside the selected rows"
    return "\n\n".join(outs)
