/// All F32 parameters of a Llama model in one arena (llm.c style), with named views.
///
/// Matrices are row-major `[out, in]` as stored by GGUF and Hugging Face, so a projection is
/// `y = x · Wᵀ` (GEMM with transB). Per block the Q, K and V rows are fused into one `[(H + 2·Hkv)·D, C]`
/// matrix and gate/up into one `[2·F, C]` matrix, so each costs one GEMM. Q and K rows are kept in
/// the adjacent-pair RoPE order of GGUF files (Hugging Face checkpoints are permuted at load; see
/// Docs/FORMATS.md), so one RoPE pairing serves every source.
public final class LlamaWeights: @unchecked Sendable {
    public let config: LlamaConfig
    public let arena: UnsafeMutableBufferPointer<Float>

    /// Offsets (in floats) of each tensor inside the arena.
    public struct Layout: Sendable {
        public var embedding = 0, outputNorm = 0, output = 0
        public var attnNorm: [Int] = [], qkv: [Int] = [], wo: [Int] = []
        public var ffnNorm: [Int] = [], gateUp: [Int] = [], down: [Int] = []
        public var total = 0
    }
    public let layout: Layout
    /// Quantized copies of the matrices for single-token decode (GGUF files), when kept at load.
    public var quantized: QuantizedWeights?

    public init(config: LlamaConfig) throws {
        try config.validate()
        self.config = config
        var l = Layout()
        var at = 0
        func take(_ n: Int) -> Int { defer { at += (n + 15) / 16 * 16 }; return at }
        let C = config.hiddenSize
        l.embedding = take(config.vocabSize * C)
        for _ in 0 ..< config.layers {
            l.attnNorm.append(take(C))
            l.qkv.append(take((config.qDim + 2 * config.kvDim) * C))
            l.wo.append(take(C * config.qDim))
            l.ffnNorm.append(take(C))
            l.gateUp.append(take(2 * config.ffnSize * C))
            l.down.append(take(C * config.ffnSize))
        }
        l.outputNorm = take(C)
        l.output = config.tiedEmbeddings ? l.embedding : take(config.vocabSize * C)
        l.total = at
        layout = l
        arena = .allocate(capacity: max(at, 1))
        arena.initialize(repeating: 0)
    }

    deinit { arena.deallocate() }

    @inline(__always) public func pointer(_ offset: Int) -> UnsafeMutablePointer<Float> { arena.baseAddress! + offset }

    public var embedding: UnsafeMutablePointer<Float> { pointer(layout.embedding) }
    public var outputNorm: UnsafeMutablePointer<Float> { pointer(layout.outputNorm) }
    public var output: UnsafeMutablePointer<Float> { pointer(layout.output) }
    public func attnNorm(_ l: Int) -> UnsafeMutablePointer<Float> { pointer(layout.attnNorm[l]) }
    /// Rows [0, H·D) are Wq, then Wk, then Wv.
    public func qkv(_ l: Int) -> UnsafeMutablePointer<Float> { pointer(layout.qkv[l]) }
    public func wo(_ l: Int) -> UnsafeMutablePointer<Float> { pointer(layout.wo[l]) }
    public func ffnNorm(_ l: Int) -> UnsafeMutablePointer<Float> { pointer(layout.ffnNorm[l]) }
    /// Rows [0, F) are the gate projection, [F, 2F) the up projection.
    public func gateUp(_ l: Int) -> UnsafeMutablePointer<Float> { pointer(layout.gateUp[l]) }
    public func down(_ l: Int) -> UnsafeMutablePointer<Float> { pointer(layout.down[l]) }

    /// Fills every parameter with seeded values of a plausible scale (tests and tiny demo models):
    /// matrices uniform in ±1/√in, norm weights around 1.
    public func randomize(seed: UInt64) {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 24) * 2 - 1
        }
        func fill(_ p: UnsafeMutablePointer<Float>, _ n: Int, scale: Float, center: Float = 0) {
            for i in 0 ..< n { p[i] = center + scale * next() }
        }
        let c = config, C = c.hiddenSize
        fill(embedding, c.vocabSize * C, scale: 1)
        for l in 0 ..< c.layers {
            fill(attnNorm(l), C, scale: 0.2, center: 1)
            fill(qkv(l), (c.qDim + 2 * c.kvDim) * C, scale: 1 / Float(C).squareRoot())
            fill(wo(l), C * c.qDim, scale: 1 / Float(c.qDim).squareRoot())
            fill(ffnNorm(l), C, scale: 0.2, center: 1)
            fill(gateUp(l), 2 * c.ffnSize * C, scale: 1 / Float(C).squareRoot())
            fill(down(l), C * c.ffnSize, scale: 1 / Float(c.ffnSize).squareRoot())
        }
        fill(outputNorm, C, scale: 0.2, center: 1)
        if !c.tiedEmbeddings { fill(output, c.vocabSize * C, scale: 1 / Float(C).squareRoot()) }
    }
}
