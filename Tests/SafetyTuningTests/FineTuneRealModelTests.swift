import Foundation
import Llama
import SafetyTuning
import TestSupport
import XCTest

/// A short LoRA run on SmolLM2 with real Alpaca rows lowers the held-out loss (skipped without the
/// model or ../shared/data; about a minute in a release build).
final class FineTuneRealModelTests: XCTestCase {
    func testShortLoRARunOnAlpacaLowersHeldOutLoss() throws {
        guard let modelPath = smolLM2Path() else { throw XCTSkip(smolLM2MissingMessage) }
        guard let shared = sharedDataDirectory() else { throw XCTSkip("../shared/data not found (real Alpaca rows)") }
        let file = shared.appendingPathComponent("stanford_alpaca/alpaca_5000.json").path
        guard FileManager.default.fileExists(atPath: file) else { throw XCTSkip("\(file) not found") }
        guard isReleaseBuild else { throw XCTSkip("SmolLM2 training runs in release builds only (debug is ~100x slower)") }

        // Short rows (the first 40 whose text is under 160 characters): 32 to train on, 8 held out.
        let rows = try Dataset.load(file).samples.filter { ($0.prompt + $0.response).count < 160 }.prefix(40)
        XCTAssertEqual(rows.count, 40)
        let m = try LlamaLoader.load(modelPath, keepQuantized: false)
        let data = try FineTuneData.prepare(Array(rows.prefix(32)), evalData: Array(rows.suffix(8)), model: m, maxTokens: 128)
        XCTAssertEqual(data.train.dropped, [])
        var o = FineTuneOptions()
        o.lora = LoRAConfig(rank: 8, alpha: 16, dropout: 0.05, targets: [.q, .v])
        o.trainer.learningRate = 1e-3
        o.trainer.batchSize = 4
        o.length = .steps(8)
        o.schedule = .constant(warmupSteps: 0)
        let run = try FineTune(model: m, data: data, options: o)
        let r = try run.run()
        let base = try XCTUnwrap(r.baseEvalLoss), after = try XCTUnwrap(r.evalLosses.last?.loss)
        print(String(format: "SmolLM2 LoRA on Alpaca: held-out loss %.4f -> %.4f after %d steps (%d tokens, %.0f tokens/s, peak RSS %.0f MiB, %.1f s)",
                     base, after, r.steps.count, r.trainTokens, r.tokensPerSecond, Double(r.peakResidentBytes) / 1_048_576, r.wallSeconds))
        XCTAssertLessThan(after, base - 0.02, "8 LoRA steps on Alpaca should lower the held-out loss (base \(base), after \(after))")
        XCTAssertTrue(r.steps.allSatisfy { $0.loss.isFinite && $0.gradNorm.isFinite })
    }
}
