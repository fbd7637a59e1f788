import Foundation

/// Tensor naming between Hugging Face Llama checkpoints and llama.cpp GGUF files, and the Q/K row permutation
/// llama.cpp's converter applies (see Docs/FORMATS.md, "Q/K permutation").
public enum LlamaTensorNames {
    private static let perLayer: [(hf: String, gguf: String)] = [
        ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.o_proj.weight", "attn_output.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"), ("input_layernorm.weight", "attn_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ]
    private static let global: [(hf: String, gguf: String)] = [
        ("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ]

    /// GGUF name for a Hugging Face tensor name, or nil if it is not part of a Llama model.
    public static func ggufName(hf name: String) -> String? {
        if let g = global.first(where: { $0.hf == name }) { return g.gguf }
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let suffix = String(rest[rest.index(after: dot)...])
        return perLayer.first(where: { $0.hf == suffix }).map { "blk.\(layer).\($0.gguf)" }
    }

    /// Hugging Face name for a GGUF tensor name, or nil.
    public static func hfName(gguf name: String) -> String? {
        if let g = global.first(where: { $0.gguf == name }) { return g.hf }
        guard name.hasPrefix("blk.") else { return nil }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let suffix = String(rest[rest.index(after: dot)...])
        return perLayer.first(where: { $0.gguf == suffix }).map { "model.layers.\(layer).\($0.hf)" }
    }

    /// Row map of llama.cpp's Q/K permutation. Within each head of `headDim` rows, Hugging Face row
    /// `half * headDim/2 + j` (half in {0, 1}, j < headDim/2) is stored at GGUF row `2j + half`.
    /// Returns the HF row that GGUF row `r` came from.
    public static func hfRow(forGGUFRow r: Int, headDim: Int) -> Int {
        let head = r / headDim, i = r % headDim
        return head * headDim + (i % 2) * (headDim / 2) + i / 2
    }

    /// Reorders the rows of a `[heads * headDim, cols]` row-major matrix from Hugging Face order to GGUF order
    /// (what convert_hf_to_gguf.py does to q_proj with n_head and to k_proj with n_head_kv).
    public static func permuteHFToGGUF<T>(_ w: [T], heads: Int, headDim: Int, cols: Int) -> [T] {
        precondition(w.count == heads * headDim * cols && headDim % 2 == 0, "shape mismatch")
        var out = w
        for r in 0 ..< heads * headDim {
            let src = hfRow(forGGUFRow: r, headDim: headDim)
            for c in 0 ..< cols { out[r * cols + c] = w[src * cols + c] }
        }
        return out
    }

    /// The inverse of `permuteHFToGGUF`.
    public static func permuteGGUFToHF<T>(_ w: [T], heads: Int, headDim: Int, cols: Int) -> [T] {
        precondition(w.count == heads * headDim * cols && headDim % 2 == 0, "shape mismatch")
        var out = w
        for r in 0 ..< heads * headDim {
            let dst = hfRow(forGGUFRow: r, headDim: headDim)
            for c in 0 ..< cols { out[dst * cols + c] = w[r * cols + c] }
        }
        return out
    }
}
