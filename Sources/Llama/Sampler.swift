import Foundation

/// Token choice from a row of logits: greedy, or temperature with top-k / top-p, seeded.
public struct Sampler: Sendable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    private var state: UInt64

    /// `temperature == 0` is greedy (argmax, lowest id on ties). `topK <= 0` and `topP >= 1` disable those filters.
    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        state = seed &+ 0x9E37_79B9_7F4A_7C15
    }

    mutating func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    public mutating func sample(_ logits: UnsafePointer<Float>, count: Int) -> Int32 {
        var best = 0
        for i in 1 ..< count where logits[i] > logits[best] { best = i }
        if temperature <= 0 { return Int32(best) }
        // Candidates sorted by logit; keep top-k, then the smallest prefix with mass >= top-p.
        var order = Array(0 ..< count)
        let k = topK > 0 ? min(topK, count) : count
        if k < count {
            order = Array(order.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(k))
        } else {
            order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        }
        let m = Double(logits[best])
        var probs = order.map { exp((Double(logits[$0]) - m) / Double(temperature)) }
        var total = probs.reduce(0, +)
        if topP < 1 {
            var mass = 0.0, keep = 0
            for p in probs { mass += p; keep += 1; if mass >= Double(topP) * total { break } }
            probs = Array(probs.prefix(keep))
            total = probs.reduce(0, +)
        }
        var r = uniform() * total
        for (i, p) in probs.enumerated() {
            r -= p
            if r < 0 { return Int32(order[i]) }
        }
        return Int32(order[probs.count - 1])
    }
}
