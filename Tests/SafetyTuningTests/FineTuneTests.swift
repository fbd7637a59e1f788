import Foundation
import Kernels
import Llama
import SafetyTuning
import TestSupport
import XCTest

/// The fine-tuning library on TinyModel files: data preparation, overfitting, merged export.
final class FineTuneTests: XCTestCase {
    static func tinyLoaded(seed: UInt64 = 5) throws -> LoadedModel {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-ft-\(getpid())-\(seed).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyModel.write(to: path, seed: seed)
        return try LlamaLoader.load(path)
    }

    /// Sixteen rows with distinct prompts and short answers.
    static func rows(_ n: Int = 16) -> [Sample] {
        let words = ["red", "sun", "tea", "owl", "map", "ink", "fig", "oak", "bee", "cup", "elk", "gem", "hut", "jar", "kit", "log",
                     "mud", "nut", "pen", "rug"]
        return (0 ..< n).map { Sample(prompt: "q\($0 % 10)\($0 / 10) \(words[$0 % words.count])", response: words[(7 * $0 + 3) % words.count]) }
    }

    func testPrepareSplitsCountsAndIsSeeded() throws {
        let m = try Self.tinyLoaded()
        var rows = Self.rows(10)
        rows[4] = Sample(prompt: String(repeating: "long prompt ", count: 30), response: "x")   // dropped at 40 tokens
        rows[6] = Sample(prompt: "p", response: String(repeating: "long answer ", count: 30))  // truncated
        let d = try FineTuneData.prepare(rows, evalFraction: 0.2, seed: 3, model: m, maxTokens: 40)
        XCTAssertEqual(d.evalRows.count, 2)
        XCTAssertEqual(d.trainRows.count, 8)
        XCTAssertTrue(Set(d.evalRows).isDisjoint(with: d.trainRows))
        XCTAssertEqual(Set(d.evalRows + d.trainRows), Set(0 ..< 10))
        XCTAssertEqual(d.evalRows, try FineTuneData.prepare(rows, evalFraction: 0.2, seed: 3, model: m, maxTokens: 40).evalRows, "seeded")
        XCTAssertNotEqual(d.evalRows, try FineTuneData.prepare(rows, evalFraction: 0.2, seed: 4, model: m, maxTokens: 40).evalRows)
        // Row indices refer to the input file, whichever split a row landed in.
        let all = (d.train.sourceIndex + d.train.dropped + d.eval.sourceIndex + d.eval.dropped).sorted()
        XCTAssertEqual(all, Array(0 ..< 10))
        XCTAssertEqual((d.train.dropped + d.eval.dropped), [4])
        XCTAssertEqual(d.train.truncated + d.eval.truncated, 2, "the dropped prompt row and the long answer row")
        for (k, i) in d.train.sourceIndex.enumerated() where i != 6 {
            XCTAssertEqual(d.train.samples[k], SampleEncoding.trainingSample(rows[i], with: m, maxTokens: 40).sample)
        }
        XCTAssertThrowsError(try FineTuneData.prepare([], model: m, maxTokens: 40))
        XCTAssertThrowsError(try FineTuneData.prepare([rows[4]], model: m, maxTokens: 40), "every row dropped")
        // Epochs -> steps: 7 or 8 training samples, batch 3 -> 2 micro-batches per epoch; 1.5 epochs = 3 micro-batches; accumulation 2 -> 2 steps.
        var o = TrainerOptions()
        o.batchSize = 3
        XCTAssertEqual(FineTune.totalSteps(.epochs(1.5), trainSet: d.train.samples, options: o), 3)
        o.gradientAccumulation = 2
        XCTAssertEqual(FineTune.totalSteps(.epochs(1.5), trainSet: d.train.samples, options: o), 2)
        XCTAssertEqual(FineTune.totalSteps(.steps(7), trainSet: d.train.samples, options: o), 7)
    }

    /// The library learns sixteen rows to near-zero held-out (= training) loss. The answer has to be
    /// carried from the prompt across the template's ~15 tokens, so this takes 200 full-batch steps
    /// (2 s in release, ~10 min in debug: release only).
    func testLibraryOverfitsSixteenRows() throws {
        guard isReleaseBuild else { throw XCTSkip("200 training steps: release builds only") }
        let m = try Self.tinyLoaded()
        let rows = Self.rows()
        let data = try FineTuneData.prepare(rows, evalData: rows, model: m, maxTokens: 64)
        XCTAssertEqual(data.train.samples.count, 16)
        var o = FineTuneOptions()
        o.lora = LoRAConfig(rank: 8, alpha: 16, targets: LoRATarget.allCases, trainNorms: true)
        o.trainer.learningRate = 1e-2
        o.trainer.batchSize = 16
        o.trainer.maxGradNorm = nil
        o.trainer.optimizer = .adamW(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0)
        o.trainer.evalEvery = 50
        o.length = .steps(200)
        o.schedule = .cosine(warmupSteps: 3, minRatio: 0)
        let run = try FineTune(model: m, data: data, options: o)
        let r = try run.run()
        XCTAssertEqual(r.steps.count, 200)
        XCTAssertEqual(r.evalLosses.map(\.step), [50, 100, 150, 200])
        let base = try XCTUnwrap(r.baseEvalLoss)
        XCTAssertGreaterThan(base, 3, "a random model starts near log V")
        XCTAssertEqual(r.steps.first!.loss, base, accuracy: 0.02 * base, "step 1 trains from the base model (dropout 0)")
        XCTAssertLessThan(r.evalLosses.last!.loss, 0.05, "did not overfit: base \(base), evals \(r.evalLosses)")
        XCTAssertEqual(r.trainTokens, 200 * data.train.tokens)
        XCTAssertGreaterThan(r.peakResidentBytes, 0)
    }

    /// A GGUF of the merged model reloads to the adapter forward: the per-token losses of the base +
    /// adapter engine equal those of the reloaded F32 file within F32 rounding, and its logits equal
    /// the in-memory merged model's bit for bit. Q8_0 reloads to exactly the merged weights rounded
    /// through Q8_0 (so its logits are those of the quantized weights) and stays close to F32.
    func testMergedGGUFReloadsToAdapterForward() throws {
        let m = try Self.tinyLoaded(seed: 6)
        let data = try FineTuneData.prepare(Self.rows(6), model: m, maxTokens: 64)
        var o = FineTuneOptions()
        o.lora = LoRAConfig(rank: 4, alpha: 8, dropout: 0.1, targets: LoRATarget.allCases)
        o.trainer.learningRate = 5e-2
        o.trainer.batchSize = 3
        o.length = .steps(4)
        let run = try FineTune(model: m, data: data, options: o)
        _ = try run.run()
        XCTAssertGreaterThan(run.adapter.buffer.norm(), 0)
        let batch = try TrainingBatch(data.train.samples, config: m.model.config)
        let adapterEngine = TrainingEngine(model: m.model, adapter: run.adapter)
        adapterEngine.training = false
        let adapterLosses = adapterEngine.losses(batch)
        let baseLosses = TrainingEngine(model: m.model).losses(batch)
        let merged = try run.adapter.merged(into: m.model.weights)
        let mergedLogits = try LlamaModel(weights: merged).forward(batch.sequences, options: ForwardOptions(logits: .allTokens)).logits

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-merge-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for type in [GGUFExport.MatrixType.f32, .q8_0] {
            let path = dir.appendingPathComponent("merged-\(type).gguf").path
            try FineTune.exportMerged(run.adapter, model: m, type: type, name: "t", to: path)
            let back = try LlamaLoader.load(path)
            XCTAssertEqual(back.tokenizer.tokenCount, m.tokenizer.tokenCount)
            XCTAssertEqual(back.template.kind, m.template.kind)
            let logits = try back.model.forward(batch.sequences, options: ForwardOptions(logits: .allTokens)).logits
            switch type {
            case .f32:
                XCTAssertEqual(logits, mergedLogits, "F32 export is exact")
                let reloaded = TrainingEngine(model: back.model).losses(batch)
                let target = (0 ..< batch.tokenCount).filter { batch.targets[$0] != CrossEntropy.defaultIgnoreIndex }
                assertClose(target.map { reloaded[$0] }, target.map { Double(adapterLosses[$0]) }, rtol: 1e-4, atol: 1e-5,
                            "merged GGUF losses vs adapter forward")
                let moved = target.map { abs(adapterLosses[$0] - baseLosses[$0]) }.max()!
                XCTAssertGreaterThan(moved, 1e-3, "the adapter changes the model, so the comparison means something")
            default:
                let expected = try quantizedCopy(merged, .q8_0)
                XCTAssertEqual(Array(back.model.weights.arena), Array(expected.arena), "Q8_0 file = merged weights through Q8_0")
                let want = try LlamaModel(weights: expected).forward(batch.sequences, options: ForwardOptions(logits: .allTokens)).logits
                XCTAssertEqual(logits, want)
                let scale = mergedLogits.map { abs(Double($0)) }.max()!
                assertWithinBound(logits, mergedLogits.map(Double.init), "Q8_0 logits near F32", bound: { _ in 0.05 * scale })
            }
        }
    }

    /// `w` with every matrix rounded through `type` row by row (norms stay F32), as GGUFExport writes it.
    func quantizedCopy(_ w: LlamaWeights, _ type: Kernels.GGMLType) throws -> LlamaWeights {
        let c = w.config, C = c.hiddenSize, F = c.ffnSize
        let out = try LlamaWeights(config: c)
        out.arena.baseAddress!.update(from: w.arena.baseAddress!, count: w.layout.total)
        func round(_ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
            var bytes = [UInt8](repeating: 0, count: type.rowBytes(count: cols)!)
            for r in 0 ..< rows {
                bytes.withUnsafeMutableBytes { Quantize.row(type, src: p + r * cols, out: $0.baseAddress!, count: cols) }
                bytes.withUnsafeBytes { Dequantize.row(type, src: $0.baseAddress!, out: p + r * cols, count: cols) }
            }
        }
        round(out.embedding, rows: c.vocabSize, cols: C)
        for l in 0 ..< c.layers {
            round(out.qkv(l), rows: c.qDim + 2 * c.kvDim, cols: C)
            round(out.wo(l), rows: C, cols: c.qDim)
            round(out.gateUp(l), rows: 2 * F, cols: C)
            round(out.down(l), rows: C, cols: F)
        }
        if !c.tiedEmbeddings { round(out.output, rows: c.vocabSize, cols: C) }
        return out
    }

    /// A run interrupted by a checkpoint and resumed through the library ends where the straight run
    /// ends, with dynamic batching by length; a checkpoint of other data is refused.
    func testResumeThroughLibraryWithTokenBatches() throws {
        let m = try Self.tinyLoaded()
        let rows = Self.rows(12)
        let data = try FineTuneData.prepare(rows, evalFraction: 0.25, seed: 1, model: m, maxTokens: 64)
        var o = FineTuneOptions()
        o.trainer.learningRate = 1e-2
        o.trainer.batchTokens = 60
        o.trainer.evalEvery = 2
        o.length = .epochs(3)
        let straight = try FineTune(model: m, data: data, options: o)
        let all = try straight.run()
        XCTAssertGreaterThan(all.steps.count, 4)
        XCTAssertEqual(all.steps.count, FineTune.totalSteps(.epochs(3), trainSet: data.train.samples, options: o.trainer))

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ft-resume-\(getpid()).stck")
        defer { try? FileManager.default.removeItem(at: url) }
        let first = try FineTune(model: m, data: data, options: o)
        for _ in 0 ..< 3 { try first.trainer.trainStep() }
        try first.trainer.checkpoint().write(to: url)
        let resumed = try FineTune(model: m, data: data, options: o)
        try resumed.resume(from: TrainerCheckpoint.read(from: url))
        let rest = try resumed.run()
        XCTAssertEqual(rest.resumedFromStep, 3)
        XCTAssertEqual(rest.steps.map(\.loss), all.steps.map(\.loss))
        XCTAssertEqual(rest.evalLosses, all.evalLosses)
        XCTAssertEqual(Array(resumed.adapter.buffer.values), Array(straight.adapter.buffer.values))

        var otherRows = rows
        otherRows[data.trainRows[0]] = Sample(prompt: "different", response: "row")
        let other = try FineTune(model: m, data: try FineTuneData.prepare(otherRows, evalFraction: 0.25, seed: 1, model: m, maxTokens: 64),
                                 options: o)
        XCTAssertThrowsError(try other.resume(from: TrainerCheckpoint.read(from: url))) {
            XCTAssertTrue("\($0)".contains("other training data"), "\($0)")
        }
    }
}
