import Kernels
import Llama
import TestSupport
import XCTest

/// A tiny config that crosses GQA grouping, a partial rotary dim is not used by Llama checkpoints.
func tinyConfig(tied: Bool = true) -> LlamaConfig {
    LlamaConfig(vocabSize: 61, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, ffnSize: 48,
                rmsEps: 1e-5, ropeBase: 10_000, contextLength: 64, tiedEmbeddings: tied)
}

func tinyModel(seed: UInt64 = 3, tied: Bool = true) throws -> LlamaModel {
    let w = try LlamaWeights(config: tinyConfig(tied: tied))
    w.randomize(seed: seed)
    return LlamaModel(weights: w)
}

final class ForwardTests: XCTestCase {
    func testFastForwardMatchesDoubleReferenceForRaggedBatches() throws {
        for tied in [true, false] {
            let model = try tinyModel(tied: tied)
            let c = model.config
            var rng = SeededRNG(seed: 11)
            for batch in 1 ... 4 {
                let seqs: [[Int32]] = (0 ..< batch).map { b in
                    (0 ..< [1, 5, 17, 9][b]).map { _ in Int32.random(in: 0 ..< Int32(c.vocabSize), using: &rng) }
                }
                let out = try model.forward(seqs, options: ForwardOptions(logits: .allTokens, captureBlocks: Array(0 ... c.layers)))
                for (s, seq) in seqs.enumerated() {
                    let ref = LlamaReference.forward(model.weights, tokens: seq.map(Int.init))
                    let r0 = out.sequenceStarts[s]
                    for b in 0 ... c.layers {
                        let got = Array(out.hidden[b]![(r0 * c.hiddenSize) ..< ((r0 + seq.count) * c.hiddenSize)])
                        let scale = ref.hidden[b].map(abs).max()!
                        assertWithinBound(got, ref.hidden[b], "hidden block \(b) seq \(s) batch \(batch) tied \(tied)",
                                          bound: { _ in 2e-5 * scale })
                    }
                    let got = Array(out.logits[(r0 * c.vocabSize) ..< ((r0 + seq.count) * c.vocabSize)])
                    let scale = ref.logits.map(abs).max()!
                    assertWithinBound(got, ref.logits, "logits seq \(s) batch \(batch)", bound: { _ in 1e-5 * scale })
                }
            }
        }
    }

    func testLastTokenLogitsAndEarlyStop() throws {
        let model = try tinyModel()
        let seqs: [[Int32]] = [[1, 2, 3], [4, 5, 6, 7, 8]]
        let all = try model.forward(seqs, options: ForwardOptions(logits: .allTokens))
        let last = try model.forward(seqs, options: ForwardOptions(logits: .lastToken))
        let V = model.config.vocabSize
        XCTAssertEqual(Array(last.logits[0 ..< V]), Array(all.logits[2 * V ..< 3 * V]))
        XCTAssertEqual(Array(last.logits[V ..< 2 * V]), Array(all.logits[7 * V ..< 8 * V]))
        let early = try model.forward(seqs, options: ForwardOptions(logits: .none, captureBlocks: [1]))
        let full = try model.forward(seqs, options: ForwardOptions(logits: .none, captureBlocks: [1, 2]))
        XCTAssertEqual(early.hidden[1]!, full.hidden[1]!)
        XCTAssertNil(early.hidden[2])
        XCTAssertTrue(early.logits.isEmpty)
    }

    func testSharedPrefixEqualsRunningItWithEverySequence() throws {
        let model = try tinyModel()
        let c = model.config
        var rng = SeededRNG(seed: 5)
        func tokens(_ n: Int) -> [Int32] { (0 ..< n).map { _ in Int32.random(in: 0 ..< Int32(c.vocabSize), using: &rng) } }
        let head = tokens(7)
        let tails = [tokens(1), tokens(5), tokens(12)]
        let prefix = try model.sharedPrefix(head, blocks: c.layers)
        let out = try model.forward(tails, options: ForwardOptions(logits: .allTokens, captureBlocks: [1, 2], prefix: prefix))
        XCTAssertEqual(out.sequenceStarts, [0, 1, 6, 18])
        for (s, tail) in tails.enumerated() {
            let ref = LlamaReference.forward(model.weights, tokens: (head + tail).map(Int.init))
            let r0 = out.sequenceStarts[s], P = head.count
            for b in [1, 2] {
                let got = Array(out.hidden[b]![(r0 * c.hiddenSize) ..< ((r0 + tail.count) * c.hiddenSize)])
                let want = Array(ref.hidden[b][(P * c.hiddenSize)...])
                let scale = want.map(abs).max()!
                assertWithinBound(got, want, "hidden block \(b) seq \(s)", bound: { _ in 2e-5 * scale })
            }
            let got = Array(out.logits[(r0 * c.vocabSize) ..< ((r0 + tail.count) * c.vocabSize)])
            let want = Array(ref.logits[(P * c.vocabSize)...])
            let scale = want.map(abs).max()!
            assertWithinBound(got, want, "logits seq \(s)", bound: { _ in 1e-5 * scale })
        }
        // A prefix run through fewer blocks, run by another model, or leaving no room, is refused.
        let short = try model.sharedPrefix(head, blocks: 1)
        XCTAssertNoThrow(try model.forward(tails, options: ForwardOptions(logits: .none, captureBlocks: [1], prefix: short)))
        XCTAssertThrowsError(try model.forward(tails, options: ForwardOptions(logits: .lastToken, prefix: short)))
        XCTAssertThrowsError(try model.forward(tails, options: ForwardOptions(prefix: try tinyModel().sharedPrefix(head, blocks: 2))))
        XCTAssertThrowsError(try model.forward([tokens(c.contextLength - 6)], options: ForwardOptions(prefix: prefix)))
        XCTAssertThrowsError(try model.sharedPrefix([], blocks: 1))
        XCTAssertThrowsError(try model.sharedPrefix(head, blocks: 0))
        XCTAssertThrowsError(try model.sharedPrefix([Int32(c.vocabSize)], blocks: 1))
    }

    func testForwardRejectsBadInput() throws {
        let model = try tinyModel()
        XCTAssertThrowsError(try model.forward([[]]))
        XCTAssertThrowsError(try model.forward([[1, 999]]))
        XCTAssertThrowsError(try model.forward([[Int32](repeating: 1, count: 65)]))
        XCTAssertThrowsError(try model.forward([[1]], options: ForwardOptions(captureBlocks: [3])))
    }

    func testKVCacheDecodingEqualsFullRecomputation() throws {
        let model = try tinyModel()
        let prompts: [[Int32]] = [[3, 1, 4, 1, 5], [9], [2, 6, 5, 3, 5, 8, 9, 7]]
        let generated = try model.generate(prompts, options: GenerationOptions(maxNewTokens: 12))
        for (s, prompt) in prompts.enumerated() {
            XCTAssertEqual(generated[s].count, 12)
            // Greedy continuation recomputed from scratch, one token at a time.
            var seq = prompt
            for t in 0 ..< 12 {
                let logits = try model.forward([seq]).logits
                var best = 0
                for i in 1 ..< logits.count where logits[i] > logits[best] { best = i }
                XCTAssertEqual(generated[s][t], Int32(best), "sequence \(s) step \(t)")
                seq.append(Int32(best))
            }
        }
        // The batch does not change a sequence's tokens, and sampling is reproducible by seed.
        let alone = try model.generate([prompts[2]], options: GenerationOptions(maxNewTokens: 12))
        XCTAssertEqual(alone[0], generated[2])
        let opts = GenerationOptions(maxNewTokens: 10, temperature: 0.9, topK: 20, topP: 0.9, seed: 5)
        XCTAssertEqual(try model.generate(prompts, options: opts), try model.generate(prompts, options: opts))
    }

    func testPromptsWithACommonOpeningGenerateAsAlone() throws {
        // The opening runs once (SharedPrefix) and is copied into every slot of the cache; one prompt
        // is the opening plus a single token, the shortest a prompt can be after it.
        let model = try tinyModel()
        let head: [Int32] = [7, 3, 3, 11, 2, 40, 8]
        let prompts = [head + [5], head + [9, 1, 4], head + [2, 6, 5, 3, 5, 8, 9, 7]]
        XCTAssertEqual(SharedPrefix.commonLength(prompts, limit: 7), 7)
        let together = try model.generate(prompts, options: GenerationOptions(maxNewTokens: 12))
        for (s, prompt) in prompts.enumerated() {
            XCTAssertEqual(try model.generate([prompt], options: GenerationOptions(maxNewTokens: 12))[0], together[s], "prompt \(s)")
        }
    }

    func testGenerationStopsAtStopToken() throws {
        let model = try tinyModel()
        let free = try model.generate([[7, 7]], options: GenerationOptions(maxNewTokens: 8))[0]
        let stop = free[3]
        let cut = try model.generate([[7, 7]], options: GenerationOptions(maxNewTokens: 8, stopTokens: [stop]))[0]
        XCTAssertEqual(cut, Array(free.prefix(through: free.firstIndex(of: stop)!)))
    }
}
