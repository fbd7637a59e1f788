/// SIMD vocabulary shared by the kernels: the fused multiply-add helper and horizontal sums.
///
/// On baseline x86-64, `SIMD.addProduct` lowers to one libm `fmaf` call per lane (about 36x
/// slower than mul + add), so kernels never call it directly: `fmadd` is fused only when the
/// build enables FMA (`SAFETUNE_CPU=...`, which defines KERNELS_FMA; always on arm64).

/// The kernels' native vector: one register of the widest unit the build targets.
#if KERNELS_AVX512
public typealias VFloat = SIMD16<Float>
#elseif KERNELS_FMA || arch(arm64)
public typealias VFloat = SIMD8<Float>
#else
public typealias VFloat = SIMD4<Float>
#endif

/// The integer vector with as many lanes as `VFloat` (bit manipulation of floats).
#if KERNELS_AVX512
public typealias VInt32 = SIMD16<Int32>
#elseif KERNELS_FMA || arch(arm64)
public typealias VInt32 = SIMD8<Int32>
#else
public typealias VInt32 = SIMD4<Int32>
#endif

/// Lanes in `VFloat`.
public let vLanes = VFloat.scalarCount

@inline(__always)
public func fmadd(_ acc: inout SIMD4<Float>, _ a: SIMD4<Float>, _ b: SIMD4<Float>) {
    #if KERNELS_FMA || arch(arm64)
    acc.addProduct(a, b)
    #else
    acc += a * b
    #endif
}

@inline(__always)
public func fmadd(_ acc: inout SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
    #if KERNELS_FMA || arch(arm64)
    acc.addProduct(a, b)
    #else
    acc += a * b
    #endif
}

@inline(__always)
public func fmadd(_ acc: inout SIMD8<Double>, _ a: SIMD8<Double>, _ b: SIMD8<Double>) {
    #if KERNELS_FMA || arch(arm64)
    acc.addProduct(a, b)
    #else
    acc += a * b
    #endif
}

@inline(__always)
public func fmadd(_ acc: inout SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) {
    #if KERNELS_FMA || arch(arm64)
    acc.addProduct(a, b)
    #else
    acc += a * b
    #endif
}

/// Loads a vector from `p + i` (no alignment required).
@inline(__always)
public func vload(_ p: UnsafePointer<Float>, _ i: Int) -> VFloat {
    UnsafeRawPointer(p + i).loadUnaligned(as: VFloat.self)
}

/// Stores a vector to `p + i` (no alignment required).
@inline(__always)
public func vstore(_ v: VFloat, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: VFloat.self)
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

// Int32 lanes to Float (one `vcvtdq2ps`). Written as a lane loop that LLVM vectorises because the
// standard library's `SIMD16<Float>(SIMD16<Int32>)` is not inlined into hot loops: it becomes a call
// that splits the vector into four xmm registers and back.
@inline(__always)
func floatLanes(_ v: SIMD16<Int32>) -> SIMD16<Float> {
    var r = SIMD16<Float>()
    for i in 0 ..< 16 { r[i] = Float(v[i]) }
    return r
}

@inline(__always)
func floatLanes(_ v: SIMD8<Int32>) -> SIMD8<Float> {
    var r = SIMD8<Float>()
    for i in 0 ..< 8 { r[i] = Float(v[i]) }
    return r
}

@inline(__always)
func floatLanes(_ v: SIMD4<Int32>) -> SIMD4<Float> {
    var r = SIMD4<Float>()
    for i in 0 ..< 4 { r[i] = Float(v[i]) }
    return r
}
