import Foundation
import Kernels
import Llama
import ModelFormats
import TestSupport
import XCTest

/// The same tiny Llama written as Hugging Face safetensors (rotate-half Q/K row order) and as GGUF
/// (rows permuted as llama.cpp's converter does) gives bit-identical logits through the engine.
final class CrossFormatLogitsTests: XCTestCase {
    func testSafetensorsAndGGUFGiveIdenticalLogits() throws {
        let (hidden, ffn, heads, kvHeads, layers, vocab) = (32, 48, 4, 2, 2, 37)
        let hd = hidden / heads
        var rng = SeededRNG(seed: 5)
        var hf: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, hidden]), ("model.norm.weight", [hidden])]
        for l in 0 ..< layers {
            let p = "model.layers.\(l)."
            hf += [(p + "input_layernorm.weight", [hidden]), (p + "post_attention_layernorm.weight", [hidden]),
                   (p + "self_attn.q_proj.weight", [heads * hd, hidden]), (p + "self_attn.k_proj.weight", [kvHeads * hd, hidden]),
                   (p + "self_attn.v_proj.weight", [kvHeads * hd, hidden]), (p + "self_attn.o_proj.weight", [hidden, heads * hd]),
                   (p + "mlp.gate_proj.weight", [ffn, hidden]), (p + "mlp.up_proj.weight", [ffn, hidden]),
                   (p + "mlp.down_proj.weight", [hidden, ffn])]
        }
        let tensors = hf.map { ($0.0, $0.1, $0.1.count == 1 ? uniformFloats($0.1[0], &rng, in: 0.8 ... 1.2)
                                                              : normalFloats($0.1.reduce(1, *), &rng, scale: 0.2)) }
        var st = SafeTensorsWriter()
        for (n, s, x) in tensors { try st.add(n, shape: s, floats: x) }
        let hfConfig = try HFLlamaConfig(json: JSONSerialization.data(withJSONObject: [
            "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kvHeads, "vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "max_position_embeddings": 64, "tie_word_embeddings": true]))
        var g = GGUFWriter()
        g.set("general.architecture", .string("llama"))
        g.set("llama.embedding_length", .uint32(UInt32(hidden)))
        g.set("llama.feed_forward_length", .uint32(UInt32(ffn)))
        g.set("llama.block_count", .uint32(UInt32(layers)))
        g.set("llama.attention.head_count", .uint32(UInt32(heads)))
        g.set("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        g.set("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        g.set("llama.rope.freq_base", .float32(10000))
        g.set("llama.context_length", .uint32(64))
        g.set("llama.vocab_size", .uint32(UInt32(vocab)))
        for (n, s, x) in tensors {
            var w = x
            if n.hasSuffix("q_proj.weight") { w = LlamaTensorNames.permuteHFToGGUF(x, heads: heads, headDim: hd, cols: hidden) }
            if n.hasSuffix("k_proj.weight") { w = LlamaTensorNames.permuteHFToGGUF(x, heads: kvHeads, headDim: hd, cols: hidden) }
            try g.addTensor(LlamaTensorNames.ggufName(hf: n)!, dims: s.reversed(), floats: w)
        }
        let fromHF = LlamaModel(weights: try LlamaLoader.weights(safetensors: [try SafeTensorsFile(data: st.serialize())],
                                                                 config: try LlamaLoader.config(huggingFace: hfConfig)))
        let fromGGUF = LlamaModel(weights: try LlamaLoader.weights(gguf: try GGUFFile(data: g.serialize())).0)
        XCTAssertEqual(fromHF.config, fromGGUF.config)
        let seqs: [[Int32]] = [[1, 5, 9, 30, 2, 7, 7, 3], [36, 0, 4]]
        let a = try fromHF.forward(seqs, options: ForwardOptions(logits: .allTokens))
        let b = try fromGGUF.forward(seqs, options: ForwardOptions(logits: .allTokens))
        XCTAssertEqual(a.logits.map(\.bitPattern), b.logits.map(\.bitPattern))
        // Without the permutation the logits differ: the test sees the row order.
        let unpermuted = try LlamaLoader.weights(gguf: try GGUFFile(data: g.serialize())).0
        let c = fromHF.config, C = c.hiddenSize
        let q = Array(UnsafeBufferPointer(start: unpermuted.qkv(0), count: c.qDim * C))
        let hfOrder = LlamaTensorNames.permuteGGUFToHF(q, heads: heads, headDim: hd, cols: C)
        hfOrder.withUnsafeBufferPointer { unpermuted.qkv(0).update(from: $0.baseAddress!, count: c.qDim * C) }
        let d = try LlamaModel(weights: unpermuted).forward(seqs, options: ForwardOptions(logits: .allTokens))
        XCTAssertNotEqual(d.logits, a.logits)
    }

    func testBadSafetensorsShapeIsNamed() throws {
        var st = SafeTensorsWriter()
        try st.add("model.embed_tokens.weight", shape: [5, 3], floats: [Float](repeating: 0, count: 15))
        let config = LlamaConfig(vocabSize: 5, hiddenSize: 4, layers: 1, heads: 2, kvHeads: 1, ffnSize: 8)
        XCTAssertThrowsError(try LlamaLoader.weights(safetensors: [try SafeTensorsFile(data: st.serialize())], config: config)) {
            XCTAssertTrue("\($0)".contains("model.embed_tokens.weight"), "\($0)")
        }
    }
}
