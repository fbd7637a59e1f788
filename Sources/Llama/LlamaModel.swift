import Foundation
import Kernels

/// What a forward pass should return besides running the blocks.
public struct ForwardOptions: Sendable {
    public enum Logits: Sendable { case none, lastToken, allTokens }
    /// Logits of the last token of every sequence, of every token, or none.
    public var logits: Logits = .lastToken
    /// Residual-stream states to return: 0 is the embedding output, b (1...L) the output of block b.
    public var captureBlocks: [Int] = []
    /// Stop after this block (1...L); the final norm and logits then are not computed.
    /// Defaults to the last block when logits are wanted, else to the deepest captured block.
    public var stopAfterBlock: Int?
    public var workers: Int?
    /// Tokens every sequence continues, already run (`LlamaModel.sharedPrefix`): the sequences hold
    /// only what follows it, start at position `prefix.count`, and every output row is theirs.
    public var prefix: SharedPrefix?
    public init(logits: Logits = .lastToken, captureBlocks: [Int] = [], stopAfterBlock: Int? = nil, workers: Int? = nil,
                prefix: SharedPrefix? = nil) {
        self.logits = logits
        self.captureBlocks = captureBlocks
        self.stopAfterBlock = stopAfterBlock
        self.workers = workers
        self.prefix = prefix
    }
}

/// Results of a batched forward pass over packed sequences (sequence s owns rows
/// `sequenceStarts[s] ..< sequenceStarts[s + 1]`).
public struct ForwardOutput: Sendable {
    public var sequenceStarts: [Int]
    /// Captured residual states by block, each (tokens, C) row-major.
    public var hidden: [Int: [Float]] = [:]
    /// (sequences, V) for `.lastToken`, (tokens, V) for `.allTokens`, empty for `.none`.
    public var logits: [Float] = []
}

/// A Llama-architecture model ready for inference on the `Kernels` module.
///
/// Batched prompt processing packs all sequences back to back without padding (attention is
/// per sequence), so padded tokens cost nothing. Weights are F32 (dequantized at load).
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    /// RoPE cos/sin for positions 0..<contextLength.
    let ropeCos: [Float], ropeSin: [Float]

    public init(weights: LlamaWeights) {
        self.weights = weights
        config = weights.config
        let table = RoPE.table(positions: config.contextLength, rotaryDim: config.ropeDim, base: Double(config.ropeBase))
        ropeCos = table.cos
        ropeSin = table.sin
    }

    /// Runs the model over `sequences` (token ids, each non-empty, each at most the context length).
    public func forward(_ sequences: [[Int32]], options: ForwardOptions = ForwardOptions()) throws -> ForwardOutput {
        let c = config, P = options.prefix?.count ?? 0
        var starts = [0]
        for (s, seq) in sequences.enumerated() {
            guard !seq.isEmpty else { throw LlamaError.invalidInput("sequence \(s) is empty") }
            guard P + seq.count <= c.contextLength else {
                throw LlamaError.invalidInput("sequence \(s) has \(seq.count) tokens\(P > 0 ? " after a \(P)-token shared prefix" : ""), more than the context length \(c.contextLength)")
            }
            if let bad = seq.firstIndex(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
                throw LlamaError.invalidInput("sequence \(s) token \(bad) has id \(seq[bad]) outside the vocabulary 0..<\(c.vocabSize)")
            }
            starts.append(starts.last! + seq.count)
        }
        for b in options.captureBlocks where b < 0 || b > c.layers {
            throw LlamaError.invalidInput("cannot capture block \(b): the model has blocks 1...\(c.layers) (0 is the embedding)")
        }
        let stop = options.stopAfterBlock ?? (options.logits == .none ? (options.captureBlocks.max() ?? c.layers) : c.layers)
        guard stop >= 0 && stop <= c.layers else {
            throw LlamaError.invalidInput("stop block \(stop) outside 0...\(c.layers)")
        }
        if let prefix = options.prefix, prefix.model != ObjectIdentifier(self) {
            throw LlamaError.invalidInput("the shared prefix was run by another model")
        }
        if let prefix = options.prefix, stop > prefix.blocks {
            throw LlamaError.invalidInput("the shared prefix was run through \(prefix.blocks) blocks, fewer than the \(stop) this pass needs")
        }
        var output = ForwardOutput(sequenceStarts: starts)
        let N = starts.last!
        if N == 0 { return output }
        let ids = sequences.flatMap { $0 }
        var positions = [Int32](); positions.reserveCapacity(N)
        for seq in sequences { for t in 0 ..< seq.count { positions.append(Int32(P + t)) } }

        let state = ForwardState(config: c, tokens: N)
        let w = options.workers
        ids.withUnsafeBufferPointer { idp in
            Embedding.forward(out: state.x.baseAddress!, ids: idp.baseAddress!, table: weights.embedding,
                              tokens: N, vocab: c.vocabSize, channels: c.hiddenSize, workers: w)
        }
        if options.captureBlocks.contains(0) { output.hidden[0] = Array(state.x) }
        for l in 0 ..< stop {
            positions.withUnsafeBufferPointer { pos in
                block(l, state: state, positions: pos.baseAddress!, sequenceStarts: starts, workers: w, prefix: options.prefix)
            }
            if options.captureBlocks.contains(l + 1) { output.hidden[l + 1] = Array(state.x) }
        }
        if options.logits != .none && stop == c.layers {
            let rows = options.logits == .lastToken ? Array(starts.dropFirst().map { $0 - 1 }) : Array(0 ..< N)
            output.logits = logits(of: state.x, rows: rows, workers: w)
        }
        return output
    }

    /// Final norm and output head for the given rows of the residual stream: (rows, V).
    func logits(of x: UnsafeMutableBufferPointer<Float>, rows: [Int], workers: Int?) -> [Float] {
        let c = config, C = c.hiddenSize, R = rows.count
        var gathered = [Float](repeating: 0, count: R * C), rstd = [Float](repeating: 0, count: R)
        var out = [Float](repeating: 0, count: R * c.vocabSize)
        gathered.withUnsafeMutableBufferPointer { g in
            for (i, r) in rows.enumerated() { (g.baseAddress! + i * C).update(from: x.baseAddress! + r * C, count: C) }
            rstd.withUnsafeMutableBufferPointer { rs in
                RMSNorm.forward(out: g.baseAddress!, rstd: rs.baseAddress!, inp: g.baseAddress!, weight: weights.outputNorm,
                                rows: R, channels: C, eps: c.rmsEps, workers: workers)
            }
            out.withUnsafeMutableBufferPointer { o in
                if R <= Self.quantizedDecodeRows, let q = weights.quantized, q.complete, let head = q.output {
                    for r in 0 ..< R { gemv(head, g.baseAddress! + r * C, o.baseAddress! + r * c.vocabSize, workers) }
                } else {
                    GEMM.sgemm(transB: true, m: R, n: c.vocabSize, k: C, a: g.baseAddress!, lda: C,
                               b: weights.output, ldb: C, c: o.baseAddress!, ldc: c.vocabSize, workers: workers)
                }
            }
        }
        return out
    }

    /// One transformer block, in place on `state.x`:
    ///   x += Wo · attention(rope(Wq·rmsnorm(x)), rope(Wk·rmsnorm(x)), Wv·rmsnorm(x))
    ///   x += Wdown · (silu(Wgate·rmsnorm(x)) ⊙ Wup·rmsnorm(x))
    /// With `prefix`, the sequences continue it (`attendAfterPrefix`); `afterRoPE` sees the fused qkv rows
    /// once RoPE is applied (how `sharedPrefix` keeps them).
    func block(_ l: Int, state s: ForwardState, positions: UnsafePointer<Int32>, sequenceStarts: [Int], workers w: Int?,
               cache: CacheUse? = nil, prefix: SharedPrefix? = nil, afterRoPE: ((UnsafePointer<Float>) -> Void)? = nil) {
        let c = config, C = c.hiddenSize, N = s.tokens, F = c.ffnSize
        let x = s.x.baseAddress!, xn = s.xn.baseAddress!, qkv = s.qkv.baseAddress!, att = s.att.baseAddress!
        let ldqkv = c.qDim + 2 * c.kvDim
        let quant = s.tokens <= Self.quantizedDecodeRows ? weights.quantized.flatMap { $0.complete ? $0.blocks[l] : nil } : nil
        RMSNorm.forward(out: xn, rstd: s.rstd.baseAddress!, inp: x, weight: weights.attnNorm(l), rows: N, channels: C,
                        eps: c.rmsEps, workers: w)
        if let quant {
            for r in 0 ..< N {
                if let fused = weights.quantized?.qkv[l] {
                    gemv(fused, xn + r * C, qkv + r * ldqkv, w)
                } else {
                    gemv(quant[0]!, xn + r * C, qkv + r * ldqkv, w)
                    gemv(quant[1]!, xn + r * C, qkv + r * ldqkv + c.qDim, w)
                    gemv(quant[2]!, xn + r * C, qkv + r * ldqkv + c.qDim + c.kvDim, w)
                }
            }
        } else {
            GEMM.sgemm(transB: true, m: N, n: ldqkv, k: C, a: xn, lda: C, b: weights.qkv(l), ldb: C, c: qkv, ldc: ldqkv, workers: w)
        }
        ropeInPlace(qkv, ld: ldqkv, rows: N, positions: positions, workers: w)
        afterRoPE?(qkv)
        if let cache {
            attendWithCache(l, cache: cache, qkv: qkv, att: att, positions: positions, sequenceStarts: sequenceStarts,
                            lse: s.lse.baseAddress!, workers: w)
        } else if let prefix {
            attendAfterPrefix(l, prefix: prefix, qkv: qkv, att: att, sequenceStarts: sequenceStarts, workers: w)
        } else {
            Attention.forward(out: att, ldo: c.qDim, lse: s.lse.baseAddress!, q: qkv, ldq: ldqkv,
                              k: qkv + c.qDim, ldk: ldqkv, v: qkv + c.qDim + c.kvDim, ldv: ldqkv,
                              sequenceStarts: sequenceStarts, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim,
                              causal: true, workers: w)
        }
        let gate = s.gate.baseAddress!, up = s.up.baseAddress!
        // x += att · Woᵀ (beta = 1 accumulates the residual inside the GEMM).
        if let quant {
            // xn is free until the next norm: it holds the projection before the residual add.
            for r in 0 ..< N { gemv(quant[3]!, att + r * c.qDim, xn + r * C, w) }
            Residual.add(out: x, x, xn, count: N * C, workers: w)
        } else {
            GEMM.sgemm(transB: true, m: N, n: C, k: c.qDim, a: att, lda: c.qDim, b: weights.wo(l), ldb: c.qDim,
                       beta: 1, c: x, ldc: C, workers: w)
        }
        RMSNorm.forward(out: xn, rstd: s.rstd.baseAddress!, inp: x, weight: weights.ffnNorm(l), rows: N, channels: C,
                        eps: c.rmsEps, workers: w)
        if let quant {
            if N == 1, up == gate + F, let fused = weights.quantized?.gateUp[l] {
                gemv(fused, xn, gate, w)  // gate rows then up rows, into the adjacent gate and up buffers
            } else {
                for r in 0 ..< N {
                    gemv(quant[4]!, xn + r * C, gate + r * F, w)
                    gemv(quant[5]!, xn + r * C, up + r * F, w)
                }
            }
        } else {
            GEMM.sgemm(transB: true, m: N, n: F, k: C, a: xn, lda: C, b: weights.gateUp(l), ldb: C, c: gate, ldc: F, workers: w)
            GEMM.sgemm(transB: true, m: N, n: F, k: C, a: xn, lda: C, b: weights.gateUp(l) + F * C, ldb: C, c: up, ldc: F, workers: w)
        }
        SwiGLU.forward(out: gate, gate: gate, up: up, count: N * F, workers: w)
        if let quant {
            for r in 0 ..< N { gemv(quant[6]!, gate + r * F, xn + r * C, w) }
            Residual.add(out: x, x, xn, count: N * C, workers: w)
        } else {
            GEMM.sgemm(transB: true, m: N, n: C, k: F, a: gate, lda: F, b: weights.down(l), ldb: F, beta: 1, c: x, ldc: C, workers: w)
        }
    }

    /// Rows up to which a forward pass reads the quantized matrices (when the model has them):
    /// single-token decode is memory-bound, so fewer bytes beat F32 GEMM there.
    static let quantizedDecodeRows = 1

    @inline(__always)
    func gemv(_ m: QuantizedWeights.Matrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ w: Int?) {
        QuantizedGEMV.gemv(m.type, w: m.data, x: x, y: y, rows: m.rows, columns: m.columns, workers: w, layout: m.layout)
    }

    /// RoPE on the query and key parts of fused qkv rows (heads + kvHeads head blocks per row).
    func ropeInPlace(_ qkv: UnsafeMutablePointer<Float>, ld: Int, rows: Int, positions: UnsafePointer<Int32>, workers: Int?) {
        let c = config
        ropeCos.withUnsafeBufferPointer { cs in
            ropeSin.withUnsafeBufferPointer { sn in
                RoPE.forward(out: qkv, inp: qkv, ld: ld, positions: positions, rows: rows, heads: c.heads + c.kvHeads,
                             headDim: c.headDim, rotaryDim: c.ropeDim, layout: .adjacentPairs, cos: cs.baseAddress!,
                             sin: sn.baseAddress!, tablePositions: c.contextLength, workers: workers)
            }
        }
    }
}

/// Activation buffers of one forward pass over `tokens` packed rows, in one allocation.
final class ForwardState {
    let tokens: Int
    let x, xn, rstd, qkv, att, lse, gate, up: UnsafeMutableBufferPointer<Float>
    private let arena: UnsafeMutableBufferPointer<Float>

    init(config c: LlamaConfig, tokens N: Int) {
        tokens = N
        let sizes = [N * c.hiddenSize, N * c.hiddenSize, N, N * (c.qDim + 2 * c.kvDim), N * c.qDim, N * c.heads,
                     N * c.ffnSize, N * c.ffnSize]
        var offsets: [Int] = [], total = 0
        for s in sizes { offsets.append(total); total += (s + 15) / 16 * 16 }
        arena = .allocate(capacity: max(total, 1))
        arena.initialize(repeating: 0)
        let base = arena.baseAddress!
        func view(_ i: Int) -> UnsafeMutableBufferPointer<Float> { .init(start: base + offsets[i], count: sizes[i]) }
        x = view(0); xn = view(1); rstd = view(2); qkv = view(3); att = view(4); lse = view(5); gate = view(6); up = view(7)
    }

    deinit { arena.deallocate() }
}
