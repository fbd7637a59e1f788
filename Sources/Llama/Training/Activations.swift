import Foundation

/// What backward needs from one block's forward, as views into an `ActivationArena`.
/// Shapes (N tokens): xIn, xn1, xMid, xn2 (N, C); rstd1, rstd2 (N); qkv (N, (H + 2·Hkv)·D) after
/// RoPE; att (N, H·D); lse (H, N); gate, up (N, F) before SwiGLU; loraT (7, N, r): the LoRA
/// intermediates t = dropout(x)·Aᵀ of each target, by `LoRATarget.index`.
struct BlockActivations {
    var xIn: UnsafeMutablePointer<Float>
    let xn1, rstd1, qkv, att, lse, xMid, xn2, rstd2, gate, up: UnsafeMutablePointer<Float>
    let loraT: UnsafeMutablePointer<Float>?
}

/// Every activation and scratch buffer of a training step over up to `tokens` rows, in one
/// allocation (llm.c's ActivationTensors).
///
/// Layout: the residual stream before every block and after the last one ((L + 1)·N·C floats,
/// always kept); then either one `BlockActivations` per block (`keepsAll`) or a single shared
/// set that a recomputing backward refills block by block; then the backward scratch.
/// Floats per token, keepsAll: (L + 1)·C + L·(4C + 2 + Q + H·D + H + 2F + 7r) + scratch, with
/// Q = (H + 2·Hkv)·D; the shared mode replaces the L by 1.
final class ActivationArena {
    let tokens: Int
    let keepsAll: Bool
    let residuals: [UnsafeMutablePointer<Float>]
    let blocks: [BlockActivations]
    // Scratch: act (N, F) the SwiGLU output; dx, dxn, recomputeOut, xnF, dhidden (N, C); rstdF, losses,
    // weights (N); dqkv, dqkvPre (N, Q); datt (N, H·D); dact, dgate, dup (N, F); loraX (N, max in);
    // loraDT (N, r).
    let act, dx, dxn, recomputeOut, xnF, dhidden, rstdF, losses, weights: UnsafeMutablePointer<Float>
    let dqkv, dqkvPre, datt, dact, dgate, dup, loraX, loraDT: UnsafeMutablePointer<Float>
    let totalFloats: Int
    private let memory: UnsafeMutablePointer<Float>

    init(config c: LlamaConfig, tokens N: Int, keepsAll: Bool, loraRank r: Int) {
        self.tokens = N
        self.keepsAll = keepsAll
        let plan = ActivationArena.plan(config: c, tokens: N, keepsAll: keepsAll, loraRank: r)
        let sizes = plan.sizes, resid = plan.residuals, setIdx = plan.sets, scratch = plan.scratch
        var offsets: [Int] = [], total = 0
        for s in sizes { offsets.append(total); total += (s + 15) / 16 * 16 }
        totalFloats = total
        memory = .allocate(capacity: max(total, 1))
        memory.initialize(repeating: 0, count: max(total, 1))
        let base = memory
        func p(_ i: Int) -> UnsafeMutablePointer<Float> { base + offsets[i] }
        let residualViews = resid.map(p)
        residuals = residualViews
        blocks = setIdx.enumerated().map { l, s in
            BlockActivations(xIn: residualViews[keepsAll ? l : 0], xn1: p(s[0]), rstd1: p(s[1]), qkv: p(s[2]), att: p(s[3]),
                             lse: p(s[4]), xMid: p(s[5]), xn2: p(s[6]), rstd2: p(s[7]), gate: p(s[8]), up: p(s[9]),
                             loraT: r > 0 ? p(s[10]) : nil)
        }
        act = p(scratch[0]); dx = p(scratch[1]); dxn = p(scratch[2]); recomputeOut = p(scratch[3]); xnF = p(scratch[4])
        dhidden = p(scratch[5]); rstdF = p(scratch[6]); losses = p(scratch[7]); weights = p(scratch[8])
        dqkv = p(scratch[9]); dqkvPre = p(scratch[10]); datt = p(scratch[11]); dact = p(scratch[12]); dgate = p(scratch[13])
        dup = p(scratch[14]); loraX = p(scratch[15]); loraDT = p(scratch[16])
    }

    deinit { memory.deallocate() }

    /// Buffer sizes in floats, in allocation order, and which of them are residuals, block sets and scratch.
    static func plan(config c: LlamaConfig, tokens N: Int, keepsAll: Bool, loraRank r: Int)
        -> (sizes: [Int], residuals: [Int], sets: [[Int]], scratch: [Int]) {
        let C = c.hiddenSize, F = c.ffnSize, Q = c.qDim + 2 * c.kvDim, HD = c.qDim, H = c.heads
        var sizes: [Int] = []
        func take(_ n: Int) -> Int { sizes.append(n); return sizes.count - 1 }
        let resid = (0 ... c.layers).map { _ in take(N * C) }
        var sets: [[Int]] = []
        for _ in 0 ..< (keepsAll ? c.layers : 1) {
            sets.append([take(N * C), take(N), take(N * Q), take(N * HD), take(N * H), take(N * C), take(N * C),
                         take(N), take(N * F), take(N * F), take(7 * N * r)])
        }
        let maxIn = max(C, HD, F)
        let scratch = [take(N * F), take(N * C), take(N * C), take(N * C), take(N * C), take(N * C), take(N), take(N), take(N),
                       take(N * Q), take(N * Q), take(N * HD), take(N * F), take(N * F), take(N * F), take(N * maxIn), take(N * max(r, 1))]
        return (sizes, resid, sets, scratch)
    }

    /// Bytes an arena for these settings allocates (what `TrainingEngine.activationBytes` will report).
    static func plannedBytes(config: LlamaConfig, tokens: Int, keepsAll: Bool, loraRank: Int) -> Int {
        plan(config: config, tokens: tokens, keepsAll: keepsAll, loraRank: loraRank).sizes
            .reduce(0) { $0 + ($1 + 15) / 16 * 16 } * MemoryLayout<Float>.size
    }

    /// The activation set of block `l` reading its input from the residual stream.
    func block(_ l: Int) -> BlockActivations {
        var a = blocks[keepsAll ? l : 0]
        a.xIn = residuals[l]
        return a
    }

    var bytes: Int { totalFloats * MemoryLayout<Float>.size }
}
