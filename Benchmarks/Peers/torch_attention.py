#!/usr/bin/env python3
"""Peer for kernel-bench's attention cases: PyTorch scaled_dot_product_attention on CPU.

usage: torch_attention.py --ours OURS.json --out PEER.json [--min-time 0.5]

Re-runs every attention_forward / attention_backward / attention_decode case of OURS.json with the
same (B, heads, kvHeads, T, D, causal) and thread count (torch.set_num_threads), layout (B, H, T, D)
contiguous, grouped-query heads through enable_gqa=True. FLOPs are counted exactly as ours:
forward 4·B·H·T²·D (half when causal), backward 2.5x forward (timed alone: the forward that
builds the graph runs outside the timer), decode 4·B·H·T·D. Each thread count runs in a child
process with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed. Exits 0 with "skipped" without torch.
"""
import json, sys, time

from peer_common import cases_of, parse_args, record, run_children, write

PARAMS = ("B", "heads", "kvHeads", "T", "D", "causal")
NAMES = ("attention_forward", "attention_backward", "attention_decode")


def flops(case):
    B, H, T, D = case["B"], case["heads"], case["T"], case["D"]
    if case["name"] == "attention_decode":
        return 4.0 * B * H * T * D
    f = 4.0 * B * H * T * T * D * (0.5 if case.get("causal") else 1.0)
    return 2.5 * f if case["name"] == "attention_backward" else f


def time_it(fn, min_time, setup=None):
    for _ in range(2):
        a = setup() if setup else None
        fn(a)
    samples, start = [], time.perf_counter()
    while len(samples) < 5 or time.perf_counter() - start < min_time:
        a = setup() if setup else None
        t0 = time.perf_counter()
        fn(a)
        samples.append(time.perf_counter() - t0)
    return samples


def child(cases, min_time):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(1)
    out = []
    for case in cases:
        torch.set_num_threads(case["threads"])
        B, H, Hkv, T, D = case["B"], case["heads"], case["kvHeads"], case["T"], case["D"]
        causal = bool(case.get("causal", False))
        decode = case["name"] == "attention_decode"
        q = torch.rand(B, H, 1 if decode else T, D) * 2 - 1
        k = torch.rand(B, Hkv, T, D) * 2 - 1
        v = torch.rand(B, Hkv, T, D) * 2 - 1
        sdpa = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal and not decode, enable_gqa=True)
        # verified: head 0 of batch 0 against explicit softmax(QKᵀ/√D)V in float64
        with torch.no_grad():
            o = sdpa(q, k, v)
            s = (q[0, 0].double() @ k[0, 0].double().T) / D ** 0.5
            if causal and not decode:
                s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
            ref = torch.softmax(s, -1) @ v[0, 0].double()
            verified = bool(torch.allclose(o[0, 0].double(), ref, atol=1e-4))
        if case["name"] == "attention_backward":
            qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
            dout = torch.rand(B, H, T, D) * 2 - 1
            samples = time_it(lambda o: torch.autograd.grad(o, (qg, kg, vg), dout), min_time, setup=lambda: sdpa(qg, kg, vg))
        else:
            with torch.no_grad():
                samples = time_it(lambda _: sdpa(q, k, v), min_time)
        out.append(record(case, PARAMS, samples, flops(case), 0.0, gbps=0.0, verified=verified))
    return out


def main():
    args = parse_args(__doc__)
    cases = cases_of(args, NAMES)
    if args.child:
        json.dump(child(cases, args.min_time), sys.stdout)
        return
    try:
        import torch
    except ImportError:
        print("torch_attention: skipped: torch not installed")
        return
    results = run_children(__file__, args, cases, "torch_attention")
    write(args.out, {"tool": "pytorch-sdpa", "version": torch.__version__, "results": results})
    for r in results:
        print(f"torch {r['name']} " + ",".join(f"{k}={r[k]}" for k in PARAMS if k in r) + f" threads={r['threads']}: {r['gflops']} GFLOP/s")


if __name__ == "__main__":
    main()
