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
        let (weights, types) = try weights(gguf: file)
        if keepQuantized { weights.quantized = try QuantizedWeights(file: file, config: weights.config) }
        let tokenizer = try Tokenizer(gguf: file.metadata)
        let chat = try ChatTemplate(gguf: file.metadata, override: template)
        return LoadedModel(model: LlamaModel(weights: weights), tokenizer: tokenizer, template: chat,
                           source: path, tensorTypes: types)
    }

    /// F32 weights of a GGUF file (every supported element type dequantized), and the count of
    /// tensors per element type.
    public static func weights(gguf file: GGUFFile) throws -> (LlamaWeights, [String: Int]) {
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
        return (weights, types)
    }

    /// The hyperparameters of a Hugging Face `config.json`.
    public static func config(huggingFace h: HFLlamaConfig) throws -> LlamaConfig {
        let config = LlamaConfig(vocabSize: h.vocabSize, hiddenSize: h.hiddenSize, layers: h.numHiddenLayers,
                                 heads: h.numAttentionHeads, kvHeads: h.numKeyValueHeads, headDim: h.headDim,
                                 ffnSize: h.intermediateSize, rmsEps: Float(h.rmsNormEps), ropeBase: Float(h.ropeTheta),
                                 contextLength: h.maxPositionEmbeddings, tiedEmbeddings: h.tieWordEmbeddings)
        try config.validate()
        return config
    }

    /// F32 weights from Hugging Face tensors (any of `files`, by HF name). Q and K rows are permuted
    /// into the engine's adjacent-pair RoPE order (Docs/FORMATS.md), so a checkpoint gives the same
    /// weights, and logits, as its GGUF conversion.
    public static func weights(safetensors files: [SafeTensorsFile], config: LlamaConfig) throws -> LlamaWeights {
        var cfg = config
        let hasHead = files.contains { $0.tensorInfo("lm_head.weight") != nil }
        cfg.tiedEmbeddings = cfg.tiedEmbeddings || !hasHead
        let weights = try LlamaWeights(config: cfg)
        let C = cfg.hiddenSize, F = cfg.ffnSize, D = cfg.headDim
        func load(_ name: String, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>, permuteHeads: Int? = nil) throws {
            guard let file = files.first(where: { $0.tensorInfo(name) != nil }) else { throw LlamaError.missingTensor(name) }
            let info = file.tensorInfo(name)!
            let expected = rows == 1 ? [cols] : [rows, cols]
            guard info.shape == expected else { throw LlamaError.badTensorShape(name: name, expected: expected, found: info.shape) }
            var values = try file.floats(name)
            if let heads = permuteHeads { values = LlamaTensorNames.permuteHFToGGUF(values, heads: heads, headDim: D, cols: cols) }
            values.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: rows * cols) }
        }
        try load("model.embed_tokens.weight", rows: cfg.vocabSize, cols: C, into: weights.embedding)
        for l in 0 ..< cfg.layers {
            let p = "model.layers.\(l)."
            try load(p + "input_layernorm.weight", rows: 1, cols: C, into: weights.attnNorm(l))
            try load(p + "self_attn.q_proj.weight", rows: cfg.qDim, cols: C, into: weights.qkv(l), permuteHeads: cfg.heads)
            try load(p + "self_attn.k_proj.weight", rows: cfg.kvDim, cols: C, into: weights.qkv(l) + cfg.qDim * C, permuteHeads: cfg.kvHeads)
            try load(p + "self_attn.v_proj.weight", rows: cfg.kvDim, cols: C, into: weights.qkv(l) + (cfg.qDim + cfg.kvDim) * C)
            try load(p + "self_attn.o_proj.weight", rows: C, cols: cfg.qDim, into: weights.wo(l))
            try load(p + "post_attention_layernorm.weight", rows: 1, cols: C, into: weights.ffnNorm(l))
            try load(p + "mlp.gate_proj.weight", rows: F, cols: C, into: weights.gateUp(l))
            try load(p + "mlp.up_proj.weight", rows: F, cols: C, into: weights.gateUp(l) + F * C)
            try load(p + "mlp.down_proj.weight", rows: C, cols: F, into: weights.down(l))
        }
        try load("model.norm.weight", rows: 1, cols: C, into: weights.outputNorm)
        if !cfg.tiedEmbeddings { try load("lm_head.weight", rows: cfg.vocabSize, cols: C, into: weights.output) }
        return weights
    }

    /// A Hugging Face model directory: `config.json`, one or more `*.safetensors`, `tokenizer.json`
    /// and (for the chat template) `tokenizer_config.json`.
    static func loadSafetensors(directory: String, template: ChatTemplateKind?) throws -> LoadedModel {
        let dir = URL(fileURLWithPath: directory)
        func read(_ name: String) throws -> Data {
            guard let d = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) else {
                throw LlamaError.invalidInput("\(directory) has no readable \(name)")
            }
            return d
        }
        let config = try config(huggingFace: HFLlamaConfig(json: read("config.json")))
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !names.isEmpty else { throw LlamaError.invalidInput("\(directory) has no .safetensors file") }
        let files = try names.map { try SafeTensorsFile(path: dir.appendingPathComponent($0).path) }
        let weights = try weights(safetensors: files, config: config)
        let tokenizerConfig = FileManager.default.contents(atPath: dir.appendingPathComponent("tokenizer_config.json").path)
        let tokenizer = try Tokenizer(huggingFaceJSON: read("tokenizer.json"), config: tokenizerConfig)
        let chat = try tokenizerConfig.map { try ChatTemplate(tokenizerConfig: $0, override: template) }
            ?? ChatTemplate(kind: template ?? .chatml)
        return LoadedModel(model: LlamaModel(weights: weights), tokenizer: tokenizer, template: chat,
                           source: directory, tensorTypes: ["F32 (from safetensors)": files.reduce(0) { $0 + $1.tensors.count }])
    }
}

/// Quantized matrices of a GGUF file, for single-token decode (bandwidth-bound: a Q4_1 matrix is
/// 5/32 the bytes of its F32 copy). Present only for supported types. Memory-mapped as stored,
/// except Q4_1 matrices on builds where the quad layout is faster: those are repacked once at load
/// into owned memory of the same size (`QuantizedGEMV.Layout.quads`).
public final class QuantizedWeights: @unchecked Sendable {
    public struct Matrix: @unchecked Sendable {
        public var type: Kernels.GGMLType
        public var data: UnsafeRawPointer
        public var rows: Int, columns: Int
        public var layout: QuantizedGEMV.Layout = .blocks
    }
    /// Per block: q, k, v, o, gate, up, down (nil when that tensor's type has no quantized GEMV).
    public let blocks: [[Matrix?]]
    /// Per block, when q, k, v (and gate, up) were repacked into one buffer: the stacked matrix, so
    /// one GEMV (one parallel region) computes the fused rows in the engine's qkv (gate|up) order.
    public let qkv: [Matrix?], gateUp: [Matrix?]
    public let output: Matrix?
    private let owner: GGUFFile
    private let packed: [UnsafeMutableRawPointer]

    init(file: GGUFFile, config: LlamaConfig) throws {
        owner = file
        var packed: [UnsafeMutableRawPointer] = []
        func source(_ name: String) throws -> Matrix? {
            let t = try file.tensor(name)
            guard let type = Kernels.GGMLType(rawValue: t.info.type.id), QuantizedGEMV.supports(type),
                  t.info.dims.count == 2 else { return nil }
            let rows = t.info.dims[1], columns = t.info.dims[0]
            guard columns % 32 == 0, let rowBytes = type.rowBytes(count: columns),
                  rowBytes.multipliedReportingOverflow(by: rows) == (t.bytes.count, false) else { return nil }
            return Matrix(type: type, data: t.bytes.baseAddress!, rows: rows, columns: columns)
        }
        /// Q4_1 matrices of equal width repacked one after another into one owned buffer (quad
        /// layout): the parts, then the stack (nil when there is one part). Others stay mapped.
        func repack(_ parts: [Matrix?]) -> (parts: [Matrix?], stack: Matrix?) {
            guard QuantizedGEMV.prefersQuadLayout else { return (parts, nil) }
            guard let first = parts.first ?? nil,
                  parts.allSatisfy({ $0?.type == .q4_1 && $0?.columns == first.columns }) else {
                return (parts.map { m in m.flatMap { $0.type == .q4_1 ? repack([$0]).parts[0] : $0 } }, nil)
            }
            let rowBytes = Kernels.GGMLType.q4_1.rowBytes(count: first.columns)!, rows = parts.reduce(0) { $0 + $1!.rows }
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * rowBytes), alignment: 64)
            packed.append(buffer)
            var offset = 0, out: [Matrix?] = []
            for m in parts.map({ $0! }) {
                QuantizedGEMV.packQuads(m.data, into: buffer + offset * rowBytes, rows: m.rows, columns: m.columns)
                out.append(Matrix(type: .q4_1, data: buffer + offset * rowBytes, rows: m.rows, columns: m.columns, layout: .quads))
                offset += m.rows
            }
            let stack = parts.count > 1 ? Matrix(type: .q4_1, data: buffer, rows: rows, columns: first.columns, layout: .quads) : nil
            return (out, stack)
        }
        var blocks: [[Matrix?]] = [], qkv: [Matrix?] = [], gateUp: [Matrix?] = []
        for l in 0 ..< config.layers {
            let m = try ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].map { try source("blk.\(l).\($0).weight") }
            let a = repack(Array(m[0 ..< 3])), o = repack([m[3]]), g = repack(Array(m[4 ..< 6])), d = repack([m[6]])
            blocks.append(a.parts + o.parts + g.parts + d.parts)
            qkv.append(a.stack); gateUp.append(g.stack)
        }
        self.blocks = blocks; self.qkv = qkv; self.gateUp = gateUp
        output = repack([try source(file.tensorInfo("output.weight") == nil ? "token_embd.weight" : "output.weight")]).parts[0]
        self.packed = packed
    }

    deinit { for p in packed { p.deallocate() } }

    /// True when every matrix of the model has a quantized copy.
    public var complete: Bool { output != nil && blocks.allSatisfy { $0.allSatisfy { $0 != nil } } }
}
