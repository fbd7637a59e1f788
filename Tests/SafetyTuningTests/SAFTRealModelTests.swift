import Foundation
import Kernels
import Llama
import SafetyTuning
import TestSupport
import XCTest

/// End-to-end smoke test of SAFT on SmolLM2 with 50 demo rows (skipped without the model).
final class SAFTRealModelTests: XCTestCase {
    func testEmbedsAndFiltersFiftyRows() throws {
        guard let path = smolLM2Path() else { throw XCTSkip(smolLM2MissingMessage) }
        let m = try LlamaLoader.load(path)
        let rows = DemoData.generate(rows: 50, harmfulFraction: 0.2, seed: 1)
        let samples = rows.map { Sample(system: nil, prompt: $0["instruction"]!, response: $0["output"]!,
                                        harmful: $0["label"] == "harmful", raw: "") }
        let e = try SAFTEmbedder.embed(samples, model: m, blocks: [15, 22], position: .lastPromptToken, batchTokens: 512)
        XCTAssertEqual(e.rows, 50)
        XCTAssertEqual(e.byBlock[15]!.count, 50 * 576)
        XCTAssertTrue(e.byBlock[22]!.allSatisfy { $0.isFinite })
        // The embedding at the last prompt token equals the block state of that token in a plain forward.
        let (ids, promptTokens) = SampleEncoding.encode(samples[3], with: m)
        let direct = try m.model.forward([Array(ids.prefix(promptTokens))],
                                         options: ForwardOptions(logits: .none, captureBlocks: [15])).hidden[15]!
        let row = Array(direct[(promptTokens - 1) * 576 ..< promptTokens * 576])
        let plain = try SAFTEmbedder.embed(samples, model: m, blocks: [15], position: .lastPromptToken, batchTokens: 512, sharePrefix: false)
        XCTAssertEqual(row, Array(plain.byBlock[15]![3 * 576 ..< 4 * 576]))
        // With the template's opening run once (24 tokens here), the same state up to rounding.
        XCTAssertEqual(e.sharedPrefixTokens, 24)
        let shared = Array(e.byBlock[15]![3 * 576 ..< 4 * 576])
        let err = zip(shared, row).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        XCTAssertLessThan(err, 1e-5 * row.map { Double($0) * Double($0) }.reduce(0, +).squareRoot())
        var options = SAFT.Options()
        options.rank = 1
        let r = try SAFT.run(Embeddings(rows: 50, dim: 576, byBlock: [22: e.byBlock[22]!], position: .lastPromptToken),
                             policy: .removeFraction(0.2), options: options)
        XCTAssertEqual(r.removedCount, 10)
        XCTAssertEqual(r.block, 22)
    }
}
