import Foundation
import Kernels
import Llama
import ModelFormats
import TestSupport
import XCTest

final class PEFTAdapterTests: XCTestCase {
    func temporaryDirectory(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("safetune-peft-\(getpid())-\(name)").path
    }

    /// An adapter with random (non-zero) A and B on every target.
    func trainedAdapter(_ model: LlamaModel, trainNorms: Bool) throws -> LoRAAdapter {
        let ad = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 3, alpha: 6, targets: LoRATarget.allCases, trainNorms: trainNorms), seed: 1)
        var rng = SeededRNG(seed: 8)
        for i in 0 ..< ad.parameterCount { ad.buffer.values[i] += Float.random(in: -0.2 ... 0.2, using: &rng) }
        return ad
    }

    /// Save then load gives the same floats; the forward with the loaded adapter merged equals the original's.
    func testSaveLoadRoundTrip() throws {
        let model = try tinyModel(seed: 12)
        for norms in [false, true] {
            let ad = try trainedAdapter(model, trainNorms: norms)
            let dir = temporaryDirectory("rt-\(norms)")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try ad.savePEFT(to: dir, baseModel: "tiny")
            let back = try LoRAAdapter.loadPEFT(from: dir, modelConfig: model.config)
            XCTAssertEqual(back.config, ad.config)
            XCTAssertEqual(Array(back.buffer.values), Array(ad.buffer.values), "norms \(norms)")
        }
    }

    /// The files hold PEFT names and Hugging Face row order: q_proj's B written by the engine equals
    /// the engine's B with rows un-permuted, and the config says what PEFT needs.
    func testFilesFollowPEFTLayout() throws {
        let model = try tinyModel(seed: 12)
        let ad = try trainedAdapter(model, trainNorms: false)
        let dir = temporaryDirectory("layout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ad.savePEFT(to: dir, baseModel: "HuggingFaceTB/SmolLM2-135M-Instruct")
        let st = try SafeTensorsFile(path: dir + "/adapter_model.safetensors")
        let c = model.config
        let s = ad.slot(1, .q)!
        let name = "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"
        XCTAssertEqual(st.tensorInfo(name)?.shape, [c.qDim, 3])
        let hf = try st.floats(name)
        let engine = Array(UnsafeBufferPointer(start: ad.b(s), count: c.qDim * 3))
        for row in 0 ..< c.qDim {
            let h = LoRAAdapter.engineToHuggingFaceRow(row, headDim: c.headDim)
            XCTAssertEqual(Array(hf[h * 3 ..< h * 3 + 3]), Array(engine[row * 3 ..< row * 3 + 3]))
        }
        XCTAssertEqual(st.tensorInfo("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight")?.shape, [3, c.ffnSize])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/adapter_config.json"))) as! [String: Any]
        XCTAssertEqual(json["peft_type"] as? String, "LORA")
        XCTAssertEqual(json["r"] as? Int, 3)
        XCTAssertEqual((json["lora_alpha"] as? NSNumber)?.doubleValue, 6)
        XCTAssertEqual(json["target_modules"] as? [String], ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    }

    /// Directories the engine cannot honour are refused with a message naming the problem.
    func testRejectsBadDirectories() throws {
        let model = try tinyModel(seed: 12)
        let ad = try trainedAdapter(model, trainNorms: false)
        let dir = temporaryDirectory("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ad.savePEFT(to: dir, baseModel: "tiny")
        let cfgPath = dir + "/adapter_config.json"
        let good = try Data(contentsOf: URL(fileURLWithPath: cfgPath))
        func expectError(_ edit: (inout [String: Any]) -> Void, _ needle: String, config: LlamaConfig? = nil) throws {
            var j = try JSONSerialization.jsonObject(with: good) as! [String: Any]
            edit(&j)
            try JSONSerialization.data(withJSONObject: j).write(to: URL(fileURLWithPath: cfgPath))
            XCTAssertThrowsError(try LoRAAdapter.loadPEFT(from: dir, modelConfig: config ?? model.config)) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(e) should mention \(needle)")
            }
        }
        try expectError({ $0["use_dora"] = true }, "use_dora")
        try expectError({ $0["r"] = 4 }, "shape")
        try expectError({ $0["target_modules"] = ["q_proj", "lm_head"] }, "lm_head")
        try expectError({ $0["target_modules"] = ["q_proj"] }, "does not belong")
        try expectError({ $0["rank_pattern"] = ["q_proj": 2] }, "rank_pattern")
        var other = model.config; other.layers = 1
        try expectError({ _ in }, "does not belong", config: other)
        try good.write(to: URL(fileURLWithPath: cfgPath))
        try Data("not a safetensors file".utf8).write(to: URL(fileURLWithPath: dir + "/adapter_model.safetensors"))
        XCTAssertThrowsError(try LoRAAdapter.loadPEFT(from: dir, modelConfig: model.config)) { e in
            XCTAssertTrue("\(e)".contains("adapter_model.safetensors"), "\(e)")
        }
        XCTAssertThrowsError(try LoRAAdapter.loadPEFT(from: dir + "/missing", modelConfig: model.config))
    }
}
