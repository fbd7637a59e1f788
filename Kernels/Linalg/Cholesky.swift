import Foundation

/// Dense symmetric positive definite solves in Double (Newton steps of the judge's logistic
/// regression, the guided-SAFT discriminant): A = L·Lᵀ, then two triangular solves. O(n³/3), for n
/// up to a few thousand (the judge's concatenated features reach 3,456).
public enum Cholesky {
    /// Panel width of the blocked factorisation.
    static let panel = 32

    /// x with A x = b for symmetric positive definite A (n × n, row-major; only the lower triangle is
    /// read). Nil when A is not positive definite (a pivot ≤ 0).
    ///
    /// Right-looking and blocked by panels of 32 columns: factor the panel (left-looking, SIMD dot
    /// products within the panel), then subtract its contribution from the trailing lower triangle,
    /// a Double rank-32 update run as broadcast-FMA tiles over a transposed copy of the panel. Rows
    /// are split over workers; every element's operations run in the same order whichever worker
    /// owns its row, so the result is the same for any worker count.
    public static func solve(_ a: [Double], _ b: [Double], n: Int, workers: Int? = nil) -> [Double]? {
        precondition(a.count == n * n && b.count == n, "Cholesky.solve: \(a.count) and \(b.count) values for n = \(n)")
        var l = a
        let ok = l.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return true }
            return factor(base, n: n, workers: workers)
        }
        guard ok else { return nil }
        var y = b
        for i in 0 ..< n {
            var v = y[i]
            for k in 0 ..< i { v -= l[i * n + k] * y[k] }
            y[i] = v / l[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            var v = y[i]
            for k in i + 1 ..< n { v -= l[k * n + i] * y[k] }
            y[i] = v / l[i * n + i]
        }
        return y
    }

    /// In-place lower Cholesky factor of `l` (n × n, row-major); false when a pivot is ≤ 0.
    static func factor(_ l: UnsafeMutablePointer<Double>, n: Int, workers: Int?) -> Bool {
        let nb = panel
        let pt = UnsafeMutablePointer<Double>.allocate(capacity: nb * max(n, 1))
        defer { pt.deallocate() }
        var k0 = 0
        while k0 < n {
            let kb = min(nb, n - k0)
            // 1. The panel's columns k0 ..< k0+kb, rows k0 ..< n: left-looking within the panel
            //    (earlier panels were already subtracted by their trailing updates).
            for j in k0 ..< k0 + kb {
                let rj = l + j * n + k0, c = j - k0
                let diag = rj[c] - dot(rj, rj, c)
                guard diag > 0 else { return false }
                let ljj = diag.squareRoot()
                rj[c] = ljj
                let rows = n - j - 1
                if rows == 0 { continue }
                let parts = rows * c >= 1 << 15 ? Parallel.resolve(workers) : 1
                Parallel.run(workers: parts, maxUseful: rows) { ith, nth in
                    for i in Parallel.range(ith, of: nth, count: rows) {
                        let ri = l + (j + 1 + i) * n + k0
                        ri[c] = (ri[c] - dot(ri, rj, c)) / ljj
                    }
                }
            }
            let t0 = k0 + kb, trailing = n - t0
            if trailing == 0 { break }
            // 2. Transposed copy of the panel's trailing rows: pt[t * trailing + r] = L[t0 + r, k0 + t].
            for r in 0 ..< trailing {
                let src = l + (t0 + r) * n + k0
                for t in 0 ..< kb { pt[t * trailing + r] = src[t] }
            }
            // 3. A[i, j] -= Σ_t L[i, k0+t]·L[j, k0+t] for t0 <= j <= i, in tiles of 4 rows.
            let tiles = (trailing + 3) / 4
            let parts = trailing * trailing * kb >= 1 << 18 ? Parallel.resolve(workers) : 1
            Parallel.forEach(tiles, workers: parts) { tile in
                let r0 = tile * 4, rows = min(4, trailing - r0)
                update(l, n: n, pt: pt, trailing: trailing, t0: t0, k0: k0, kb: kb, r0: r0, rows: rows)
            }
            k0 += kb
        }
        return true
    }

    /// Rows t0+r0 ..< t0+r0+rows of the trailing update, columns t0 ... (their own row), 16 at a time.
    @inline(__always)
    static func update(_ l: UnsafeMutablePointer<Double>, n: Int, pt: UnsafeMutablePointer<Double>, trailing: Int, t0: Int,
                       k0: Int, kb: Int, r0: Int, rows: Int) {
        let last = r0 + rows  // columns needed: 0 ..< last (relative to t0); row r needs 0 ... r
        let ptr = UnsafeRawPointer(pt)
        var c0 = 0
        while c0 + 16 <= last {
            var a00 = SIMD8<Double>(), a01 = SIMD8<Double>(), a10 = SIMD8<Double>(), a11 = SIMD8<Double>()
            var a20 = SIMD8<Double>(), a21 = SIMD8<Double>(), a30 = SIMD8<Double>(), a31 = SIMD8<Double>()
            for t in 0 ..< kb {
                let col = t * trailing + c0
                let v0 = ptr.loadUnaligned(fromByteOffset: 8 * col, as: SIMD8<Double>.self)
                let v1 = ptr.loadUnaligned(fromByteOffset: 8 * (col + 8), as: SIMD8<Double>.self)
                let row = t * trailing + r0
                let b0 = SIMD8(repeating: pt[row])
                fmadd(&a00, b0, v0); fmadd(&a01, b0, v1)
                if rows > 1 { let b1 = SIMD8(repeating: pt[row + 1]); fmadd(&a10, b1, v0); fmadd(&a11, b1, v1) }
                if rows > 2 { let b2 = SIMD8(repeating: pt[row + 2]); fmadd(&a20, b2, v0); fmadd(&a21, b2, v1) }
                if rows > 3 { let b3 = SIMD8(repeating: pt[row + 3]); fmadd(&a30, b3, v0); fmadd(&a31, b3, v1) }
            }
            func store(_ r: Int, _ lo: SIMD8<Double>, _ hi: SIMD8<Double>) {
                let dst = l + (t0 + r0 + r) * n + t0 + c0
                let upTo = min(16, r0 + r + 1 - c0)  // lower triangle only
                for x in 0 ..< upTo { dst[x] -= x < 8 ? lo[x] : hi[x - 8] }
            }
            store(0, a00, a01)
            if rows > 1 { store(1, a10, a11) }
            if rows > 2 { store(2, a20, a21) }
            if rows > 3 { store(3, a30, a31) }
            c0 += 16
        }
        // Remaining columns c0 ..< last, one at a time.
        while c0 < last {
            for r in 0 ..< rows where c0 <= r0 + r {
                var s = 0.0
                for t in 0 ..< kb { s += pt[t * trailing + r0 + r] * pt[t * trailing + c0] }
                l[(t0 + r0 + r) * n + t0 + c0] -= s
            }
            c0 += 1
        }
    }

    /// Σ x[k]·y[k] for k < count, in two 8-lane accumulators and a scalar tail.
    @inline(__always)
    static func dot(_ x: UnsafeMutablePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ count: Int) -> Double {
        var s0 = SIMD8<Double>(), s1 = SIMD8<Double>()
        var k = 0
        let xr = UnsafeRawPointer(x), yr = UnsafeRawPointer(y)
        while k + 16 <= count {
            fmadd(&s0, xr.loadUnaligned(fromByteOffset: 8 * k, as: SIMD8<Double>.self),
                  yr.loadUnaligned(fromByteOffset: 8 * k, as: SIMD8<Double>.self))
            fmadd(&s1, xr.loadUnaligned(fromByteOffset: 8 * (k + 8), as: SIMD8<Double>.self),
                  yr.loadUnaligned(fromByteOffset: 8 * (k + 8), as: SIMD8<Double>.self))
            k += 16
        }
        var s = (s0 + s1).sum()
        while k < count { s += x[k] * y[k]; k += 1 }
        return s
    }
}
