import Foundation
import Kernels

/// One training example: token ids and which of them the loss predicts.
///
/// `lossMask[t] == true` means token t is a target: the loss includes −log p(tokens[t] | tokens[<t]).
/// `lossMask[0]` is therefore never used (nothing predicts the first token). A data loader marks
/// the response tokens (and the end-of-turn token) of a rendered chat this way.
public struct TrainingSample: Codable, Equatable, Sendable {
    public var tokens: [Int32]
    public var lossMask: [Bool]

    public init(tokens: [Int32], lossMask: [Bool]) {
        self.tokens = tokens
        self.lossMask = lossMask
    }

    /// A prompt followed by a response, the loss on the response tokens only.
    public init(prompt: [Int32], response: [Int32]) {
        tokens = prompt + response
        lossMask = [Bool](repeating: false, count: prompt.count) + [Bool](repeating: true, count: response.count)
    }

    /// Number of tokens the loss counts.
    public var targetCount: Int { lossMask.dropFirst().filter { $0 }.count }
}

/// Samples packed back to back without padding (sequence s owns rows
/// `sequenceStarts[s] ..< sequenceStarts[s + 1]`), with the shifted targets of each row.
public struct TrainingBatch: Sendable {
    public let sequences: [[Int32]]
    public let sequenceStarts: [Int]
    /// Row t of sequence s predicts `tokens[t + 1]` when `lossMask[t + 1]`, else carries
    /// `CrossEntropy.defaultIgnoreIndex`; the last row of every sequence is ignored.
    public let targets: [Int32]
    /// Position of every row inside its sequence.
    public let positions: [Int32]
    public let ids: [Int32]

    public init(_ samples: [TrainingSample], config: LlamaConfig) throws {
        guard !samples.isEmpty else { throw LlamaError.invalidInput("empty training batch") }
        var starts = [0], targets: [Int32] = [], positions: [Int32] = []
        for (s, x) in samples.enumerated() {
            guard !x.tokens.isEmpty else { throw LlamaError.invalidInput("sample \(s) has no tokens") }
            guard x.lossMask.count == x.tokens.count else {
                throw LlamaError.invalidInput("sample \(s) has \(x.tokens.count) tokens but \(x.lossMask.count) loss-mask entries")
            }
            guard x.tokens.count <= config.contextLength else {
                throw LlamaError.invalidInput("sample \(s) has \(x.tokens.count) tokens, more than the context length \(config.contextLength)")
            }
            if let bad = x.tokens.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw LlamaError.invalidInput("sample \(s) token \(bad) has id \(x.tokens[bad]) outside 0..<\(config.vocabSize)")
            }
            let T = x.tokens.count
            for t in 0 ..< T {
                positions.append(Int32(t))
                targets.append(t + 1 < T && x.lossMask[t + 1] ? x.tokens[t + 1] : CrossEntropy.defaultIgnoreIndex)
            }
            starts.append(starts.last! + T)
        }
        sequences = samples.map(\.tokens)
        sequenceStarts = starts
        self.targets = targets
        self.positions = positions
        ids = sequences.flatMap { $0 }
    }

    public var tokenCount: Int { sequenceStarts.last! }
    public var sampleCount: Int { sequences.count }
    public var sequenceLengths: [Int] { sequences.map(\.count) }
    /// Rows that carry a target.
    public var targetCount: Int { targets.filter { $0 != CrossEntropy.defaultIgnoreIndex }.count }

    /// Σ of per-token losses over each sample's target rows (−log-likelihood of its response), in Double.
    public func sampleSums(_ losses: [Float]) -> [Double] {
        precondition(losses.count == tokenCount, "TrainingBatch.sampleSums: \(losses.count) losses for \(tokenCount) tokens")
        return (0 ..< sampleCount).map { s in
            var sum = 0.0
            for t in sequenceStarts[s] ..< sequenceStarts[s + 1] where targets[t] != CrossEntropy.defaultIgnoreIndex {
                sum += Double(losses[t])
            }
            return sum
        }
    }

    /// Mean per-token loss over each sample's target rows (0 for a sample without targets).
    public func sampleMeans(_ losses: [Float]) -> [Double] {
        let sums = sampleSums(losses)
        return (0 ..< sampleCount).map { s in
            let k = (sequenceStarts[s] ..< sequenceStarts[s + 1]).filter { targets[$0] != CrossEntropy.defaultIgnoreIndex }.count
            return k > 0 ? sums[s] / Double(k) : 0
        }
    }

    /// Token weights of a standard reduction (mean over the batch's targets, mean of per-sequence
    /// means, or sum).
    public func tokenWeights(_ reduction: CrossEntropy.Reduction) -> [Float] {
        targets.withUnsafeBufferPointer {
            CrossEntropy.tokenWeights(targets: $0.baseAddress!, sequenceLengths: sequenceLengths, reduction: reduction)
        }
    }

    /// Token weights of Σ_s sampleWeights[s]·(mean response NLL of sample s): each target row of
    /// sample s weighs sampleWeights[s] / (its target count). This is SEAL's weighted loss (with
    /// sampleWeights = w_j / B) and the per-sample weighting any method needs.
    public func tokenWeights(sampleWeights: [Float]) -> [Float] {
        precondition(sampleWeights.count == sampleCount, "TrainingBatch.tokenWeights: \(sampleWeights.count) weights for \(sampleCount) samples")
        var w = [Float](repeating: 0, count: tokenCount)
        for s in 0 ..< sampleCount {
            let rows = sequenceStarts[s] ..< sequenceStarts[s + 1]
            let k = rows.filter { targets[$0] != CrossEntropy.defaultIgnoreIndex }.count
            if k == 0 { continue }
            let value = Float(Double(sampleWeights[s]) / Double(k))
            for t in rows where targets[t] != CrossEntropy.defaultIgnoreIndex { w[t] = value }
        }
        return w
    }

    /// Token weights of Σ_s sampleWeights[s]·(summed response NLL of sample s) = −Σ_s sampleWeights[s]·S_s,
    /// with S_s the sequence log-likelihood (SAP's contrastive loss uses dℓ/dS_s as −sampleWeights).
    public func tokenWeights(sumWeights sampleWeights: [Float]) -> [Float] {
        precondition(sampleWeights.count == sampleCount, "TrainingBatch.tokenWeights: \(sampleWeights.count) weights for \(sampleCount) samples")
        var w = [Float](repeating: 0, count: tokenCount)
        for s in 0 ..< sampleCount {
            for t in sequenceStarts[s] ..< sequenceStarts[s + 1] where targets[t] != CrossEntropy.defaultIgnoreIndex {
                w[t] = sampleWeights[s]
            }
        }
        return w
    }
}
