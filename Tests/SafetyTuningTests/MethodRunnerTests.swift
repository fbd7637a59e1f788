import Foundation
import Llama
import SafetyTuning
import TestSupport
import XCTest

/// The `sap` and `seal` executables end to end on a tiny model file: reports, outputs, and clear
/// failures without partial output on bad input.
final class MethodRunnerTests: XCTestCase {
    var dir: URL!
    var modelPath: String { dir.appendingPathComponent("tiny.gguf").path }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("method-runners-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try TinyModel.write(to: modelPath, seed: 4)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func run(_ name: String, _ args: [String]) throws -> (status: Int32, stderr: String) {
        let r = try runTool(name, args, besides: Self.self)
        return (r.status, r.stderr)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: dir.appendingPathComponent(name))
        return path(name)
    }
    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }
    func json(_ name: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(name))) as? [String: Any])
    }

    func taskRows(_ n: Int) -> String {
        (0 ..< n).map { "{\"instruction\": \"name a colour \($0)\", \"input\": \"\", \"output\": \"the colour is blue \($0)\"}" }
            .joined(separator: "\n") + "\n"
    }
    func tripleRows(_ n: Int) -> String {
        (0 ..< n).map { "{\"prompt\": \"how to do harm \($0)\", \"chosen\": \"I cannot help with that.\", \"rejected\": \"sure, here is how \($0)\"}" }
            .joined(separator: "\n") + "\n"
    }

    func testSAPEndToEnd() throws {
        let data = try write("task.jsonl", taskRows(6)), triples = try write("triples.jsonl", tripleRows(4))
        let eval = try write("eval.jsonl", taskRows(2))
        let r = try run("sap", ["--model", modelPath, "--data", data, "--triples", triples, "--out", path("adapter"),
                                "--report", path("sap.json"), "--merged-gguf", path("merged.gguf"), "--eval", eval,
                                "--steps", "3", "--batch-size", "3", "--contrastive-batch", "2", "--grad-rate", "0.01"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("tok/s") && r.stderr.contains("ETA"), r.stderr)
        let rep = try json("sap.json")
        XCTAssertEqual(rep["method"] as? String, "sap")
        let steps = try XCTUnwrap(rep["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 3)
        for s in steps {
            XCTAssertTrue((s["loss"] as? Double).map { $0.isFinite && $0 > 0 } ?? false)
            XCTAssertTrue((s["safety_loss"] as? Double).map { $0.isFinite && $0 > 0 } ?? false)
            XCTAssertGreaterThan(s["epsilon"] as? Double ?? 0, 0)
        }
        let cost = try XCTUnwrap(rep["cost"] as? [String: Any])
        XCTAssertGreaterThan(cost["ratio_vs_plain_sft"] as? Double ?? 0, 1)
        XCTAssertEqual((rep["config"] as? [String: Any])?["probe_layers"] as? [Int], [0, 1])
        XCTAssertNotNil(rep["eval_loss_after"] as? Double)
        XCTAssertNotNil(rep["saturated_contrastive_steps"] as? Int)
        XCTAssertTrue(exists("adapter/adapter_config.json") && exists("adapter/adapter_model.safetensors"))
        let merged = try LlamaLoader.load(path("merged.gguf"))
        XCTAssertEqual(merged.model.config.layers, 2)
        let adapter = try LoRAAdapter.loadPEFT(from: path("adapter"), modelConfig: merged.model.config)
        XCTAssertGreaterThan(adapter.buffer.norm(), 0)

        let plain = try run("sap", ["--model", modelPath, "--data", data, "--plain-sft", "--out", path("sft"), "--report", path("sft.json"),
                                    "--steps", "2", "--batch-size", "3"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(try json("sft.json")["method"] as? String, "plain-sft")
    }

    func testSEALEndToEndKeepsTheTopRowsInTheInputFormat() throws {
        // A JSON array with labels; row 3 has a prompt too long for --max-tokens and is never scored.
        var rows = (0 ..< 10).map { i -> String in
            "{\"prompt\": \"question \(i)\", \"response\": \"answer number \(i)\", \"label\": \"\(i % 3 == 0 ? "harmful" : "benign")\"}"
        }
        rows[3] = "{\"prompt\": \"\(String(repeating: "very long prompt ", count: 20))\", \"response\": \"x\", \"label\": \"harmful\"}"
        let data = try write("ft.json", "[\n" + rows.joined(separator: ",\n") + "\n]\n")
        let safe = try write("safe.jsonl", (0 ..< 8).map { "{\"prompt\": \"bad thing \($0)\", \"response\": \"I cannot help with that.\"}" }
            .joined(separator: "\n") + "\n")
        let r = try run("seal", ["--model", modelPath, "--data", data, "--safe", safe, "--out", path("kept.json"),
                                 "--scores", path("scores.jsonl"), "--report", path("seal.json"), "--adapter-out", path("sft"),
                                 "--keep-fraction", "0.5", "--epochs", "2", "--batch-size", "4", "--max-tokens", "48",
                                 "--sft-steps", "2", "--sft-batch", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let scores = try String(contentsOf: dir.appendingPathComponent("scores.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(scores.map { $0["index"] as? Int }, (0 ..< 10).map { $0 })
        XCTAssertTrue(scores[3]["score"] is NSNull && scores[3]["dropped"] as? Bool == true && scores[3]["kept"] as? Bool == false)
        // The kept rows are the floor(0.5 · 9) = 4 highest scores, in input order, byte-for-byte in the input's format.
        let scored = scores.filter { $0["score"] is Double }
        let top = scored.sorted { ($0["score"] as! Double, -($0["index"] as! Int)) > ($1["score"] as! Double, -($1["index"] as! Int)) }
            .prefix(4).map { $0["index"] as! Int }.sorted()
        XCTAssertEqual(scores.filter { $0["kept"] as? Bool == true }.map { $0["index"] as! Int }, top)
        let input = try Dataset.load(data)
        let kept = try Data(contentsOf: dir.appendingPathComponent("kept.json"))
        XCTAssertEqual(kept, input.serialize(top))
        let reloaded = try Dataset.load(path("kept.json"))
        XCTAssertEqual(reloaded.layout, .jsonArray)
        XCTAssertEqual(reloaded.samples.map(\.prompt), top.map { input.samples[$0].prompt })
        let rep = try json("seal.json")
        XCTAssertEqual((rep["rows"] as? [String: Any])?["scored"] as? Int, 9)
        XCTAssertEqual((rep["steps"] as? [[String: Any]])?.count, 4)   // 2 epochs of min(8, 9) / 4
        XCTAssertNotNil((rep["selector"] as? [String: Any])?["final"] as? [String: Double])
        XCTAssertNotNil(rep["against_labels"] as? [String: Any])
        XCTAssertNotNil(rep["sft"] as? [String: Any])
        XCTAssertTrue(exists("sft/adapter_config.json"))
    }

    func testBadInputsFailClearlyWithoutPartialOutput() throws {
        let data = try write("task.jsonl", taskRows(4)), triples = try write("triples.jsonl", tripleRows(2))
        let empty = try write("empty.jsonl", "")
        var r = try run("sap", ["--model", modelPath, "--data", data, "--triples", empty, "--out", path("a1"), "--report", path("r1.json")])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("no triples"), r.stderr)
        XCTAssertFalse(exists("a1") || exists("r1.json"))
        // Mismatched files: a task file given as triples, a triples file given as the safe set.
        r = try run("sap", ["--model", modelPath, "--data", data, "--triples", data, "--out", path("a2")])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("task.jsonl:1") && r.stderr.contains("prompt"), r.stderr)
        XCTAssertFalse(exists("a2"))
        for fraction in ["0", "1.5", "-0.2"] {
            r = try run("seal", ["--model", modelPath, "--data", data, "--safe", data, "--out", path("k.jsonl"), "--keep-fraction", fraction])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("--keep-fraction"), r.stderr)
        }
        r = try run("seal", ["--model", modelPath, "--data", data, "--safe", triples, "--out", path("k.jsonl"), "--scores", path("s.jsonl")])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("triples.jsonl:1") && r.stderr.contains("no response"), r.stderr)
        XCTAssertFalse(exists("k.jsonl") || exists("s.jsonl"))
        r = try run("seal", ["--model", modelPath, "--data", empty, "--safe", data, "--out", path("k.jsonl")])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("no rows"), r.stderr)
        r = try run("sap", ["--model", modelPath, "--data", data, "--triples", triples, "--out", path("nofolder/adapter")])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("does not exist"), r.stderr)
    }
}
