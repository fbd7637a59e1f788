import Foundation
import Kernels

/// A projection of a Llama block that can carry a LoRA adapter.
public enum LoRATarget: String, CaseIterable, Codable, Sendable {
    case q, k, v, o, gate, up, down

    /// Position in the fixed order q, k, v, o, gate, up, down (the flat layout follows it).
    public var index: Int { LoRATarget.allCases.firstIndex(of: self)! }

    /// Hugging Face / PEFT module name.
    public var peftName: String {
        switch self {
        case .q: return "q_proj"
        case .k: return "k_proj"
        case .v: return "v_proj"
        case .o: return "o_proj"
        case .gate: return "gate_proj"
        case .up: return "up_proj"
        case .down: return "down_proj"
        }
    }

    /// (input width, output width) of the projection.
    public func shape(_ c: LlamaConfig) -> (inDim: Int, outDim: Int) {
        switch self {
        case .q: return (c.hiddenSize, c.qDim)
        case .k, .v: return (c.hiddenSize, c.kvDim)
        case .o: return (c.qDim, c.hiddenSize)
        case .gate, .up: return (c.hiddenSize, c.ffnSize)
        case .down: return (c.ffnSize, c.hiddenSize)
        }
    }
}

extension LoRATarget {
    /// Projections named in `text`: comma-separated short names (q, k, v, o, gate, up, down) or PEFT
    /// module names (q_proj, ...), or `all`. Nil names the first unknown entry.
    public static func parseList(_ text: String) -> (targets: [LoRATarget], unknown: String?) {
        if text.trimmingCharacters(in: .whitespaces) == "all" { return (allCases, nil) }
        var out: [LoRATarget] = []
        for n in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let t = LoRATarget(rawValue: n) ?? allCases.first(where: { $0.peftName == n }) else { return ([], n) }
            out.append(t)
        }
        return (out, out.isEmpty ? "" : nil)
    }
}

/// LoRA hyperparameters (PEFT's `LoraConfig` fields of the same meaning).
public struct LoRAConfig: Codable, Equatable, Sendable {
    public var rank: Int
    public var alpha: Float
    /// Probability of dropping an input element of the LoRA branch (PEFT `lora_dropout`).
    public var dropout: Float
    /// Adapted projections, kept in the canonical order q, k, v, o, gate, up, down.
    public var targets: [LoRATarget]
    /// Also train the RMSNorm weights (copied from the base into the adapter; the base stays frozen).
    public var trainNorms: Bool

    public init(rank: Int = 8, alpha: Float = 16, dropout: Float = 0, targets: [LoRATarget] = [.q, .v],
                trainNorms: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = LoRATarget.allCases.filter(targets.contains)
        self.trainNorms = trainNorms
    }

    /// alpha / r, the factor of the LoRA branch.
    public var scale: Float { alpha / Float(rank) }

    public func validate() throws {
        guard rank >= 1 && rank <= 4096 else { throw LlamaError.invalidConfig("LoRA rank \(rank) must be in 1...4096") }
        guard alpha.isFinite && alpha > 0 else { throw LlamaError.invalidConfig("LoRA alpha \(alpha) must be positive") }
        guard dropout >= 0 && dropout < 1 else { throw LlamaError.invalidConfig("LoRA dropout \(dropout) must be in [0, 1)") }
        guard !targets.isEmpty || trainNorms else { throw LlamaError.invalidConfig("LoRA has no target projection and no norms to train") }
    }
}

/// LoRA adapters on a frozen, shared base model: per block and target, A (r, in) and B (out, r)
/// such that the projection becomes y = x·Wᵀ + (alpha/r)·(dropout(x)·Aᵀ)·Bᵀ.
///
/// All trainable floats live in one `ParameterBuffer` in a fixed order: for each block, for each
/// target in q, k, v, o, gate, up, down order, A then B (row-major, no padding); then, when norms
/// are trained, each block's attention-norm and FFN-norm weights and finally the output norm.
/// B rows of q and k follow the engine's (GGUF adjacent-pair) row order; see `engineToHuggingFaceRow`.
public final class LoRAAdapter: @unchecked Sendable {
    public let config: LoRAConfig
    public let modelConfig: LlamaConfig
    public let buffer: ParameterBuffer

    /// One adapted projection: offsets of A and B inside `buffer`.
    public struct Slot: Sendable, Equatable {
        public let layer: Int
        public let target: LoRATarget
        public let a: Int, b: Int
        public let inDim: Int, outDim: Int
    }
    public let slots: [Slot]
    /// `slotIndex[layer][target.index]` is the position in `slots`, or nil.
    let slotIndex: [[Int?]]
    /// Offsets of trained norm weights (nil unless `config.trainNorms`).
    public let attnNormOffsets: [Int]?, ffnNormOffsets: [Int]?, outputNormOffset: Int?

    /// A fresh adapter, PEFT-initialised: A Kaiming-uniform with a = √5 (U(±1/√in), as
    /// `nn.init.kaiming_uniform_(A, a=math.sqrt(5))`), B zero, so the model starts equal to the
    /// base. Trained norms start as copies of the base norms. Seeded: same seed, same adapter.
    public convenience init(base: LlamaWeights, config: LoRAConfig, seed: UInt64) throws {
        try self.init(modelConfig: base.config, config: config)
        var rng = SplitMix(seed: seed)
        let p = buffer.valuePointer, c = base.config
        for s in slots {
            let bound = 1 / Float(s.inDim).squareRoot()
            for i in 0 ..< config.rank * s.inDim { p[s.a + i] = bound * rng.nextSymmetric() }
        }
        if config.trainNorms {
            for l in 0 ..< c.layers {
                (p + attnNormOffsets![l]).update(from: base.attnNorm(l), count: c.hiddenSize)
                (p + ffnNormOffsets![l]).update(from: base.ffnNorm(l), count: c.hiddenSize)
            }
            (p + outputNormOffset!).update(from: base.outputNorm, count: c.hiddenSize)
        }
    }

    /// An adapter of this shape with every value zero (loaders fill it in).
    public init(modelConfig c: LlamaConfig, config: LoRAConfig) throws {
        try config.validate()
        self.config = config
        modelConfig = c
        var slots: [Slot] = [], index = [[Int?]](repeating: [Int?](repeating: nil, count: 7), count: c.layers)
        var at = 0
        for l in 0 ..< c.layers {
            for t in config.targets {
                let (i, o) = t.shape(c)
                index[l][t.index] = slots.count
                slots.append(Slot(layer: l, target: t, a: at, b: at + config.rank * i, inDim: i, outDim: o))
                at += config.rank * (i + o)
            }
        }
        if config.trainNorms {
            var attn: [Int] = [], ffn: [Int] = []
            for _ in 0 ..< c.layers {
                attn.append(at); at += c.hiddenSize
                ffn.append(at); at += c.hiddenSize
            }
            attnNormOffsets = attn; ffnNormOffsets = ffn; outputNormOffset = at
            at += c.hiddenSize
        } else {
            attnNormOffsets = nil; ffnNormOffsets = nil; outputNormOffset = nil
        }
        self.slots = slots
        slotIndex = index
        buffer = ParameterBuffer(count: at)
    }

    public var parameterCount: Int { buffer.count }
    public var scale: Float { config.scale }

    /// The slot of `target` in `layer`, if adapted.
    public func slot(_ layer: Int, _ target: LoRATarget) -> Slot? {
        slotIndex[layer][target.index].map { slots[$0] }
    }

    public func a(_ s: Slot) -> UnsafeMutablePointer<Float> { buffer.valuePointer + s.a }
    public func b(_ s: Slot) -> UnsafeMutablePointer<Float> { buffer.valuePointer + s.b }
    public func gradA(_ s: Slot) -> UnsafeMutablePointer<Float> { buffer.gradientPointer + s.a }
    public func gradB(_ s: Slot) -> UnsafeMutablePointer<Float> { buffer.gradientPointer + s.b }

    /// A copy of the base weights with every adapter merged in: W += (alpha/r)·B·A, and the
    /// trained norms replacing the base ones. The result runs on the plain inference engine.
    public func merged(into base: LlamaWeights, workers: Int? = nil) throws -> LlamaWeights {
        precondition(base.config == modelConfig, "LoRAAdapter.merged: base model config differs from the adapter's")
        let w = try LlamaWeights(config: modelConfig)
        w.arena.baseAddress!.update(from: base.arena.baseAddress!, count: base.layout.total)
        let c = modelConfig, C = c.hiddenSize
        for s in slots {
            let (dst, ld) = weightRows(w, s)
            GEMM.sgemm(m: s.outDim, n: s.inDim, k: config.rank, alpha: scale, a: b(s), lda: config.rank,
                       b: a(s), ldb: s.inDim, beta: 1, c: dst, ldc: ld, workers: workers)
        }
        if config.trainNorms {
            let p = buffer.valuePointer
            for l in 0 ..< c.layers {
                w.attnNorm(l).update(from: p + attnNormOffsets![l], count: C)
                w.ffnNorm(l).update(from: p + ffnNormOffsets![l], count: C)
            }
            w.outputNorm.update(from: p + outputNormOffset!, count: C)
        }
        return w
    }

    /// The rows of the base matrix a slot adapts (pointer to its first row, row length).
    func weightRows(_ w: LlamaWeights, _ s: Slot) -> (UnsafeMutablePointer<Float>, Int) {
        let c = modelConfig, C = c.hiddenSize, l = s.layer
        switch s.target {
        case .q: return (w.qkv(l), C)
        case .k: return (w.qkv(l) + c.qDim * C, C)
        case .v: return (w.qkv(l) + (c.qDim + c.kvDim) * C, C)
        case .o: return (w.wo(l), c.qDim)
        case .gate: return (w.gateUp(l), C)
        case .up: return (w.gateUp(l) + c.ffnSize * C, C)
        case .down: return (w.down(l), c.ffnSize)
        }
    }

    // MARK: - Row order of q and k (engine / GGUF adjacent pairs <-> Hugging Face rotate-half)

    /// The Hugging Face row of engine row `row` of a q or k projection with heads of `headDim`
    /// rows: engine (GGUF) row (h, 2i + j) is HF row (h, j·D/2 + i), j ∈ {0, 1}.
    public static func engineToHuggingFaceRow(_ row: Int, headDim D: Int) -> Int {
        let h = row / D, r = row % D, i = r / 2, j = r % 2
        return h * D + j * (D / 2) + i
    }

    /// The engine row of Hugging Face row `row` (inverse of `engineToHuggingFaceRow`).
    public static func huggingFaceToEngineRow(_ row: Int, headDim D: Int) -> Int {
        let h = row / D, r = row % D, j = r / (D / 2), i = r % (D / 2)
        return h * D + 2 * i + j
    }

    /// Reorders the rows (each `rowLength` floats) of a q/k matrix from engine to HF order
    /// (`toHuggingFace`) or back. Used to un-permute LoRA B rows for a PEFT export.
    public static func permuteRows(_ m: [Float], rowLength: Int, headDim: Int, toHuggingFace: Bool) -> [Float] {
        precondition(rowLength > 0 && m.count % rowLength == 0 && (m.count / rowLength) % headDim == 0 && headDim % 2 == 0,
                     "LoRAAdapter.permuteRows: \(m.count) floats are not whole heads of \(headDim) rows of \(rowLength)")
        var out = [Float](repeating: 0, count: m.count)
        for r in 0 ..< m.count / rowLength {
            let dst = toHuggingFace ? engineToHuggingFaceRow(r, headDim: headDim) : huggingFaceToEngineRow(r, headDim: headDim)
            for i in 0 ..< rowLength { out[dst * rowLength + i] = m[r * rowLength + i] }
        }
        return out
    }
}

/// Additive hidden-state probes (SAP): after each chosen block b, x[t, :] += p_b for every token.
/// Block 0 is the embedding output, b in 1...L the output of block b (as `captureBlocks`).
/// One C-vector per block in one `ParameterBuffer`, in the order of `blocks`.
public final class ProbeSet: @unchecked Sendable {
    public let blocks: [Int]
    public let channels: Int
    public let buffer: ParameterBuffer

    public init(blocks: [Int], config: LlamaConfig) throws {
        let sorted = Array(Set(blocks)).sorted()
        guard !sorted.isEmpty, sorted.first! >= 0, sorted.last! <= config.layers else {
            throw LlamaError.invalidConfig("probe blocks \(blocks) must be non-empty and within 0...\(config.layers)")
        }
        self.blocks = sorted
        channels = config.hiddenSize
        buffer = ParameterBuffer(count: sorted.count * config.hiddenSize)
    }

    /// Index into `blocks` of the probe after `block`, if any.
    public func index(ofBlock block: Int) -> Int? { blocks.firstIndex(of: block) }
    public func vector(_ i: Int) -> UnsafeMutablePointer<Float> { buffer.valuePointer + i * channels }
    public func gradient(_ i: Int) -> UnsafeMutablePointer<Float> { buffer.gradientPointer + i * channels }
}

/// SplitMix64 (seeded initialisation and dropout masks).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix.mix(state)
    }
    /// Uniform in [-1, 1) with 24 random bits.
    mutating func nextSymmetric() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}

/// Counter-based dropout masks: element `index` of stream `stream` under `seed` is kept with
/// probability 1 − p. Nothing is stored, so the same seed reproduces the same masks in any later
/// pass (forward, backward, recomputation, a second forward of SAP), for any worker count.
package enum DropoutMask {
    /// The 32-bit threshold of probability p: drop when the hash's top 32 bits are below it.
    @inline(__always) package static func threshold(_ p: Float) -> UInt64 { UInt64(Double(p) * 4_294_967_296.0) }

    @inline(__always) package static func keep(seed: UInt64, stream: UInt64, index: Int, threshold: UInt64) -> Bool {
        let h = SplitMix.mix(seed ^ SplitMix.mix(stream &* 0x2545_F491_4F6C_DD1D &+ UInt64(truncatingIfNeeded: index)))
        return (h >> 32) >= threshold
    }

    /// Stream id of the LoRA branch input of (layer, target).
    @inline(__always) package static func stream(layer: Int, target: LoRATarget) -> UInt64 {
        UInt64(layer * 8 + target.index) << 40
    }
}
