import Foundation

/// Seeded sample orders shared by the methods' loops: epoch e of a stream is a Fisher–Yates
/// permutation drawn from (seed, stream, e), so runs are reproducible and resumable from a step count.
public enum SeededOrder {
    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A permutation of 0..<n for (seed, stream, epoch).
    public static func permutation(_ n: Int, seed: UInt64, stream: UInt64, epoch: Int) -> [Int] {
        var state = mix(seed ^ mix(stream &* 0x2545_F491_4F6C_DD1D ^ mix(UInt64(epoch) &+ 0x51_7CC1)))
        var p = Array(0 ..< n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                state &+= 0x9E37_79B9_7F4A_7C15
                let j = Int(mix(state) % UInt64(i + 1))
                p.swapAt(i, j)
            }
        }
        return p
    }

    /// A seed derived from (seed, a, b): dropout masks of one pass.
    public static func derive(_ seed: UInt64, _ a: Int, _ b: Int) -> UInt64 {
        mix(seed ^ mix(UInt64(a) << 20 ^ UInt64(b)))
    }
}

/// Walks a set in seeded epochs of batches of `batchSize` indices; an incomplete tail is skipped
/// (PyTorch `drop_last=True`), and `batchSize` larger than the set gives the whole set.
public struct BatchCursor: Sendable {
    public let count: Int, batchSize: Int, seed: UInt64, stream: UInt64
    public private(set) var epoch = 0
    public private(set) var position = 0
    private var order: [Int]

    public init(count: Int, batchSize: Int, seed: UInt64, stream: UInt64) {
        precondition(count > 0 && batchSize > 0, "BatchCursor: empty set or batch")
        self.count = count
        self.batchSize = min(batchSize, count)
        self.seed = seed
        self.stream = stream
        order = SeededOrder.permutation(count, seed: seed, stream: stream, epoch: 0)
    }

    /// Batches per epoch.
    public var batchesPerEpoch: Int { count / batchSize }

    /// The next batch of indices (starting a new epoch when the current one is used up).
    public mutating func next() -> [Int] {
        if position + batchSize > count {
            epoch += 1
            position = 0
            order = SeededOrder.permutation(count, seed: seed, stream: stream, epoch: epoch)
        }
        defer { position += batchSize }
        return Array(order[position ..< position + batchSize])
    }
}
