#!/usr/bin/env python3
"""Peer for train-bench: a minimal PyTorch Llama with LoRA on q,v, trained with AdamW on CPU.

usage: torch_train.py --ours OURS.json --out PEER.json [--steps 5]

Re-runs every train_step / train_forward case of OURS.json (same model shape, B, T, rank, threads)
with torch.set_num_threads(threads): frozen F32 base, LoRA A Kaiming-uniform / B zero, alpha = 2r,
rotate-half RoPE, GQA via scaled_dot_product_attention(is_causal=True), tied head, token-mean
cross-entropy, clip_grad_norm_(1.0), AdamW(lr 1e-4, wd 0.01). A step is zero_grad + forward +
backward + clip + optimizer.step; forward-only runs under torch.no_grad(). FLOPs use the same
formula as train-bench, so GFLOP/s ratios equal tokens/s ratios. Exits 0 with "skipped" when torch
is missing.
"""
import argparse, json, math, os, statistics, sys, time

SHAPES = {
    "smollm2-135m": dict(V=49152, C=576, L=30, H=9, Hkv=3, D=64, F=1536, base=100000.0),
    "tiny": dict(V=512, C=64, L=2, H=4, Hkv=2, D=16, F=128, base=10000.0),
}


def step_flops(s, tokens, T, r):
    C, L, F, V, H, Hkv, D = s["C"], s["L"], s["F"], s["V"], s["H"], s["Hkv"], s["D"]
    pmm = L * (C * (H * D + 2 * Hkv * D) + H * D * C + 3 * C * F)
    attn = L * H * D * T
    head = C * V
    lora = L * r * ((C + H * D) + (C + Hkv * D))
    fwd = 2 * pmm + 2 * head + 2 * attn + 2 * lora
    bwd = 2 * pmm + 2 * head + 4 * attn + 4 * lora
    return (fwd + bwd) * tokens, fwd * tokens


def build(torch, s, r):
    nn, F = torch.nn, torch.nn.functional

    class LoRALinear(nn.Module):
        def __init__(self, i, o, rank):
            super().__init__()
            self.base = nn.Linear(i, o, bias=False)
            self.base.weight.requires_grad_(False)
            self.rank = rank
            if rank:
                self.A = nn.Parameter(torch.empty(rank, i))
                nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
                self.B = nn.Parameter(torch.zeros(o, rank))
                self.scale = 2.0

        def forward(self, x):
            y = self.base(x)
            if self.rank:
                y = y + (x @ self.A.t() @ self.B.t()) * self.scale
            return y

    class RMSNorm(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(c), requires_grad=False)

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight

    C, H, Hkv, D, Fd = s["C"], s["H"], s["Hkv"], s["D"], s["F"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = RMSNorm(C), RMSNorm(C)
            self.q, self.k = LoRALinear(C, H * D, r), LoRALinear(C, Hkv * D, 0)
            self.v, self.o = LoRALinear(C, Hkv * D, r), LoRALinear(H * D, C, 0)
            self.gate, self.up, self.down = LoRALinear(C, Fd, 0), LoRALinear(C, Fd, 0), LoRALinear(Fd, C, 0)

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            h = self.n1(x)
            q = self.q(h).view(B, T, H, D).transpose(1, 2)
            k = self.k(h).view(B, T, Hkv, D).transpose(1, 2)
            v = self.v(h).view(B, T, Hkv, D).transpose(1, 2)

            def rope(t):
                t1, t2 = t[..., : D // 2], t[..., D // 2:]
                return t * cos + torch.cat((-t2, t1), dim=-1) * sin

            q, k = rope(q), rope(k)
            k = k.repeat_interleave(H // Hkv, dim=1)
            v = v.repeat_interleave(H // Hkv, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.o(a.transpose(1, 2).reshape(B, T, H * D))
            h = self.n2(x)
            return x + self.down(F.silu(self.gate(h)) * self.up(h))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(s["V"], C)
            self.emb.weight.requires_grad_(False)
            self.blocks = nn.ModuleList([Block() for _ in range(s["L"])])
            self.norm = RMSNorm(C)

        def forward(self, ids, targets):
            T = ids.shape[1]
            inv = 1.0 / (s["base"] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
            ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
            ang = torch.cat((ang, ang), dim=-1)
            cos, sin = ang.cos(), ang.sin()
            x = self.emb(ids)
            for b in self.blocks:
                x = b(x, cos, sin)
            logits = self.norm(x) @ self.emb.weight.t()
            return F.cross_entropy(logits.view(-1, s["V"]), targets.reshape(-1))

    return Model()


def child(cases, steps):
    import torch
    out = []
    for case in cases:
        torch.set_num_threads(case["threads"])
        torch.manual_seed(1)
        s = SHAPES[case["model"]]
        B, T, r = case["B"], case["T"], case["rank"]
        model = build(torch, s, r)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
        ids = torch.randint(0, s["V"], (B, T))
        targets = torch.roll(ids, -1, dims=1)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = model(ids, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()

        flops_step, flops_fwd = step_flops(s, B * T, T, r)
        if case["name"] == "train_step":
            step()
            times = []
            for _ in range(steps):
                t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
            med, flops = statistics.median(times), flops_step
        else:
            with torch.no_grad():
                model(ids, targets)
                times = []
                for _ in range(max(2, steps // 2)):
                    t0 = time.perf_counter(); model(ids, targets); times.append(time.perf_counter() - t0)
            med, flops = statistics.median(times), flops_fwd
        r_ = {k: v for k, v in case.items() if k not in ("medianNs", "tokensPerSecond", "gflops")}
        r_.update(medianNs=int(med * 1e9), tokensPerSecond=round(B * T / med, 1), gflops=round(flops / med / 1e9, 2))
        out.append(r_)
        print(f"torch_train: {case['name']} B={B} T={T} threads={case['threads']}: {B * T / med:.1f} tokens/s", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    ours = json.load(open(args.ours))
    cases = [r for r in ours.get("results", []) if r.get("name") in ("train_step", "train_forward") and r.get("model") in SHAPES]
    try:
        import torch
    except ImportError:
        print("torch_train: skipped: torch not installed")
        return
    if not cases:
        print("torch_train: skipped: no train_step/train_forward cases in", args.ours)
        return
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(k, None)
    doc = {"tool": "pytorch", "version": f"torch {torch.__version__}", "results": child(cases, args.steps)}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
