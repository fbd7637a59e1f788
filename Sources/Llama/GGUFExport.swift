import Foundation
import Kernels
import ModelFormats
import Tokenization

/// Writes a model (for instance a base model with a LoRA adapter merged in) as a GGUF file that
/// llama.cpp and `LlamaLoader` load: `llama` architecture keys, the tokenizer and chat template as
/// `tokenizer.*` keys, and the tensors under llama.cpp's names (fused QKV and gate/up split back).
public enum GGUFExport {
    /// Element types a matrix may be written in; norms always stay F32 (as llama.cpp writes them).
    public enum MatrixType: String, Sendable, CaseIterable {
        case f32, f16, q8_0
        var ggml: ModelFormats.GGMLType {
            switch self {
            case .f32: return .f32
            case .f16: return .f16
            case .q8_0: return .q8_0
            }
        }
    }

    /// `tokenizer.*` metadata of `tokenizer` and `template`.
    public static func tokenizerMetadata(_ tokenizer: Tokenizer, template: ChatTemplate) -> [(String, GGUFValue)] {
        let v = tokenizer.vocabulary
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string(v.model.rawValue)),
            ("tokenizer.ggml.tokens", GGUFValue.strings(v.tokens)),
            ("tokenizer.ggml.token_type", GGUFValue.int32s(v.types.map { Int32($0.rawValue) })),
        ]
        if !v.merges.isEmpty { out.append(("tokenizer.ggml.merges", GGUFValue.strings(v.merges.map { "\($0.0) \($0.1)" }))) }
        if !v.scores.isEmpty { out.append(("tokenizer.ggml.scores", GGUFValue.float32s(v.scores))) }
        if let p = v.preTokenizer { out.append(("tokenizer.ggml.pre", .string(p.rawValue))) }
        let ids: [(String, Int?)] = [("bos", v.bosID), ("eos", v.eosID), ("unknown", v.unknownID), ("padding", v.paddingID), ("eot", v.eotID)]
        for (name, id) in ids { if let id { out.append(("tokenizer.ggml.\(name)_token_id", .uint32(UInt32(id)))) } }
        out.append(("tokenizer.ggml.add_bos_token", .bool(v.addBOS)))
        out.append(("tokenizer.ggml.add_eos_token", .bool(v.addEOS)))
        if v.model == .sentencePiece { out.append(("tokenizer.ggml.add_space_prefix", .bool(v.addSpacePrefix))) }
        out.append(("tokenizer.chat_template", .string(template.source ?? template.jinja)))
        return out
    }

    /// Serialises `weights` with `tokenizer` and `template` to `path` (atomically: temporary file, then rename).
    public static func write(_ weights: LlamaWeights, tokenizer: Tokenizer, template: ChatTemplate, name: String,
                             matrixType: MatrixType = .f32, to path: String) throws {
        let c = weights.config, C = c.hiddenSize, F = c.ffnSize
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("general.name", .string(name))
        w.set("general.file_type", .uint32(matrixType == .f32 ? 0 : matrixType == .f16 ? 1 : 7))
        let keys: [(String, GGUFValue)] = [
            ("llama.vocab_size", .uint32(UInt32(c.vocabSize))), ("llama.context_length", .uint32(UInt32(c.contextLength))),
            ("llama.embedding_length", .uint32(UInt32(C))), ("llama.block_count", .uint32(UInt32(c.layers))),
            ("llama.feed_forward_length", .uint32(UInt32(F))), ("llama.attention.head_count", .uint32(UInt32(c.heads))),
            ("llama.attention.head_count_kv", .uint32(UInt32(c.kvHeads))),
            ("llama.attention.key_length", .uint32(UInt32(c.headDim))), ("llama.attention.value_length", .uint32(UInt32(c.headDim))),
            ("llama.rope.dimension_count", .uint32(UInt32(c.ropeDim))), ("llama.rope.freq_base", .float32(c.ropeBase)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(c.rmsEps)),
        ]
        for (k, v) in keys { w.set(k, v) }
        for (k, v) in tokenizerMetadata(tokenizer, template: template) { w.set(k, v) }

        func floats(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: n)) }
        func matrix(_ name: String, _ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int) throws {
            let type = cols % 32 == 0 ? matrixType.ggml : .f32
            try w.addTensor(name, dims: [cols, rows], floats: floats(p, rows * cols), as: type)
        }
        func vector(_ name: String, _ p: UnsafeMutablePointer<Float>) throws { try w.addTensor(name, dims: [C], floats: floats(p, C)) }

        try matrix("token_embd.weight", weights.embedding, rows: c.vocabSize, cols: C)
        for l in 0 ..< c.layers {
            let b = "blk.\(l).", qkv = weights.qkv(l)
            try vector(b + "attn_norm.weight", weights.attnNorm(l))
            try matrix(b + "attn_q.weight", qkv, rows: c.qDim, cols: C)
            try matrix(b + "attn_k.weight", qkv + c.qDim * C, rows: c.kvDim, cols: C)
            try matrix(b + "attn_v.weight", qkv + (c.qDim + c.kvDim) * C, rows: c.kvDim, cols: C)
            try matrix(b + "attn_output.weight", weights.wo(l), rows: C, cols: c.qDim)
            try vector(b + "ffn_norm.weight", weights.ffnNorm(l))
            try matrix(b + "ffn_gate.weight", weights.gateUp(l), rows: F, cols: C)
            try matrix(b + "ffn_up.weight", weights.gateUp(l) + F * C, rows: F, cols: C)
            try matrix(b + "ffn_down.weight", weights.down(l), rows: C, cols: F)
        }
        try vector("output_norm.weight", weights.outputNorm)
        if !c.tiedEmbeddings { try matrix("output.weight", weights.output, rows: c.vocabSize, cols: C) }
        try w.write(to: path)
    }
}

extension ChatTemplate {
    /// A minimal Jinja text of this kind (written when a template was chosen by name and has no source);
    /// loaders recognise the kind from its markers.
    public var jinja: String {
        switch kind {
        case .chatml:
            return "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        case .llama3:
            return "{% for message in messages %}{{'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>'}}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
        case .llama2:
            return "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ ' ' + message['content'] + '</s>' }}{% endif %}{% endfor %}"
        case .zephyr:
            return "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '</s>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
        case .alpaca:
            return "{% for message in messages %}{% if message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}{% else %}{{ '### Response:\\n' + message['content'] + '</s>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
        }
    }
}
