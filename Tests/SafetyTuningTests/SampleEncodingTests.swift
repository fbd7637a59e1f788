import Foundation
import Llama
import SafetyTuning
import XCTest

final class SampleEncodingTests: XCTestCase {
    static func tinyLoaded() throws -> LoadedModel {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("safetune-enc-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyModel.write(to: path, seed: 2)
        return try LlamaLoader.load(path)
    }

    /// The loss covers exactly the response and its end-of-turn token; the template's trailing newline is dropped.
    func testLossMaskCoversResponseThroughEndOfTurn() throws {
        let m = try Self.tinyLoaded()
        let s = Sample(prompt: "hi there", response: "the answer")
        let (x, cut) = SampleEncoding.trainingSample(s, with: m, maxTokens: 1000)
        let sample = try XCTUnwrap(x)
        XCTAssertFalse(cut)
        let ids = sample.tokens.map(Int.init)
        let promptIDs = m.promptTokens("hi there").map(Int.init)
        XCTAssertEqual(Array(ids.prefix(promptIDs.count)), promptIDs, "prompt part equals the generation prompt")
        XCTAssertEqual(sample.lossMask, (0 ..< ids.count).map { $0 >= promptIDs.count })
        let target = ids.indices.filter { sample.lossMask[$0] }.map { ids[$0] }
        XCTAssertEqual(m.tokenizer.decode(target), "the answer<|im_end|>")
    }

    /// Truncation keeps the first tokens and is counted; a prompt that fills the limit is dropped and reported.
    func testTruncationAndDroppedRows() throws {
        let m = try Self.tinyLoaded()
        let rows = [Sample(prompt: "a", response: String(repeating: "long answer ", count: 20)),
                    Sample(prompt: String(repeating: "very long prompt ", count: 20), response: "ok"),
                    Sample(prompt: "b", response: "c")]
        let set = SampleEncoding.trainingSet(rows, with: m, maxTokens: 40)
        XCTAssertEqual(set.sourceIndex, [0, 2])
        XCTAssertEqual(set.dropped, [1])
        XCTAssertEqual(set.truncated, 2)
        XCTAssertEqual(set.samples[0].tokens.count, 40)
        XCTAssertTrue(set.samples[0].targetCount > 0)
    }
}
