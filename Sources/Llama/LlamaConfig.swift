/// Hyperparameters of a Llama-architecture model (Llama 2/3, SmolLM, TinyLlama, Qwen2 without biases).
///
/// Names follow Docs/ARCHITECTURE.md: C model width, L blocks, H query heads, Hkv key/value heads,
/// D head dim, F feed-forward width, V vocabulary.
public struct LlamaConfig: Codable, Equatable, Sendable {
    public var vocabSize: Int          // V
    public var hiddenSize: Int         // C
    public var layers: Int             // L
    public var heads: Int              // H
    public var kvHeads: Int            // Hkv
    public var headDim: Int            // D
    public var ffnSize: Int            // F
    public var rmsEps: Float
    public var ropeBase: Float
    /// Rotary dimensions per head (<= D); the rest of each head passes through unrotated.
    public var ropeDim: Int
    public var contextLength: Int
    public var tiedEmbeddings: Bool

    public init(vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int? = nil,
                ffnSize: Int, rmsEps: Float = 1e-5, ropeBase: Float = 10_000, ropeDim: Int? = nil,
                contextLength: Int = 2048, tiedEmbeddings: Bool = true) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim ?? (heads > 0 ? hiddenSize / heads : 0)
        self.ffnSize = ffnSize
        self.rmsEps = rmsEps
        self.ropeBase = ropeBase
        self.ropeDim = ropeDim ?? self.headDim
        self.contextLength = contextLength
        self.tiedEmbeddings = tiedEmbeddings
    }

    /// Width of the query projection (H·D) and of each key/value projection (Hkv·D).
    public var qDim: Int { heads * headDim }
    public var kvDim: Int { kvHeads * headDim }

    /// Throws unless every size is positive and consistent (GQA groups, even rotary width, ...).
    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws {
            if !ok { throw LlamaError.invalidConfig(what) }
        }
        try check(vocabSize > 0 && vocabSize <= 1 << 24, "vocabulary size \(vocabSize) out of range")
        try check(hiddenSize > 0 && hiddenSize <= 1 << 16, "hidden size \(hiddenSize) out of range")
        try check(layers > 0 && layers <= 1024, "block count \(layers) out of range")
        try check(heads > 0 && kvHeads > 0 && heads % kvHeads == 0,
                  "heads \(heads) must be a positive multiple of key/value heads \(kvHeads)")
        try check(headDim > 0 && headDim % 2 == 0 && headDim <= 1024, "head dim \(headDim) must be even and at most 1024")
        try check(ropeDim > 0 && ropeDim % 2 == 0 && ropeDim <= headDim, "rotary dim \(ropeDim) must be even and <= head dim")
        try check(ffnSize > 0 && ffnSize <= 1 << 18, "feed-forward size \(ffnSize) out of range")
        try check(contextLength > 0, "context length \(contextLength) must be positive")
        try check(rmsEps > 0 && rmsEps.isFinite, "RMSNorm epsilon \(rmsEps) must be positive")
        try check(ropeBase > 1 && ropeBase.isFinite, "RoPE base \(ropeBase) must exceed 1")
    }

    /// Parameters in the blocks and embeddings (the output head counted once when tied).
    public var parameterCount: Int {
        let perLayer = 2 * hiddenSize + hiddenSize * (qDim + 2 * kvDim) + qDim * hiddenSize + 3 * hiddenSize * ffnSize
        return layers * perLayer + hiddenSize + vocabSize * hiddenSize * (tiedEmbeddings ? 1 : 2)
    }
}

public enum LlamaError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case missingTensor(String)
    case badTensorShape(name: String, expected: [Int], found: [Int])
    case unsupported(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidConfig(let what): return "invalid model configuration: \(what)"
        case .missingTensor(let name): return "model file has no tensor '\(name)'"
        case .badTensorShape(let name, let e, let f): return "tensor '\(name)' has shape \(f), expected \(e)"
        case .unsupported(let what): return "unsupported: \(what)"
        case .invalidInput(let what): return "invalid input: \(what)"
        }
    }
}
