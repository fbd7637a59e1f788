/// Vectorised transcendental functions for the kernels (softmax, SiLU, cross-entropy, attention).
///
/// `vexp` follows the classic Cephes `expf` scheme: x = n·ln2 + r with n = round(x·log2 e) and
/// |r| <= ln2/2 (ln2 split into a high and low part, so r is exact to a few ulps), exp(r) from a
/// degree-6 minimax polynomial, and 2^n assembled directly in the exponent bits.
///
/// Accuracy: max relative error 2.5e-7 (about 2 ulp) against `Foundation.exp` in Double over
/// [-87, 88] (test: `FastMathTests.testVExpRelativeErrorWithinDocumentedBound`).
/// Range: inputs below -87 (including -infinity) return exactly 0; inputs above 88 saturate
/// at exp(88) ≈ 1.65e38. NaN propagates as NaN. Softmax-style callers subtract the row max,
/// so their arguments are always <= 0.
public enum FastMath {
    /// The documented bound on |vexp(x) - exp(x)| / exp(x) for x in [-87, 88].
    public static let expMaxRelativeError = 2.5e-7
}


/// e^x for every lane of `x` (see `FastMath` for accuracy and range).
/// `@_transparent` because `@inline(__always)` left it an out-of-line call whose 16-lane
/// argument crosses the call in four xmm registers.
@_transparent
public func vexp(_ x: VFloat) -> VFloat {
    let lo = VFloat(repeating: -87), hi = VFloat(repeating: 88)
    let underflow = x .< lo
    var xc = x.replacing(with: hi, where: x .> hi)
    xc = xc.replacing(with: lo, where: underflow)
    // n = round(x·log2 e) through the 1.5·2^23 trick: adding it rounds to nearest-even and
    // leaves n in the low mantissa bits.
    let magic = VFloat(repeating: 12_582_912)
    var t = magic
    fmadd(&t, xc, VFloat(repeating: 1.442_695_04))
    let n = t - magic
    // r = x - n·ln2, with ln2 = C1 + C2 (C1 has few mantissa bits so n·C1 is exact).
    var r = xc
    fmadd(&r, n, VFloat(repeating: -0.693_359_375))
    fmadd(&r, n, VFloat(repeating: 2.121_944_4e-4))
    // exp(r) ≈ 1 + r + r²·P(r)
    var p = VFloat(repeating: 1.987_569_150_0e-4)
    var q = VFloat(repeating: 1.398_199_950_7e-3); fmadd(&q, p, r); p = q
    q = VFloat(repeating: 8.333_451_907_3e-3); fmadd(&q, p, r); p = q
    q = VFloat(repeating: 4.166_579_589_4e-2); fmadd(&q, p, r); p = q
    q = VFloat(repeating: 1.666_666_545_9e-1); fmadd(&q, p, r); p = q
    q = VFloat(repeating: 5.000_000_120_1e-1); fmadd(&q, p, r); p = q
    var y = r + VFloat(repeating: 1)
    fmadd(&y, p, r * r)
    // 2^n: n + 127 in the exponent field.
    let tbits = unsafeBitCast(t, to: VInt32.self)
    let ebits = (tbits &- VInt32(repeating: 0x4B40_0000) &+ VInt32(repeating: 127)) &<< 23
    let scale = unsafeBitCast(ebits, to: VFloat.self)
    let result = y * scale
    return result.replacing(with: 0, where: underflow)
}

/// e^x for the first `count` (< vLanes) elements of `p`, through the same polynomial as `vexp`
/// so that vector bodies and scalar tails agree; writes `count` results to `out`.
@inline(__always)
public func vexpPartial(_ p: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
    var v = VFloat(repeating: -.infinity)
    for i in 0 ..< count { v[i] = p[i] }
    let e = vexp(v)
    for i in 0 ..< count { out[i] = e[i] }
}

/// Scalar e^x through `vexp` (same accuracy), for per-row scalars in kernels.
@inline(__always)
public func fastExp(_ x: Float) -> Float {
    vexp(VFloat(repeating: x))[0]
}

/// Lane-wise maximum. The standard library's `pointwiseMax` applies `Swift.max` lane by lane
/// (NaN rules) and stays a scalar loop inside reductions; a compare-and-select is one `vmaxps`-like
/// blend. NaN in `b` is ignored, NaN in `a` is kept.
@_transparent
public func vmax(_ a: VFloat, _ b: VFloat) -> VFloat { a.replacing(with: b, where: b .> a) }

// MARK: - Base-2 exponential (attention keeps scores in log2 units)
//
// libm's `exp2f` is one call per lane; this stays in registers. Accuracy (checked by
// `FastExpTests`): relative error at most 4e-7 (a few ulp) for x in [-126, 127].

/// 2^x per lane: round x to n, evaluate 2^f (f = x - n in [-0.5, 0.5]) by its degree-7 Taylor
/// polynomial, scale by 2^n through the exponent bits.
///
/// Relative error at most 4e-7 for x in [-126, 127]; exactly 0 for x < -126 (including -inf,
/// which is how masked scores vanish); +inf for x > 127; NaN propagates.
@_transparent
public func vexp2(_ x: VFloat) -> VFloat {
    let lo = VFloat(repeating: -126), hi = VFloat(repeating: 127)
    let xc = x.replacing(with: lo, where: x .< lo)
    let magic = VFloat(repeating: 12_582_912)  // 1.5·2²³: adding it rounds to an integer
    let t = xc.replacing(with: hi, where: xc .> hi) + magic
    let n = t - magic
    let f = xc - n
    // 2^f = Σ (f ln2)^k / k!, k ≤ 7: truncation error (0.5 ln2)^8 / 8! ≈ 5e-9.
    var p = VFloat(repeating: 1.525_273_38e-5)
    p = vhorner(p, f, 1.540_353_04e-4)
    p = vhorner(p, f, 1.333_355_81e-3)
    p = vhorner(p, f, 9.618_129_11e-3)
    p = vhorner(p, f, 5.550_410_87e-2)
    p = vhorner(p, f, 0.240_226_507)
    p = vhorner(p, f, 0.693_147_181)
    p = vhorner(p, f, 1)
    // t's bit pattern is 0x4B400000 + n for |n| < 2²²: rebias n into an exponent field.
    let bits = (unsafeBitCast(t, to: VInt32.self) &- VInt32(repeating: 0x4B40_0000 - 127)) &<< 23
    var r = p * unsafeBitCast(bits, to: VFloat.self)
    r = r.replacing(with: 0, where: x .< lo)
    return r.replacing(with: .infinity, where: x .> hi)
}

/// p·f + c, fused when the build has FMA.
@_transparent
public func vhorner(_ p: VFloat, _ f: VFloat, _ c: Float) -> VFloat {
    var acc = VFloat(repeating: c)
    fmadd(&acc, p, f)
    return acc
}
