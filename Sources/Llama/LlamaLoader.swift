import Foundation
import Kernels
import ModelFormats
import Tokenization

extension GGUFMetadata: TokenizerMetadataSource {}

/// A model ready to run, with the tokenizer and chat template that came in its file.
public struct LoadedModel: @unchecked Sendable {
    public var model: LlamaModel
    public var tokenizer: Tokenizer
    public var template: ChatTemplate
    /// Where it came from and in what element types (for reports).
    public var source: String
    public var tensorTypes: [String: Int]
}

/// Loads Llama-architecture models from GGUF files or Hugging Face safetensors directories.
public enum LlamaLoader {
    /// Architectures whose GGUF tensors follow the Llama layout without biases.
    static let architectures: Set<String> = ["llama"]

    /// Loads `path`: a `.gguf` file, or a directory with `config.json`, `*.safetensors` and `tokenizer.json`.
    /// Weights are dequantized to F32; with `keepQuantized`, Q8_0/Q4_1 matrices of a GGUF file also
    /// stay mapped for the memory-bound single-token decode.
    public static func load(_ path: String, keepQuantized: Bool = true, template: ChatTemplateKind? = nil) throws -> LoadedModel {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw LlamaError.invalidInput("model '\(path)' does not exist")
        }
        if isDir.boolValue { return try loadSafetensors(directory: path, template: template) }
        return try loadGGUF(path, keepQuantized: keepQuantized, template: template)
    }

    /// The model hyperparameters stored in GGUF metadata (`<arch>.*` keys).
    public static func config(gguf m: GGUFMetadata) throws -> LlamaConfig {
        let arch = try m.requireString("general.architecture")
        guard architectures.contains(arch) else {
            throw LlamaError.unsupported("architecture '\(arch)' (supported: \(architectures.sorted().joined(separator: ", ")))")
        }
        let heads = try m.requireInt("\(arch).attention.head_count")
        let hidden = try m.requireInt("\(arch).embedding_length")
        let headDim = m.int("\(arch).attention.key_length") ?? (heads > 0 ? hidden / heads : 0)
        let vocab = m.int("\(arch).vocab_size") ?? m.strings("tokenizer.ggml.tokens")?.count ?? 0
        let config = LlamaConfig(
            vocabSize: vocab, hiddenSize: hidden, layers: try m.requireInt("\(arch).block_count"),
            heads: heads, kvHeads: m.int("\(arch).attention.head_count_kv") ?? heads, headDim: headDim,
            ffnSize: try m.requireInt("\(arch).feed_forward_length"),
            rmsEps: Float(m.float("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5),
            ropeBase: Float(m.float("\(arch).rope.freq_base") ?? 10_000),
            ropeDim: m.int("\(arch).rope.dimension_count") ?? headDim,
            contextLength: m.int("\(arch).context_length") ?? 2048, tiedEmbeddings: true)
        try config.validate()
        return config
    }

    static func loadGGUF(_ path: String, keepQuantized: Bool, template: ChatTemplateKind?) throws -> LoadedModel {
        let file = try GGUFFile(path: path)
        var config = try config(gguf: file.metadata)
        config.tiedEmbeddings = file.tensorInfo("output.weight") == nil
        let weights = try LlamaWeights(config: config)
        var types: [String: Int] = [:]
        let C = config.hiddenSize, F = config.ffnSize
        func load(_ name: String, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) throws {
            let t = try file.tensor(name)
            guard t.info.dims == [cols, rows] || (rows == 1 && t.info.dims == [cols]) else {
                throw LlamaError.badTensorShape(name: name, expected: rows == 1 ? [cols] : [rows, cols], found: t.info.shape)
            }
            guard let type = Kernels.GGMLType(rawValue: t.info.type.id) else {
                throw LlamaError.unsupported("tensor '\(name)' has element type \(t.info.type.name)")
            }
            types[t.info.type.name, default: 0] += 1
            Dequantize.rows(type, src: t.bytes.baseAddress!, out: dst, rows: rows, columns: cols)
        }
        try load("token_embd.weight", rows: config.vocabSize, cols: C, into: weights.embedding)
        for l in 0 ..< config.layers {
            let b = "blk.\(l)."
            try load(b + "attn_norm.weight", rows: 1, cols: C, into: weights.attnNorm(l))
            try load(b + "attn_q.weight", rows: config.qDim, cols: C, into: weights.qkv(l))
            try load(b + "attn_k.weight", rows: config.kvDim, cols: C, into: weights.qkv(l) + config.qDim * C)
            try load(b + "attn_v.weight", rows: config.kvDim, cols: C, into: weights.qkv(l) + (config.qDim + config.kvDim) * C)
            try load(b + "attn_output.weight", rows: C, cols: config.qDim, into: weights.wo(l))
            try load(b + "ffn_norm.weight", rows: 1, cols: C, into: weights.ffnNorm(l))
            try load(b + "ffn_gate.weight", rows: F, cols: C, into: weights.gateUp(l))
            try load(b + "ffn_up.weight", rows: F, cols: C, into: weights.gateUp(l) + F * C)
            try load(b + "ffn_down.weight", rows: C, cols: F, into: weights.down(l))
        }
        try load("output_norm.weight", rows: 1, cols: C, into: weights.outputNorm)
        if !config.tiedEmbeddings { try load("output.weight", rows: config.vocabSize, cols: C, into: weights.output) }
        if keepQuantized { weights.quantized = try QuantizedWeights(file: file, config: config) }
        let tokenizer = try Tokenizer(gguf: file.metadata)
        let chat = try ChatTemplate(gguf: file.metadata, override: template)
        return LoadedModel(model: LlamaModel(weights: weights), tokenizer: tokenizer, template: chat,
                           source: path, tensorTypes: types)
    }

    static func loadSafetensors(directory: String, template: ChatTemplateKind?) throws -> LoadedModel {
        throw LlamaError.unsupported("safetensors directories are not wired into the engine yet ('\(directory)')")
    }
}

/// Memory-mapped quantized matrices of a GGUF file, for single-token decode (bandwidth-bound: a
/// Q4_1 matrix is 5/32 the bytes of its F32 copy). Present only for supported types.
public final class QuantizedWeights: @unchecked Sendable {
    public struct Matrix: @unchecked Sendable {
        public var type: Kernels.GGMLType
        public var data: UnsafeRawPointer
        public var rows: Int, columns: Int
    }
    /// Per block: q, k, v, o, gate, up, down (nil when that tensor's type has no quantized GEMV).
    public let blocks: [[Matrix?]]
    public let output: Matrix?
    private let owner: GGUFFile

    init(file: GGUFFile, config: LlamaConfig) throws {
        owner = file
        func matrix(_ name: String) throws -> Matrix? {
            let t = try file.tensor(name)
            guard let type = Kernels.GGMLType(rawValue: t.info.type.id), QuantizedGEMV.supports(type),
                  t.info.dims.count == 2 else { return nil }
            return Matrix(type: type, data: t.bytes.baseAddress!, rows: t.info.dims[1], columns: t.info.dims[0])
        }
        blocks = try (0 ..< config.layers).map { l in
            try ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].map { try matrix("blk.\(l).\($0).weight") }
        }
        output = try matrix(file.tensorInfo("output.weight") == nil ? "token_embd.weight" : "output.weight")
    }

    /// True when every matrix of the model has a quantized copy.
    public var complete: Bool { output != nil && blocks.allSatisfy { $0.allSatisfy { $0 != nil } } }
}
