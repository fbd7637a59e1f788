import Foundation

/// The deterministic Gaussian test matrices of the randomized SVD: xoshiro256** seeded through
/// SplitMix64, normals by Box-Muller in Double. The stream depends only on the seed (never on
/// the worker count or the platform's `random`), so the same seed gives the same subspace.
public struct GaussianStream {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    private var spare: Double?

    public init(seed: UInt64) {
        var z = seed
        func splitmix(_ z: inout UInt64) -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s0 = splitmix(&z); s1 = splitmix(&z); s2 = splitmix(&z); s3 = splitmix(&z)
    }

    /// Next 64 random bits (xoshiro256**, Blackman & Vigna 2018).
    @inline(__always)
    public mutating func nextBits() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in (0, 1): 53 random bits, never 0.
    @inline(__always)
    public mutating func nextOpenUnit() -> Double {
        (Double(nextBits() >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal sample.
    public mutating func nextNormal() -> Double {
        if let s = spare { spare = nil; return s }
        let r = (-2 * Foundation.log(nextOpenUnit())).squareRoot(), t = 2 * Double.pi * nextOpenUnit()
        spare = r * Foundation.sin(t)
        return r * Foundation.cos(t)
    }

    /// Fills `count` floats with independent standard normals.
    public mutating func fill(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0 ..< count { p[i] = Float(nextNormal()) }
    }
}
