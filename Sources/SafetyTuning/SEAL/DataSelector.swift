import Foundation

/// SEAL's data selector (METHODS.md 4.4, 4.6): one logit per fine-tuning row, turned into sample
/// weights with mean about 1. Row m of the selector is row m of the encoded fine-tuning set; the
/// caller keeps the map back to input rows (stable ids, unlike the official code, pitfall 4.9.4).
public struct DataSelector: Sendable {
    public enum Parameterisation: String, Codable, Sendable, CaseIterable {
        /// w = N·softmax(omega); omega starts at 0.1 (code default).
        case softmax
        /// w = 2·sigmoid(omega); omega starts at −1e-4.
        case sigmoid
    }

    public let kind: Parameterisation
    public var logits: [Float]

    public init(count: Int, kind: Parameterisation = .softmax) {
        precondition(count > 0, "DataSelector: no rows")
        self.kind = kind
        logits = [Float](repeating: kind == .softmax ? 0.1 : -1e-4, count: count)
    }

    public var count: Int { logits.count }

    /// softmax(omega) in Float with max subtraction (sums in Double), or sigmoid(omega).
    public func probabilities() -> [Float] {
        switch kind {
        case .softmax:
            let m = logits.max()!
            var z = 0.0
            for x in logits { z += Double(expf(x - m)) }
            return logits.map { Float(Double(expf($0 - m)) / z) }
        case .sigmoid:
            return logits.map { 1 / (1 + expf(-$0)) }
        }
    }

    /// The sample weights w = N·softmax(omega) or 2·sigmoid(omega).
    public func weights() -> [Float] {
        let p = probabilities(), scale = kind == .softmax ? Float(count) : 2
        return p.map { $0 * scale }
    }

    /// Selector loss mean_k w[ids[k]]·losses[k] (losses are constants: stop-gradient).
    public func loss(ids: [Int], losses: [Double]) -> Double {
        let w = weights()
        return zip(ids, losses).reduce(0) { $0 + Double(w[$1.0]) * $1.1 } / Double(ids.count)
    }

    /// Dense gradient of `loss` with respect to every logit:
    /// softmax: (N/B)·s_m·(Σ_{k: ids[k] = m} l_k − Σ_k s_{ids[k]}·l_k), for every m (out-of-batch rows too);
    /// sigmoid: (2/B)·σ_m(1 − σ_m)·Σ_{k: ids[k] = m} l_k (in-batch rows only).
    public func gradient(ids: [Int], losses: [Double]) -> [Float] {
        precondition(ids.count == losses.count && !ids.isEmpty, "DataSelector.gradient: \(ids.count) ids, \(losses.count) losses")
        let B = Double(ids.count), N = Double(count)
        let p = probabilities()
        var inBatch = [Double](repeating: 0, count: count)
        for (id, l) in zip(ids, losses) { inBatch[id] += l }
        switch kind {
        case .softmax:
            var mix = 0.0
            for (id, l) in zip(ids, losses) { mix += Double(p[id]) * l }
            return (0 ..< count).map { m in Float(N / B * Double(p[m]) * (inBatch[m] - mix)) }
        case .sigmoid:
            return (0 ..< count).map { m in Float(2 / B * Double(p[m]) * (1 - Double(p[m])) * inBatch[m]) }
        }
    }

    /// Row indices ordered from the highest logit down (ties: lower index first).
    public func ranking() -> [Int] {
        logits.indices.sorted { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
    }

    /// The floor(fraction·N) rows with the largest logits (as `ranking`), in ascending row order.
    public func keep(fraction: Double) throws -> [Int] {
        guard fraction > 0 && fraction <= 1 else { throw DatasetError("keep fraction \(fraction) must be in (0, 1]") }
        let k = Int((fraction * Double(count)).rounded(.down))
        guard k >= 1 else { throw DatasetError("keep fraction \(fraction) of \(count) rows keeps no row") }
        return Array(ranking().prefix(k)).sorted()
    }

    /// min, mean, max and standard deviation of the logits.
    public var stats: [String: Double] {
        let d = logits.map(Double.init), n = Double(d.count)
        let mean = d.reduce(0, +) / n
        let sd = (d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
        return ["min": d.min()!, "mean": mean, "max": d.max()!, "std": sd]
    }
}
