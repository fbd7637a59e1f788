import Kernels
import Llama
import TestSupport
import XCTest

/// A ragged two-sample batch with partial loss masks (the first has a prompt, the second trains on all).
func tinyBatch(_ c: LlamaConfig, seed: UInt64 = 21, lengths: [Int] = [6, 9]) throws -> TrainingBatch {
    var rng = SeededRNG(seed: seed)
    let samples = lengths.enumerated().map { s, n in
        TrainingSample(tokens: (0 ..< n).map { _ in Int32.random(in: 0 ..< Int32(c.vocabSize), using: &rng) },
                       lossMask: (0 ..< n).map { t in s == 1 || t >= 2 })
    }
    return try TrainingBatch(samples, config: c)
}

/// Random positive weights on target rows, zero elsewhere (a random token-weighted loss).
func randomTokenWeights(_ batch: TrainingBatch, seed: UInt64) -> [Float] {
    var rng = SeededRNG(seed: seed)
    return batch.targets.map { $0 == CrossEntropy.defaultIgnoreIndex ? 0 : Float.random(in: 0.2 ... 1, using: &rng) }
}

/// Fills an adapter's A and B with seeded values (B nonzero so that every A has a gradient).
func randomizeAdapter(_ ad: LoRAAdapter, seed: UInt64, scale: Float = 0.3) {
    var rng = SeededRNG(seed: seed)
    let p = ad.buffer.valuePointer
    for s in ad.slots {
        for i in 0 ..< ad.config.rank * s.inDim { p[s.a + i] = Float.random(in: -scale ... scale, using: &rng) }
        for i in 0 ..< ad.config.rank * s.outDim { p[s.b + i] = Float.random(in: -scale ... scale, using: &rng) }
    }
}

final class TrainingGradientTests: XCTestCase {
    /// Central differences of the Double reference loss at the sampled flat indices of one buffer.
    func numeric(_ w: LlamaWeights, _ batch: TrainingBatch, _ weights: [Float], _ tr: LlamaReference.Trainables,
                 indices: [Int], probes: Bool, h: Double = 1e-5) -> [Double] {
        let wd = weights.map(Double.init)
        return indices.map { i in
            var plus = tr, minus = tr
            if probes { plus.probeValues[i] += h; minus.probeValues[i] -= h } else { plus.lora[i] += h; minus.lora[i] -= h }
            let fp = LlamaReference.weightedLoss(w, batch: batch, tokenWeights: wd, trainables: plus)
            let fm = LlamaReference.weightedLoss(w, batch: batch, tokenWeights: wd, trainables: minus)
            return (fp - fm) / (2 * h)
        }
    }

    func checkGradients(tied: Bool, dropout: Float, targets: [LoRATarget], trainNorms: Bool, probeBlocks: [Int]) throws {
        let model = try tinyModel(seed: 5, tied: tied)
        let c = model.config
        let ad = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 3, alpha: 6, dropout: dropout, targets: targets,
                                                                         trainNorms: trainNorms), seed: 9)
        randomizeAdapter(ad, seed: 10)
        let probes = try ProbeSet(blocks: probeBlocks, config: c)
        var rng = SeededRNG(seed: 12)
        for i in 0 ..< probes.buffer.count { probes.buffer.values[i] = Float.random(in: -0.5 ... 0.5, using: &rng) }
        let engine = TrainingEngine(model: model, adapter: ad, probes: probes)
        engine.dropoutSeed = 77
        let batch = try tinyBatch(c)
        let weights = randomTokenWeights(batch, seed: 13)
        engine.zeroGradients()
        let loss = engine.lossAndGradients(batch, tokenWeights: weights)
        let tr = LlamaReference.Trainables(adapter: ad, probes: probes, dropoutSeed: dropout > 0 ? 77 : nil)
        let refLoss = LlamaReference.weightedLoss(model.weights, batch: batch, tokenWeights: weights.map(Double.init), trainables: tr)
        XCTAssertEqual(loss, refLoss, accuracy: 1e-5 * abs(refLoss), "loss")
        let label = "tied \(tied) dropout \(dropout)"

        func check(_ name: String, _ indices: [Int], probes isProbe: Bool) {
            let g = isProbe ? probes.buffer.gradients : ad.buffer.gradients
            let analytic = indices.map { g[$0] }
            let num = numeric(model.weights, batch, weights, tr, indices: indices, probes: isProbe)
            let scale = num.map(abs).max()!
            XCTAssertGreaterThan(scale, 1e-6, "\(name): gradient is zero, the check would be vacuous")
            // |a − n| / (|a| + |n|) <= 5e-4, i.e. about 1e-3 relative (observed <= 5e-5; a 0.5% error fails).
            assertGradientsMatch(analytic: analytic, numeric: num, "\(name) \(label)", rtol: 5e-4, floor: 1e-2 * scale)
        }
        var pick = SeededRNG(seed: 14)
        for s in ad.slots {
            let nA = ad.config.rank * s.inDim, nB = ad.config.rank * s.outDim
            check("layer \(s.layer) \(s.target) A", (0 ..< 4).map { _ in s.a + Int.random(in: 0 ..< nA, using: &pick) }, probes: false)
            check("layer \(s.layer) \(s.target) B", (0 ..< 4).map { _ in s.b + Int.random(in: 0 ..< nB, using: &pick) }, probes: false)
        }
        if trainNorms {
            for l in 0 ..< c.layers {
                check("attn norm \(l)", (0 ..< 4).map { _ in ad.attnNormOffsets![l] + Int.random(in: 0 ..< c.hiddenSize, using: &pick) }, probes: false)
                check("ffn norm \(l)", (0 ..< 4).map { _ in ad.ffnNormOffsets![l] + Int.random(in: 0 ..< c.hiddenSize, using: &pick) }, probes: false)
            }
            check("output norm", (0 ..< 4).map { _ in ad.outputNormOffset! + Int.random(in: 0 ..< c.hiddenSize, using: &pick) }, probes: false)
        }
        for (i, b) in probes.blocks.enumerated() {
            check("probe after block \(b)", (0 ..< 5).map { _ in i * c.hiddenSize + Int.random(in: 0 ..< c.hiddenSize, using: &pick) }, probes: true)
        }
    }

    func testEveryTrainableTensorMatchesFiniteDifferencesOfDoubleReference() throws {
        try checkGradients(tied: true, dropout: 0, targets: LoRATarget.allCases, trainNorms: true, probeBlocks: [0, 1, 2])
        try checkGradients(tied: false, dropout: 0, targets: LoRATarget.allCases, trainNorms: true, probeBlocks: [1])
    }

    func testDropoutGradientsMatchFiniteDifferencesWithTheSameMasks() throws {
        try checkGradients(tied: true, dropout: 0.3, targets: [.q, .v, .o, .down], trainNorms: false, probeBlocks: [2])
    }

    /// Gradients (adapter and probes) and losses for a fresh engine at the given settings.
    func run(workers: Int, recompute: Bool, probeOnly: Bool = false) throws -> (losses: [Float], lora: [Float], probes: [Float]) {
        let model = try tinyModel(seed: 5)
        let ad = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 4, alpha: 8, dropout: 0.1,
                                                                         targets: LoRATarget.allCases, trainNorms: true), seed: 2)
        randomizeAdapter(ad, seed: 3)
        let probes = try ProbeSet(blocks: [1], config: model.config)
        probes.buffer.values.update(repeating: 0.1)
        let engine = TrainingEngine(model: model, adapter: ad, probes: probes, recompute: recompute, workers: workers)
        engine.dropoutSeed = 5
        let batch = try tinyBatch(model.config, lengths: [64, 33, 1, 50])
        let weights = batch.tokenWeights(.meanPerBatch)
        let losses = engine.forward(batch, tokenWeights: weights)
        engine.backward(weightGradients: !probeOnly)
        return (losses, ad.buffer.gradientVector(), probes.buffer.gradientVector())
    }

    func testGradientsAreBitwiseIdenticalForOneAndTwoWorkersAndWithRecomputation() throws {
        let one = try run(workers: 1, recompute: false)
        let two = try run(workers: 2, recompute: false)
        let re = try run(workers: 2, recompute: true)
        XCTAssertEqual(one.losses, two.losses)
        XCTAssertEqual(one.lora, two.lora)
        XCTAssertEqual(one.probes, two.probes)
        XCTAssertEqual(one.losses, re.losses)
        XCTAssertEqual(one.lora, re.lora)
        XCTAssertEqual(one.probes, re.probes)
        XCTAssertTrue(one.lora.contains { $0 != 0 })
    }

    func testProbeOnlyBackwardSkipsWeightGradientsAndGivesTheSameProbeGradient() throws {
        let full = try run(workers: 2, recompute: false)
        let probeOnly = try run(workers: 2, recompute: false, probeOnly: true)
        XCTAssertEqual(full.probes, probeOnly.probes)
        XCTAssertTrue(probeOnly.lora.allSatisfy { $0 == 0 }, "probe-only backward touched adapter gradients")
    }

    func testFreshAdapterEqualsBaseModel() throws {
        let model = try tinyModel(seed: 4)
        let ad = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 4, alpha: 8, targets: LoRATarget.allCases,
                                                                         trainNorms: true), seed: 1)
        for s in ad.slots { XCTAssertTrue(UnsafeBufferPointer(start: ad.b(s), count: 4 * s.outDim).allSatisfy { $0 == 0 }) }
        // PEFT init: A uniform within ±1/√in and not degenerate.
        let s0 = ad.slots[0], bound = 1 / Float(s0.inDim).squareRoot()
        let a0 = Array(UnsafeBufferPointer(start: ad.a(s0), count: 4 * s0.inDim))
        XCTAssertTrue(a0.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(a0.map(abs).max()!, 0.8 * bound)
        let batch = try tinyBatch(model.config)
        let withAdapter = TrainingEngine(model: model, adapter: ad).losses(batch)
        let plain = TrainingEngine(model: model).losses(batch)
        XCTAssertEqual(withAdapter, plain)
        let ref = LlamaReference.losses(model.weights, batch: batch, trainables: .init(adapter: nil, probes: nil))
        assertWithinBound(withAdapter, ref, "losses vs Double reference", bound: { _ in 1e-5 * (ref.map(abs).max()! + 1) })
    }

    func testMergedAdapterForwardEqualsAdapterForward() throws {
        let model = try tinyModel(seed: 4, tied: false)
        let ad = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 4, alpha: 8, targets: LoRATarget.allCases,
                                                                         trainNorms: true), seed: 1)
        randomizeAdapter(ad, seed: 8, scale: 0.2)
        for i in ad.attnNormOffsets![0] ..< ad.attnNormOffsets![0] + 32 { ad.buffer.values[i] *= 1.1 }
        let batch = try tinyBatch(model.config)
        let engine = TrainingEngine(model: model, adapter: ad)
        let adapterLosses = engine.losses(batch)
        let merged = LlamaModel(weights: try ad.merged(into: model.weights))
        let mergedLosses = TrainingEngine(model: merged).losses(batch)
        let ref = LlamaReference.losses(model.weights, batch: batch, trainables: .init(adapter: ad, probes: nil))
        assertWithinBound(adapterLosses, ref, "adapter losses vs Double reference", bound: { _ in 2e-5 * (ref.map(abs).max()! + 1) })
        assertWithinBound(mergedLosses, ref, "merged losses vs Double reference", bound: { _ in 2e-5 * (ref.map(abs).max()! + 1) })
        // And the merged model runs on the inference engine with the same logits as the reference.
        let logits = try merged.forward([batch.sequences[1]], options: ForwardOptions(logits: .allTokens)).logits
        let refLogits = LlamaReference.forward(model.weights, tokens: batch.sequences[1].map(Int.init),
                                               trainables: .init(adapter: ad, probes: nil))
        assertWithinBound(logits, refLogits, "merged logits", bound: { _ in 1e-5 * refLogits.map(abs).max()! })
    }

    func testPerturbRestoreAndProbeHooksLeaveTheModelBitIdentical() throws {
        let model = try tinyModel(seed: 6)
        let baseCopy = Array(model.weights.arena)
        let ad = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), seed: 1)
        randomizeAdapter(ad, seed: 2)
        let engine = TrainingEngine(model: model, adapter: ad)
        let batch = try tinyBatch(model.config)
        let before = engine.losses(batch)
        let theta = ad.buffer.snapshot()
        // SAP's perturbation: theta += eps·g_hat, a pass, then restore by copy.
        engine.zeroGradients()
        engine.lossAndGradients(batch, tokenWeights: batch.tokenWeights(.meanPerBatch))
        let g = ad.buffer.gradientVector()
        let gNorm = ad.buffer.gradientNorm()
        XCTAssertGreaterThan(gNorm, 0)
        ad.buffer.addScaled(Float(1e-2 * ad.buffer.norm() / gNorm), direction: g)
        XCTAssertNotEqual(engine.losses(batch), before)
        engine.probes = try ProbeSet(blocks: [1, 2], config: model.config)
        engine.probes!.buffer.values.update(repeating: 0.05)
        engine.forward(batch)
        engine.backward(tokenWeights: batch.tokenWeights(.meanPerBatch), weightGradients: false)
        XCTAssertTrue(engine.probes!.buffer.gradients.contains { $0 != 0 })
        ad.buffer.restore(theta)
        engine.probes = nil
        XCTAssertEqual(ad.buffer.snapshot(), theta)
        XCTAssertEqual(engine.losses(batch), before)
        XCTAssertEqual(Array(model.weights.arena), baseCopy, "base weights changed")
    }

    func testPerSampleNLLAndSequenceLogLikelihoodMatchReference() throws {
        let model = try tinyModel(seed: 7)
        let engine = TrainingEngine(model: model)
        let batch = try tinyBatch(model.config, lengths: [5, 8, 3])
        let ref = LlamaReference.losses(model.weights, batch: batch, trainables: .init(adapter: nil, probes: nil))
        let means = engine.sampleMeanNLL(batch), logp = engine.sequenceLogLikelihoods(batch)
        for s in 0 ..< batch.sampleCount {
            let rows = (batch.sequenceStarts[s] ..< batch.sequenceStarts[s + 1]).filter { batch.targets[$0] != CrossEntropy.defaultIgnoreIndex }
            let sum = rows.reduce(0.0) { $0 + ref[$1] }
            XCTAssertEqual(means[s], sum / Double(rows.count), accuracy: 1e-5 * abs(sum))
            XCTAssertEqual(logp[s], -sum, accuracy: 1e-5 * abs(sum))
        }
        // Sample-weighted token weights reproduce Σ_s w_s·mean_s.
        let sw: [Float] = [0.5, 2, 1.25]
        let tw = batch.tokenWeights(sampleWeights: sw)
        let l = engine.losses(batch)
        let weighted = zip(l, tw).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        XCTAssertEqual(weighted, zip(sw, means).reduce(0.0) { $0 + Double($1.0) * $1.1 }, accuracy: 1e-5)
    }

    /// SAP's contrastive loss ℓ = mean_i −log σ((S_safe,i − S_harm,i)/T) through the hooks: one forward,
    /// token weights −dℓ/dS from the losses, one backward; checked against FD of the Double reference.
    func testContrastiveSequenceLossThroughHooksMatchesFiniteDifferences() throws {
        let model = try tinyModel(seed: 8)
        let c = model.config
        let ad = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), seed: 3)
        randomizeAdapter(ad, seed: 4)
        let probes = try ProbeSet(blocks: [1], config: c)
        probes.buffer.values.update(repeating: 0.2)
        var rng = SeededRNG(seed: 5)
        func tokens(_ n: Int) -> [Int32] { (0 ..< n).map { _ in Int32.random(in: 0 ..< Int32(c.vocabSize), using: &rng) } }
        let prompts = [tokens(3), tokens(4)]
        let samples = prompts.flatMap { p in [TrainingSample(prompt: p, response: tokens(3)), TrainingSample(prompt: p, response: tokens(4))] }
        let batch = try TrainingBatch(samples, config: c)
        let T = 0.7, pairs = 2
        func contrastive(_ S: [Double]) -> (loss: Double, dS: [Double]) {
            var loss = 0.0, dS = [Double](repeating: 0, count: S.count)
            for i in 0 ..< pairs {
                let z = (S[2 * i] - S[2 * i + 1]) / T, sig = 1 / (1 + exp(-z))
                loss += -log(sig) / Double(pairs)
                dS[2 * i] = -(1 - sig) / T / Double(pairs)
                dS[2 * i + 1] = (1 - sig) / T / Double(pairs)
            }
            return (loss, dS)
        }
        let engine = TrainingEngine(model: model, adapter: ad, probes: probes)
        let losses = engine.forward(batch)
        let S = batch.sampleSums(losses).map { -$0 }
        XCTAssertEqual(S, engine.sequenceLogLikelihoods(batch))
        engine.forward(batch)
        engine.backward(tokenWeights: batch.tokenWeights(sumWeights: contrastive(S).dS.map { Float(-$0) }))
        let tr = LlamaReference.Trainables(adapter: ad, probes: probes)
        func refLoss(_ t: LlamaReference.Trainables) -> Double {
            let l = LlamaReference.losses(model.weights, batch: batch, trainables: t)
            let S = (0 ..< batch.sampleCount).map { s in
                -(batch.sequenceStarts[s] ..< batch.sequenceStarts[s + 1]).reduce(0.0) { $0 + l[$1] }
            }
            return contrastive(S).loss
        }
        var pick = SeededRNG(seed: 6)
        let idx = (0 ..< 12).map { _ in Int.random(in: 0 ..< ad.parameterCount, using: &pick) }
        let h = 1e-5
        let num = idx.map { i -> Double in
            var p = tr, m = tr
            p.lora[i] += h; m.lora[i] -= h
            return (refLoss(p) - refLoss(m)) / (2 * h)
        }
        let scale = num.map(abs).max()!
        XCTAssertGreaterThan(scale, 1e-6)
        assertGradientsMatch(analytic: idx.map { ad.buffer.gradients[$0] }, numeric: num, "contrastive LoRA gradient",
                             rtol: 5e-4, floor: 1e-2 * scale)
        let pIdx = [0, 7, 19, 31]
        let pNum = pIdx.map { i -> Double in
            var p = tr, m = tr
            p.probeValues[i] += h; m.probeValues[i] -= h
            return (refLoss(p) - refLoss(m)) / (2 * h)
        }
        assertGradientsMatch(analytic: pIdx.map { probes.buffer.gradients[$0] }, numeric: pNum, "contrastive probe gradient",
                             rtol: 5e-4, floor: 1e-2 * pNum.map(abs).max()!)
    }

    func testRowPermutationHelpersAreInverseAndMatchTheRoPEPairing() {
        let D = 8
        for r in 0 ..< 3 * D {
            XCTAssertEqual(LoRAAdapter.huggingFaceToEngineRow(LoRAAdapter.engineToHuggingFaceRow(r, headDim: D), headDim: D), r)
        }
        // Engine row (h, 2i + j) is HF row (h, j·D/2 + i).
        XCTAssertEqual(LoRAAdapter.engineToHuggingFaceRow(8 + 2 * 3 + 1, headDim: D), 8 + 4 + 3)
        XCTAssertEqual(LoRAAdapter.engineToHuggingFaceRow(2 * 2, headDim: D), 2)
        let m = (0 ..< 2 * D * 3).map(Float.init)
        let hf = LoRAAdapter.permuteRows(m, rowLength: 3, headDim: D, toHuggingFace: true)
        XCTAssertEqual(LoRAAdapter.permuteRows(hf, rowLength: 3, headDim: D, toHuggingFace: false), m)
        XCTAssertEqual(Array(hf[3 ..< 6]), Array(m[6 ..< 9]))  // HF row 1 = engine row 2 (pair 1, first half)
    }
}
