import Foundation
import Llama

/// Negative log-likelihood of reference answers under a model, through the training engine's
/// per-token losses (the same rendering and loss mask as fine-tuning: response tokens through the
/// end-of-turn token).
public enum ResponseNLL {
    public struct Result: Sendable {
        /// Mean NLL per response token of each sample (nil for samples left out: the prompt alone fills `maxTokens`).
        public var perSample: [Double?]
        /// Σ NLL and number of response tokens over all scored samples.
        public var totalNLL: Double
        public var tokens: Int
        public var truncated: Int
        /// Token-weighted mean NLL (nats per token) and its perplexity.
        public var meanNLL: Double { tokens == 0 ? .nan : totalNLL / Double(tokens) }
        public var perplexity: Double { exp(meanNLL) }
    }

    public static func score(_ samples: [Sample], model m: LoadedModel, maxTokens: Int = 1024, batchTokens: Int = 2048,
                             workers: Int? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let set = SampleEncoding.trainingSet(samples, with: m, maxTokens: maxTokens)
        let engine = TrainingEngine(model: m.model, workers: workers)
        engine.training = false
        var perSample = [Double?](repeating: nil, count: samples.count)
        var total = 0.0, tokens = 0, i = 0
        while i < set.samples.count {
            var j = i, n = 0
            while j < set.samples.count && (j == i || n + set.samples[j].tokens.count <= batchTokens) { n += set.samples[j].tokens.count; j += 1 }
            let batch = try TrainingBatch(Array(set.samples[i ..< j]), config: m.model.config)
            let losses = engine.losses(batch)
            let sums = batch.sampleSums(losses)
            for (k, s) in sums.enumerated() {
                let count = set.samples[i + k].targetCount
                perSample[set.sourceIndex[i + k]] = count > 0 ? s / Double(count) : nil
                total += s; tokens += count
            }
            i = j
            progress?(i, set.samples.count)
        }
        return Result(perSample: perSample, totalNLL: total, tokens: tokens, truncated: set.truncated)
    }
}
