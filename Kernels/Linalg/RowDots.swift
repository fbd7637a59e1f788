import Foundation

/// Dot products of rows x_i (centred on μ) with a few basis rows b_j, streaming X once: the fused
/// kernels behind the randomized SVD's X·Mᵀ products, the projection scores (`computeDirect`,
/// RowDots+Direct.swift: vectors along a row's coordinates) and the skinny GEMM (the broadcast
/// tiles below).
///
/// Broadcast tiles: a basis packed transposed into panels of one or two vectors of basis rows
/// ([d, W] each, zero-padded); a register tile is 8 rows of X x W basis vectors: per element t,
/// one or two panel loads and 8 broadcasts of x_it feed 8 or 16 FMAs, with no horizontal sums
/// (8 rows keep the row pointers in registers; 12 spilled and ran slower at d = 4096). Each out
/// element is a plain sequential sum over t, so it does not depend on the other rows.
package enum RowDots {
    /// Rows of X per register tile.
    static let tileRows = 8

    /// out[r·vLanes + l] = Σ_t x[r·ld + t]·panel[t·vLanes + l] for r < rows (missing rows alias row 0).
    @inline(__always)
    static func tile8x1(_ x: UnsafePointer<Float>, _ ld: Int, rows: Int, _ panel: UnsafePointer<Float>, _ d: Int,
                         out: UnsafeMutablePointer<Float>) {
        func row(_ r: Int) -> UnsafePointer<Float> { r < rows ? x + r * ld : x }
        let x0 = row(0), x1 = row(1), x2 = row(2), x3 = row(3), x4 = row(4), x5 = row(5)
        let x6 = row(6), x7 = row(7)
        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat(), a4 = VFloat(), a5 = VFloat()
        var a6 = VFloat(), a7 = VFloat()
        var p = panel
        for t in 0 ..< d {
            let v = vload(p, 0)
            fmadd(&a0, VFloat(repeating: x0[t]), v); fmadd(&a1, VFloat(repeating: x1[t]), v)
            fmadd(&a2, VFloat(repeating: x2[t]), v); fmadd(&a3, VFloat(repeating: x3[t]), v)
            fmadd(&a4, VFloat(repeating: x4[t]), v); fmadd(&a5, VFloat(repeating: x5[t]), v)
            fmadd(&a6, VFloat(repeating: x6[t]), v); fmadd(&a7, VFloat(repeating: x7[t]), v)
            p += vLanes
        }
        // out holds 8 rows; the caller reads the first `rows`.
        let o = UnsafeMutableRawPointer(out), s = MemoryLayout<VFloat>.stride
        o.storeBytes(of: a0, toByteOffset: 0, as: VFloat.self); o.storeBytes(of: a1, toByteOffset: s, as: VFloat.self)
        o.storeBytes(of: a2, toByteOffset: 2 * s, as: VFloat.self); o.storeBytes(of: a3, toByteOffset: 3 * s, as: VFloat.self)
        o.storeBytes(of: a4, toByteOffset: 4 * s, as: VFloat.self); o.storeBytes(of: a5, toByteOffset: 5 * s, as: VFloat.self)
        o.storeBytes(of: a6, toByteOffset: 6 * s, as: VFloat.self); o.storeBytes(of: a7, toByteOffset: 7 * s, as: VFloat.self)

    }

    /// As `tile8x1` with a panel two vectors wide: out[r·2vLanes + l].
    @inline(__always)
    static func tile8x2(_ x: UnsafePointer<Float>, _ ld: Int, rows: Int, _ panel: UnsafePointer<Float>, _ d: Int,
                         out: UnsafeMutablePointer<Float>) {
        func row(_ r: Int) -> UnsafePointer<Float> { r < rows ? x + r * ld : x }
        let x0 = row(0), x1 = row(1), x2 = row(2), x3 = row(3), x4 = row(4), x5 = row(5)
        let x6 = row(6), x7 = row(7)
        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat(), a4 = VFloat(), a5 = VFloat()
        var a6 = VFloat(), a7 = VFloat()
        var b0 = VFloat(), b1 = VFloat(), b2 = VFloat(), b3 = VFloat(), b4 = VFloat(), b5 = VFloat()
        var b6 = VFloat(), b7 = VFloat()
        var p = panel
        for t in 0 ..< d {
            let v = vload(p, 0), u = vload(p, vLanes)
            var s = VFloat(repeating: x0[t]); fmadd(&a0, s, v); fmadd(&b0, s, u)
            s = VFloat(repeating: x1[t]); fmadd(&a1, s, v); fmadd(&b1, s, u)
            s = VFloat(repeating: x2[t]); fmadd(&a2, s, v); fmadd(&b2, s, u)
            s = VFloat(repeating: x3[t]); fmadd(&a3, s, v); fmadd(&b3, s, u)
            s = VFloat(repeating: x4[t]); fmadd(&a4, s, v); fmadd(&b4, s, u)
            s = VFloat(repeating: x5[t]); fmadd(&a5, s, v); fmadd(&b5, s, u)
            s = VFloat(repeating: x6[t]); fmadd(&a6, s, v); fmadd(&b6, s, u)
            s = VFloat(repeating: x7[t]); fmadd(&a7, s, v); fmadd(&b7, s, u)
            p += 2 * vLanes
        }
        let o = UnsafeMutableRawPointer(out), s = MemoryLayout<VFloat>.stride
        func put(_ r: Int, _ a: VFloat, _ b: VFloat) {
            o.storeBytes(of: a, toByteOffset: 2 * r * s, as: VFloat.self)
            o.storeBytes(of: b, toByteOffset: (2 * r + 1) * s, as: VFloat.self)
        }
        put(0, a0, b0); put(1, a1, b1); put(2, a2, b2); put(3, a3, b3); put(4, a4, b4); put(5, a5, b5)
        put(6, a6, b6); put(7, a7, b7)
    }
}
