import Foundation
import Llama
import SafetyTuning
import TestSupport
import XCTest

/// The `finetune` executable end to end on a TinyModel file (skipped when the executable was not built
/// next to the test bundle: `swift build --build-tests` builds it).
final class FinetuneRunnerTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-ftrun-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    struct Outcome { var status: Int32; var stderr: String }

    func run(_ arguments: [String]) throws -> Outcome {
        let r = try runTool("finetune", arguments, besides: Self.self)
        return Outcome(status: r.status, stderr: r.stderr)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func writeFixtures() throws -> (model: String, data: String, eval: String) {
        let model = path("tiny.gguf")
        try TinyModel.write(to: model, seed: 4)
        let rows = FineTuneTests.rows(8).enumerated().map { i, s in
            i % 2 == 0 ? "{\"instruction\": \"\(s.prompt)\", \"input\": \"\", \"output\": \"\(s.response)\"}"
                       : "{\"prompt\": \"\(s.prompt)\", \"response\": \"\(s.response)\"}"
        }
        try (rows.joined(separator: "\n") + "\n").write(toFile: path("data.jsonl"), atomically: true, encoding: .utf8)
        let eval = """
        [{"messages": [{"role": "user", "content": "q00 red"}, {"role": "assistant", "content": "owl"}]},
         {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q30 owl"}, {"role": "assistant", "content": "elk"}]},
         {"prompt": "q50 fig", "response": "cup"}]
        """
        try eval.write(toFile: path("eval.json"), atomically: true, encoding: .utf8)
        return (model, path("data.jsonl"), path("eval.json"))
    }

    func testEndToEndWritesAdapterMergedGGUFAndReport() throws {
        let f = try writeFixtures()
        let out = try run(["--model", f.model, "--data", f.data, "--eval-data", f.eval, "--out", path("adapter"),
                           "--merged-gguf", path("merged.gguf"), "--merged-type", "f32", "--report", path("report.json"),
                           "--checkpoint", path("run.stck"), "--steps", "6", "--batch", "2", "--lr", "2e-2", "--eval-every", "3",
                           "--targets", "q,v,down", "--threads", "1", "--seed", "7"])
        XCTAssertEqual(out.status, 0, out.stderr)
        XCTAssertTrue(out.stderr.contains("tok/s") && out.stderr.contains("ETA"), "progress lines: \(out.stderr)")

        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("report.json")))) as? [String: Any])
        XCTAssertEqual(report["tool"] as? String, "finetune")
        XCTAssertEqual(report["seed"] as? Int, 7)
        let counts = try XCTUnwrap(report["data_counts"] as? [String: Any])
        XCTAssertEqual(counts["train_rows"] as? Int, 8)
        XCTAssertEqual(counts["eval_rows"] as? Int, 3)
        XCTAssertEqual(counts["train_truncated"] as? Int, 0)
        XCTAssertEqual((counts["train_dropped"] as? [Int])?.count, 0)
        let steps = try XCTUnwrap(report["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.map { $0["step"] as? Int }, [1, 2, 3, 4, 5, 6])
        XCTAssertTrue(steps.allSatisfy { ($0["loss"] as? Double)?.isFinite == true && ($0["tokens"] as? Int ?? 0) > 0 })
        let evals = try XCTUnwrap(report["eval_losses"] as? [[String: Any]])
        XCTAssertEqual(evals.map { $0["step"] as? Int }, [3, 6])
        let base = try XCTUnwrap(report["base_eval_loss"] as? Double)
        XCTAssertLessThan(try XCTUnwrap(evals.last?["loss"] as? Double), base, "training on the answers lowers the held-out loss")
        XCTAssertGreaterThan(report["tokens_per_second"] as? Double ?? 0, 0)
        XCTAssertGreaterThan(report["peak_rss_bytes"] as? Int ?? 0, 0)
        XCTAssertGreaterThan(report["wall_seconds"] as? Double ?? 0, 0)
        let config = try XCTUnwrap(report["config"] as? [String: Any])
        XCTAssertEqual((config["lora"] as? [String: Any])?["targets"] as? [String], ["q", "v", "down"])
        XCTAssertEqual((config["optimizer"] as? [String: Any])?["kind"] as? String, "adamw")

        // The adapter directory loads; merged into the base it gives the merged GGUF's logits exactly.
        let base0 = try LlamaLoader.load(f.model)
        let adapter = try LoRAAdapter.loadPEFT(from: path("adapter"), modelConfig: base0.model.config)
        XCTAssertEqual(adapter.config.targets, [.q, .v, .down])
        XCTAssertGreaterThan(adapter.buffer.norm(), 0)
        let merged = try LlamaLoader.load(path("merged.gguf"))
        let seqs: [[Int32]] = [base0.promptTokens("q00 red"), base0.promptTokens("hello there")]
        let want = try LlamaModel(weights: adapter.merged(into: base0.model.weights)).forward(seqs, options: ForwardOptions(logits: .allTokens)).logits
        XCTAssertEqual(try merged.model.forward(seqs, options: ForwardOptions(logits: .allTokens)).logits, want)
        // The checkpoint holds the final state.
        let ck = try TrainerCheckpoint.read(from: URL(fileURLWithPath: path("run.stck")))
        XCTAssertEqual(ck.header.step, 6)
        XCTAssertEqual(ck.parameters, Array(adapter.buffer.values))
        // A second run replaces the adapter directory; no staging leftovers.
        let again = try run(["--model", f.model, "--data", f.data, "--out", path("adapter"), "--steps", "1", "--rank", "2", "--threads", "1"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try LoRAAdapter.loadPEFT(from: path("adapter"), modelConfig: base0.model.config).config.rank, 2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }, [])
    }

    func testResumeContinuesToTheSameAdapter() throws {
        let f = try writeFixtures()
        let common = ["--model", f.model, "--data", f.data, "--eval-fraction", "0.25", "--batch-tokens", "48", "--epochs", "3",
                      "--lr", "1e-2", "--threads", "1", "--checkpoint-every", "2"]
        XCTAssertEqual(try run(common + ["--out", path("a"), "--checkpoint", path("a.stck")]).status, 0)
        let full = try TrainerCheckpoint.read(from: URL(fileURLWithPath: path("a.stck")))
        XCTAssertGreaterThan(full.header.step, 2)
        // An interrupted run: take the checkpoint of step 2 (what --checkpoint-every 2 wrote first) and resume from it.
        let early = try checkpointAtStep(2)
        try early.write(to: URL(fileURLWithPath: path("c.stck")))
        let resumed = try run(common + ["--out", path("c"), "--checkpoint", path("c.stck"), "--resume", "--report", path("c.json")])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming at step 2"), resumed.stderr)
        let back = try TrainerCheckpoint.read(from: URL(fileURLWithPath: path("c.stck")))
        XCTAssertEqual(back.parameters, full.parameters, "resumed run ends bit for bit where the straight run ended")
        XCTAssertEqual(back.header.history.map(\.loss), full.header.history.map(\.loss))
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("c.json")))) as? [String: Any])
        XCTAssertEqual(report["resumed_from_step"] as? Int, 2)
    }

    /// The state after `step` steps of the run `testResumeContinuesToTheSameAdapter` starts (the library
    /// with the options the command line gives), as an interrupted run leaves it.
    func checkpointAtStep(_ step: Int) throws -> TrainerCheckpoint {
        let f = (model: path("tiny.gguf"), data: path("data.jsonl"))
        let m = try LlamaLoader.load(f.model, keepQuantized: false)
        var o = FineTuneOptions()
        o.trainer.learningRate = 1e-2
        o.trainer.batchTokens = 48
        o.length = .epochs(3)
        let data = try FineTuneData.prepare(try Dataset.load(f.data).samples, evalFraction: 0.25, seed: 0, model: m, maxTokens: 512)
        let run = try FineTune(model: m, data: data, options: o)
        for _ in 0 ..< step { try run.trainer.trainStep() }
        return run.trainer.checkpoint()
    }

    func testBadInputsFailClearlyAndLeaveNoOutput() throws {
        let f = try writeFixtures()
        try "".write(toFile: path("empty.jsonl"), atomically: true, encoding: .utf8)
        try "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": 3}\n".write(toFile: path("bad.jsonl"), atomically: true, encoding: .utf8)
        let outputs = ["--out", path("out"), "--merged-gguf", path("m.gguf"), "--report", path("r.json"), "--steps", "1"]
        let cases: [([String], Int32, String)] = [
            (["--model", path("missing.gguf"), "--data", f.data], 1, "missing.gguf"),
            (["--model", f.model, "--data", path("missing.jsonl")], 1, "missing.jsonl"),
            (["--model", f.model, "--data", path("empty.jsonl")], 1, "no rows"),
            (["--model", f.model, "--data", path("bad.jsonl")], 1, "bad.jsonl:2"),
            (["--model", f.model, "--data", f.data, "--rank", "0"], 2, "--rank"),
            (["--model", f.model, "--data", f.data, "--lr", "fast"], 2, "--lr"),
            (["--model", f.model, "--data", f.data, "--merged-type", "q4_0"], 2, "--merged-type"),
            (["--model", f.model, "--data", f.data, "--targets", "q,x"], 2, "'x'"),
            (["--model", f.model, "--data", f.data, "--eval-fraction", "1.5"], 2, "--eval-fraction"),
            (["--model", f.model, "--data", f.data, "--dropout", "1"], 2, "--dropout"),
            (["--model", f.model, "--data", f.data, "--resume"], 2, "--resume needs --checkpoint"),
            (["--model", f.model, "--data", f.data, "--bogus"], 2, "--bogus"),
            (["--model", f.model, "--data", f.data, "--epochs", "2"], 2, "--steps or --epochs"),
            (["--model", f.model, "--data", f.data, "--max-tokens", "4"], 1, "dropped"),
            (["--model", f.data, "--data", f.data], 1, "data.jsonl"),
        ]
        for (args, status, message) in cases {
            let out = try run(args + outputs)
            XCTAssertEqual(out.status, status, "\(args): \(out.stderr)")
            XCTAssertTrue(out.stderr.contains(message), "\(args): message should name \(message): \(out.stderr)")
            XCTAssertFalse(out.stderr.contains("Fatal error"), "\(args) crashed: \(out.stderr)")
            for p in ["out", "m.gguf", "r.json"] {
                XCTAssertFalse(FileManager.default.fileExists(atPath: path(p)), "\(args) left \(p) behind")
            }
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [])
        // An existing folder that is not an adapter directory is never replaced.
        try FileManager.default.createDirectory(atPath: path("keep"), withIntermediateDirectories: false)
        try "mine".write(toFile: path("keep/notes.txt"), atomically: true, encoding: .utf8)
        let keep = try run(["--model", f.model, "--data", f.data, "--out", path("keep"), "--steps", "1"])
        XCTAssertEqual(keep.status, 2)
        XCTAssertTrue(keep.stderr.contains("holds no adapter_config.json"), keep.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("keep")), ["notes.txt"])
        let missingFolder = try run(["--model", f.model, "--data", f.data, "--out", path("no/such/adapter")])
        XCTAssertEqual(missingFolder.status, 2)
        XCTAssertTrue(missingFolder.stderr.contains("does not exist"), missingFolder.stderr)
    }

    func testHelpListsEveryOption() throws {
        let p = Process()
        p.executableURL = try builtTool("finetune", besides: Self.self)
        p.arguments = ["--help"]
        let o = Pipe()
        p.standardOutput = o
        try p.run()
        let text = String(decoding: o.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        for option in ["--model", "--data", "--eval-data", "--eval-fraction", "--out", "--merged-gguf", "--merged-type", "--report",
                       "--resume", "--checkpoint", "--rank", "--alpha", "--targets", "--lr", "--batch-tokens", "--threads", "--seed"] {
            XCTAssertTrue(text.contains(option), "help lacks \(option)")
        }
    }
}
