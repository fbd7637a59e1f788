import Kernels
import Llama
import TestSupport
import XCTest

/// Checks on SmolLM2-135M-Instruct itself; skipped with a message when the model file is absent.
final class RealModelTests: XCTestCase {
    nonisolated(unsafe) static var cached: LoadedModel?

    func loaded() throws -> LoadedModel {
        guard let path = smolLM2Path() else { throw XCTSkip(smolLM2MissingMessage) }
        if let m = Self.cached { return m }
        let m = try LlamaLoader.load(path)
        Self.cached = m
        return m
    }

    func testLoadsConfigTemplateAndQuantizedCopies() throws {
        let m = try loaded()
        let c = m.model.config
        XCTAssertEqual([c.layers, c.hiddenSize, c.heads, c.kvHeads, c.headDim, c.ffnSize, c.vocabSize],
                       [30, 576, 9, 3, 64, 1536, 49152])
        XCTAssertEqual(c.ropeBase, 100_000)
        XCTAssertTrue(c.tiedEmbeddings)
        XCTAssertEqual(m.template.kind.rawValue, "chatml")
        XCTAssertTrue(m.model.weights.quantized?.complete ?? false)
        XCTAssertEqual(m.tensorTypes["Q4_1"], 210)
        XCTAssertEqual(m.tensorTypes["Q8_0"], 1)
    }

    func testFastForwardMatchesDoubleReferenceOnRealWeights() throws {
        guard isReleaseBuild else { throw XCTSkip("the Double reference over 135M parameters needs a release build") }
        let m = try loaded()
        let tokens = m.tokenizer.encode("The quick brown fox", addSpecial: false, parseSpecial: false).map { Int32($0) }
        let out = try m.model.forward([tokens], options: ForwardOptions(logits: .allTokens, captureBlocks: [15, 30]))
        let ref = LlamaReference.forward(m.model.weights, tokens: tokens.map(Int.init))
        for b in [15, 30] {
            let scale = ref.hidden[b].map(abs).max()!
            assertWithinBound(out.hidden[b]!, ref.hidden[b], "block \(b)", bound: { _ in 1e-4 * scale })
        }
        let scale = ref.logits.map(abs).max()!
        assertWithinBound(out.logits, ref.logits, "logits", bound: { _ in 1e-4 * scale })
    }

    func testGreedyAnswerAndQuantizedDecodeAgreeWithF32() throws {
        let m = try loaded()
        let prompt = m.promptTokens("What is the capital of France?")
        var options = GenerationOptions(maxNewTokens: 24)
        options.stopTokens = m.stopTokens
        let answer = try m.model.generate([prompt], options: options)[0]
        XCTAssertTrue(m.responseText(answer).contains("Paris"), "answer was: \(m.responseText(answer))")
        // The quantized single-token path and the F32 path (batch of two copies) pick the same tokens.
        let pair = try m.model.generate([prompt, prompt], options: options)
        XCTAssertEqual(pair[0], pair[1])
        XCTAssertEqual(Array(pair[0].prefix(8)), Array(answer.prefix(8)))
    }
}
