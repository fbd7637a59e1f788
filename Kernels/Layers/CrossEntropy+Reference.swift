import Foundation

extension CrossEntropy {
    /// Double reference: per-token losses of logits = hidden·weightᵀ (0 for ignored tokens).
    package static func lossesReference(hidden: [Double], weight: [Double], targets: [Int32], tokens: Int,
                                        vocab: Int, channels: Int, ignoreIndex: Int32 = defaultIgnoreIndex) -> [Double] {
        (0 ..< tokens).map { t in
            if targets[t] == ignoreIndex { return 0 }
            var logits = [Double](repeating: 0, count: vocab)
            for v in 0 ..< vocab {
                var s = 0.0
                for c in 0 ..< channels { s += hidden[t * channels + c] * weight[v * channels + c] }
                logits[v] = s
            }
            let m = logits.max()!
            let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
            return lse - logits[Int(targets[t])]
        }
    }

    /// Double reference of the reduced loss Σ_t w[t]·loss[t] (w = 1 when nil).
    package static func lossReference(hidden: [Double], weight: [Double], targets: [Int32], tokenWeights: [Double]?,
                                      tokens: Int, vocab: Int, channels: Int,
                                      ignoreIndex: Int32 = defaultIgnoreIndex) -> Double {
        let l = lossesReference(hidden: hidden, weight: weight, targets: targets, tokens: tokens, vocab: vocab,
                                channels: channels, ignoreIndex: ignoreIndex)
        return (0 ..< tokens).reduce(0.0) { $0 + (tokenWeights?[$1] ?? 1) * l[$1] }
    }
}
