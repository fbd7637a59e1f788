import Foundation
import XCTest
import ModelFormats
import TestSupport

final class SafeTensorsTests: XCTestCase {
    func sample() throws -> (SafeTensorsWriter, [Float]) {
        var rng = SeededRNG(seed: 3)
        let x = uniformFloats(24, &rng, in: -4 ... 4)
        var w = SafeTensorsWriter()
        w.metadata = ["format": "pt", "note": "tiny"]
        try w.add("model.embed_tokens.weight", shape: [6, 4], floats: x)
        try w.add("model.norm.weight", shape: [4], floats: [1, 0.5, -2, 65504], as: .f16)
        try w.add("lm_head.weight", shape: [2, 3], floats: [1, -1, 0.1, 3.0e38, -0, 1e-20], as: .bf16)
        try w.add("empty", shape: [0, 3], floats: [])
        return (w, x)
    }

    func testRoundTrip() throws {
        let (w, x) = try sample()
        let data = try w.serialize()
        let headerLen = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual(headerLen % 8, 0, "header padded to 8 bytes")
        let f = try SafeTensorsFile(data: data)
        XCTAssertEqual(f.metadata, ["format": "pt", "note": "tiny"])
        XCTAssertEqual(f.tensors.count, 4)
        XCTAssertEqual(f.tensorInfo("model.embed_tokens.weight")?.shape, [6, 4])
        XCTAssertEqual(try f.floats("model.embed_tokens.weight"), x)
        XCTAssertEqual(try f.floats("model.norm.weight"), [1, 0.5, -2, 65504], "F16-exact values survive")
        let bf = try f.floats("lm_head.weight")
        // BF16 keeps 8 significand bits: relative error <= 2^-9 (round to nearest).
        for (a, e) in zip(bf, [Float(1), -1, 0.1, 3.0e38, 0, 1e-20]) {
            XCTAssertLessThanOrEqual(abs(a - e), abs(e) * 0x1p-9, "\(a) vs \(e)")
        }
        XCTAssertEqual(floatToBF16(1.0), 0x3F80)
        XCTAssertEqual(floatToBF16(Float(bitPattern: 0x3F80_8000)), 0x3F80, "tie rounds to even")
        XCTAssertEqual(floatToBF16(Float(bitPattern: 0x3F81_8000)), 0x3F82, "tie rounds to even")
        XCTAssertEqual(try f.tensor("empty").bytes.count, 0)
        XCTAssertThrowsError(try f.tensor("missing"))
    }

    func testFileRoundTrip() throws {
        let (w, x) = try sample()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        XCTAssertEqual(try SafeTensorsFile(path: path).floats("model.embed_tokens.weight"), x)
    }

    /// Header JSON + data, with an explicit (possibly lying) header length.
    func file(_ header: String, data: Int = 16, length: UInt64? = nil) -> Data {
        var d = Data()
        let h = Array(header.utf8)
        withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: h)
        d.append(contentsOf: [UInt8](repeating: 0, count: data))
        return d
    }

    func expect(_ d: Data, _ kind: FormatError.Kind, _ context: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(data: d), file: file, line: line) { e in
            guard let e = e as? FormatError else { return XCTFail("\(e)", file: file, line: line) }
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            if let context { XCTAssertEqual(e.context, context, "\(e)", file: file, line: line) }
        }
    }

    func testHostileHeaders() throws {
        let ok = #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
        XCTAssertNoThrow(try SafeTensorsFile(data: file(ok)))
        expect(Data([1, 2, 3]), .truncated)
        expect(file(ok, length: UInt64.max), .truncated, "header")
        expect(file(ok, length: 1 << 40), .truncated, "header")
        expect(file("not json"), .invalidValue, "header")
        expect(file("[1,2]"), .invalidValue, "header")
        expect(file(#"{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#), .unknownType, "a")
        expect(file(#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,64]}}"#), .outOfBounds, "a")
        expect(file(#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[8,4]}}"#), .invalidValue, "a")
        expect(file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#), .invalidValue, "a")
        expect(file(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#), .invalidValue, "a")
        expect(file(#"{"a":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}}"#), .invalidValue, "a")
        expect(file(#"{"a":{"dtype":"F32","shape":[4611686018427387904, 4],"data_offsets":[0,4]}}"#), .invalidValue, "a")
        expect(file(#"{"a":{"dtype":"F32","shape":[2]}}"#), .invalidValue, "a")
        expect(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#),
               .outOfBounds, "b")
        expect(file(#"{"__metadata__":{"k":1}}"#), .invalidValue, "__metadata__.k")
        expect(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#),
               .duplicate, "a")
        XCTAssertNoThrow(try SafeTensorsFile(data: file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16],"x":{"a":"\"a\""}}}"#)),
                         "same key at a deeper level or inside a string is not a duplicate")
        // Every truncation of a valid file fails cleanly.
        let (w, _) = try sample()
        let good = try w.serialize()
        for n in 0 ..< good.count - 1 {
            XCTAssertThrowsError(try SafeTensorsFile(data: good.prefix(n)), "prefix \(n)")
        }
    }

    func testLlamaConfig() throws {
        // SmolLM2-135M-Instruct's config.json values.
        let json = #"""
        {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
         "hidden_size": 576, "initializer_range": 0.041666666666666664, "intermediate_size": 1536,
         "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 9, "num_hidden_layers": 30,
         "num_key_value_heads": 3, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
         "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 49152}
        """#
        let c = try HFLlamaConfig(json: Data(json.utf8))
        XCTAssertEqual(c.hiddenSize, 576); XCTAssertEqual(c.intermediateSize, 1536)
        XCTAssertEqual(c.numHiddenLayers, 30); XCTAssertEqual(c.numAttentionHeads, 9); XCTAssertEqual(c.numKeyValueHeads, 3)
        XCTAssertEqual(c.headDim, 64); XCTAssertEqual(c.vocabSize, 49152); XCTAssertEqual(c.maxPositionEmbeddings, 8192)
        XCTAssertEqual(c.rmsNormEps, 1e-5); XCTAssertEqual(c.ropeTheta, 100_000); XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual(c.bosTokenID, 1); XCTAssertEqual(c.eosTokenID, 2)

        let l3 = try HFLlamaConfig(json: Data(#"{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "eos_token_id": [7, 8], "head_dim": 32}"#.utf8))
        XCTAssertEqual(l3.eosTokenIDs, [7, 8]); XCTAssertEqual(l3.eosTokenID, 7)
        XCTAssertEqual(l3.numKeyValueHeads, 4, "defaults to num_attention_heads"); XCTAssertEqual(l3.headDim, 32)
        XCTAssertEqual(l3.ropeTheta, 10000); XCTAssertFalse(l3.tieWordEmbeddings)

        XCTAssertThrowsError(try HFLlamaConfig(json: Data(#"{"hidden_size": 64}"#.utf8))) {
            XCTAssertEqual(($0 as? FormatError)?.kind, .missing)
        }
        XCTAssertThrowsError(try HFLlamaConfig(json: Data(#"{"hidden_size": "64", "intermediate_size": 1, "num_hidden_layers": 1, "num_attention_heads": 1, "vocab_size": 1}"#.utf8))) {
            XCTAssertEqual(($0 as? FormatError)?.context, "hidden_size")
        }
        XCTAssertThrowsError(try HFLlamaConfig(json: Data(#"{"hidden_size": 64, "intermediate_size": 1, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 1}"#.utf8)))
        XCTAssertThrowsError(try HFLlamaConfig(json: Data("nope".utf8)))
    }
}
