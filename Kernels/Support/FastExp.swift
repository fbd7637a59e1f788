/// Vectorised exponentials for softmax-style kernels (attention, cross-entropy).
///
/// libm's `exp2f` is one call per lane; these stay in registers. Accuracy (checked by
/// `FastExpTests`): relative error at most 4e-7 (a few ulp) for x in [-126, 127].


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

/// Lane-wise maximum (NaN-agnostic: compiles to one max instruction).
@_transparent
public func vmax(_ a: VFloat, _ b: VFloat) -> VFloat {
    a.replacing(with: b, where: b .> a)
}

// The helpers here are `@_transparent` so they always inline at full vector width: a non-inlined
// SIMD16 argument is split into four xmm registers by the calling convention, and the standard
// library's `SIMD.max()` / `.sum()` reduce lane by lane.

/// Largest lane (log-step halving: one shuffle and one max per level).
@_transparent
public func horizontalMax(_ v: VFloat) -> Float {
    #if KERNELS_AVX512
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    #else
    let a = v
    #endif
    #if KERNELS_AVX512 || KERNELS_FMA || arch(arm64)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .> a.lowHalf)
    #else
    let b = a
    #endif
    let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .> b.lowHalf)
    return max(c[0], c[1])
}

/// Sum of the lanes by log-step halving (a fixed order, so results are reproducible).
@_transparent
public func horizontalSum(_ v: VFloat) -> Float {
    #if KERNELS_AVX512
    let a = v.lowHalf + v.highHalf
    #else
    let a = v
    #endif
    #if KERNELS_AVX512 || KERNELS_FMA || arch(arm64)
    let b = a.lowHalf + a.highHalf
    #else
    let b = a
    #endif
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}
