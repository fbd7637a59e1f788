import Foundation
import XCTest
import ModelFormats
import TestSupport

/// A tiny Llama checkpoint written as HF safetensors (HF names, HF row order, config.json) and as GGUF
/// (GGUF names, Q/K rows permuted as convert_hf_to_gguf.py does, llama.* metadata). Reading both back and
/// undoing the permutation must give bit-identical weights and matching hyperparameters.
final class CrossFormatTests: XCTestCase {
    func testTinyLlamaSameWeightsFromBothFormats() throws {
        let (hidden, ffn, heads, kvHeads, layers, vocab) = (16, 24, 4, 2, 2, 11)
        let hd = hidden / heads
        var rng = SeededRNG(seed: 77)
        var hf: [(String, [Int], [Float])] = [("model.embed_tokens.weight", [vocab, hidden], []), ("model.norm.weight", [hidden], [])]
        for l in 0 ..< layers {
            let p = "model.layers.\(l)."
            hf += [(p + "input_layernorm.weight", [hidden], []), (p + "post_attention_layernorm.weight", [hidden], []),
                   (p + "self_attn.q_proj.weight", [heads * hd, hidden], []), (p + "self_attn.k_proj.weight", [kvHeads * hd, hidden], []),
                   (p + "self_attn.v_proj.weight", [kvHeads * hd, hidden], []), (p + "self_attn.o_proj.weight", [hidden, heads * hd], []),
                   (p + "mlp.gate_proj.weight", [ffn, hidden], []), (p + "mlp.up_proj.weight", [ffn, hidden], []),
                   (p + "mlp.down_proj.weight", [hidden, ffn], [])]
        }
        hf = hf.map { ($0.0, $0.1, normalFloats($0.1.reduce(1, *), &rng, scale: 0.1)) }

        var st = SafeTensorsWriter()
        for (n, s, x) in hf { try st.add(n, shape: s, floats: x) }
        let stFile = try SafeTensorsFile(data: st.serialize())
        let config = try HFLlamaConfig(json: JSONSerialization.data(withJSONObject: [
            "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kvHeads, "vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "tie_word_embeddings": true]))

        var g = GGUFWriter()
        g.set("general.architecture", .string("llama"))
        g.set("llama.embedding_length", .uint32(UInt32(hidden)))
        g.set("llama.feed_forward_length", .uint32(UInt32(ffn)))
        g.set("llama.block_count", .uint32(UInt32(layers)))
        g.set("llama.attention.head_count", .uint32(UInt32(heads)))
        g.set("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        g.set("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        g.set("llama.rope.freq_base", .float32(10000))
        for (n, s, x) in hf {
            var w = x
            if n.hasSuffix("q_proj.weight") { w = LlamaTensorNames.permuteHFToGGUF(x, heads: heads, headDim: hd, cols: hidden) }
            if n.hasSuffix("k_proj.weight") { w = LlamaTensorNames.permuteHFToGGUF(x, heads: kvHeads, headDim: hd, cols: hidden) }
            try g.addTensor(LlamaTensorNames.ggufName(hf: n)!, dims: s.reversed(), floats: w)
        }
        let gf = try GGUFFile(data: g.serialize())

        XCTAssertEqual(gf.metadata.int("llama.embedding_length"), config.hiddenSize)
        XCTAssertEqual(gf.metadata.int("llama.attention.head_count_kv"), config.numKeyValueHeads)
        XCTAssertEqual(gf.metadata.int("llama.block_count"), config.numHiddenLayers)
        XCTAssertNil(gf.tensorInfo("output.weight"), "tied: no output tensor")
        XCTAssertEqual(gf.tensors.count, stFile.tensors.count)
        for t in gf.tensors {
            let hfName = try XCTUnwrap(LlamaTensorNames.hfName(gguf: t.name))
            let info = try XCTUnwrap(stFile.tensorInfo(hfName))
            XCTAssertEqual(t.shape, info.shape, t.name)
            var w = try gf.withTensor(t.name) { Array($0.bytes.bindMemory(to: Float.self)) }
            if t.name.hasSuffix("attn_q.weight") { w = LlamaTensorNames.permuteGGUFToHF(w, heads: heads, headDim: hd, cols: hidden) }
            if t.name.hasSuffix("attn_k.weight") { w = LlamaTensorNames.permuteGGUFToHF(w, heads: kvHeads, headDim: hd, cols: hidden) }
            let ref = try stFile.floats(hfName)
            XCTAssertEqual(w.map(\.bitPattern), ref.map(\.bitPattern), t.name)
            if t.name.hasSuffix("attn_q.weight") || t.name.hasSuffix("attn_k.weight") {
                let raw = try gf.withTensor(t.name) { Array($0.bytes.bindMemory(to: Float.self)) }
                XCTAssertNotEqual(raw, ref, "\(t.name) is stored permuted")
            }
        }
    }
}
