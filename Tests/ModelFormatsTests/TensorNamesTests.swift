import Foundation
import XCTest
import ModelFormats
import TestSupport

final class TensorNamesTests: XCTestCase {
    func testNameMaps() {
        let pairs = [("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"),
                     ("lm_head.weight", "output.weight"), ("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"),
                     ("model.layers.29.mlp.down_proj.weight", "blk.29.ffn_down.weight"),
                     ("model.layers.7.post_attention_layernorm.weight", "blk.7.ffn_norm.weight"),
                     ("model.layers.3.input_layernorm.weight", "blk.3.attn_norm.weight")]
        for (hf, g) in pairs {
            XCTAssertEqual(LlamaTensorNames.ggufName(hf: hf), g)
            XCTAssertEqual(LlamaTensorNames.hfName(gguf: g), hf)
        }
        XCTAssertNil(LlamaTensorNames.ggufName(hf: "model.layers.x.mlp.up_proj.weight"))
        XCTAssertNil(LlamaTensorNames.hfName(gguf: "blk.0.attn_qkv.weight"))
    }

    func testPermutationIsTheConverterRowMap() {
        // head_dim 8: GGUF rows 0..7 come from HF rows 0,4,1,5,2,6,3,7 (pairs (j, j+4) become adjacent).
        XCTAssertEqual((0 ..< 8).map { LlamaTensorNames.hfRow(forGGUFRow: $0, headDim: 8) }, [0, 4, 1, 5, 2, 6, 3, 7])
        XCTAssertEqual((8 ..< 16).map { LlamaTensorNames.hfRow(forGGUFRow: $0, headDim: 8) }, [8, 12, 9, 13, 10, 14, 11, 15])
        let w = (0 ..< 2 * 8 * 3).map { Double($0) }
        let g = LlamaTensorNames.permuteHFToGGUF(w, heads: 2, headDim: 8, cols: 3)
        XCTAssertEqual(Array(g[3 ..< 6]), [12, 13, 14], "GGUF row 1 = HF row 4")
        XCTAssertEqual(LlamaTensorNames.permuteGGUFToHF(g, heads: 2, headDim: 8, cols: 3), w)
    }

    /// HF RoPE (rotate_half: pairs (j, j + d/2)) on HF weights equals llama.cpp's adjacent-pair RoPE on the
    /// permuted weights, with rows in GGUF order: the attention scores are therefore identical.
    func testPermutationMakesAdjacentRoPEEqualHalfRoPE() {
        let heads = 3, d = 8, cols = 5, pos = 7.0, theta = 10000.0
        var rng = SeededRNG(seed: 9)
        let w = (0 ..< heads * d * cols).map { _ in rng.normal() }
        let x = (0 ..< cols).map { _ in rng.normal() }
        func matvec(_ m: [Double]) -> [Double] {
            (0 ..< heads * d).map { r in (0 ..< cols).reduce(0) { $0 + m[r * cols + $1] * x[$1] } }
        }
        let qHF = matvec(w), qGG = matvec(LlamaTensorNames.permuteHFToGGUF(w, heads: heads, headDim: d, cols: cols))
        var ropeHF = qHF, ropeGG = qGG
        for h in 0 ..< heads {
            for j in 0 ..< d / 2 {
                let a = pos * pow(theta, -2.0 * Double(j) / Double(d))
                let (c, s) = (cos(a), sin(a))
                let (i0, i1) = (h * d + j, h * d + j + d / 2)               // HF pairs
                ropeHF[i0] = qHF[i0] * c - qHF[i1] * s; ropeHF[i1] = qHF[i0] * s + qHF[i1] * c
                let (k0, k1) = (h * d + 2 * j, h * d + 2 * j + 1)           // llama.cpp pairs
                ropeGG[k0] = qGG[k0] * c - qGG[k1] * s; ropeGG[k1] = qGG[k0] * s + qGG[k1] * c
            }
        }
        for r in 0 ..< heads * d {
            let src = LlamaTensorNames.hfRow(forGGUFRow: r, headDim: d)
            XCTAssertEqual(ropeGG[r], ropeHF[src], accuracy: 1e-12)
        }
    }
}
