import Foundation

/// Randomized SVD of the (implicitly centred) tall matrix A = X - 1μᵀ: Halko, Martinsson &
/// Tropp 2011, "Finding structure with randomness", SIAM Review 53(2), Algorithms 4.4 + 5.1.
///
///   Ω ~ N(0,1)^(d x l), l = k + p           (seeded, `GaussianStream`)
///   Y = A Ω = X Ω - 1(μᵀΩ);  Q = orth(Y)     (pass over X; CholeskyQR2, see `TallQR`)
///   repeat q times:  Z = orth(AᵀQ),  Q = orth(A Z)    (two passes each; AᵀQ = XᵀQ - μ(1ᵀQ);
///                    here orth is one CholeskyQR round, falling back to the full path)
///   B = QᵀA (l x d, one pass);  Bᵀ = U Σ Wᵀ by Householder QR + one-sided Jacobi in Double
///   right singular vectors of A ≈ U[:, 0..<k], singular values Σ[0..<k]; left ≈ Q W.
///
/// X is never centred in memory. Every product with X streams the row blocks of the source once
/// (2q + 2 passes; the mean is summed during the first). The products are thin (l = k + p
/// columns), so they run through two fused kernels instead of `GEMM.sgemm`, whose packing of X
/// costs as much as the arithmetic at l = 20 (measured: 668 -> 342 ms at 20000 x 576, q = 2):
/// `RowDots` (X·M, centring x - μ on the fly) and `ThinProducts.accumulateQtX` (QᵀX). Both split
/// independent outputs across workers, so results are bitwise identical for any worker count.
/// Error (HMT Thm 10.8 / Cor 10.10): E||A - QQᵀA|| <= (1 + sqrt(k/(p-1)) + e·sqrt(l)/p·sqrt(min(n,d)-k))^(1/(2q+1))·σ_{k+1},
/// and each computed σ_j satisfies σ_j·(1 - ε_j) <= σ̂_j <= σ_j with ε_j shrinking like
/// (σ_{l+1}/σ_j)^(4q+2) for a spectral gap (Saibaba 2019); Float rounding adds about
/// sqrt(d)·eps_float·||A|| plus eps·||μ|| from the implicit centring (see Docs/LINALG.md).
public enum RandomizedSVD {
    public struct Options {
        /// Number of singular triplets k returned.
        public var rank: Int
        /// Extra sampled directions p (default 10).
        public var oversampling = 10
        /// Power (subspace) iterations q (default 2), each re-orthonormalised.
        public var powerIterations = 2
        /// Seed of the Gaussian test matrix: same seed, same result.
        public var seed: UInt64 = 0
        /// Centre on the mean of the rows (true) or decompose X itself (false).
        public var centre = true
        /// Use this mean instead of the rows' own (e.g. the pool mean); ignored when `centre` is false.
        public var mean: [Float]? = nil
        /// Also return the left singular vectors (k x n, row j = u_j).
        public var computeLeft = false
        public init(rank: Int) { self.rank = rank }
    }

    public struct Result {
        public var components: PrincipalComponents
        /// Uᵀ (k x n row-major) when `computeLeft`, else empty.
        public var left: [Float]
        /// The orthonormalisation used at each step ("choleskyQR" between power iterations,
        /// "choleskyQR2", "shiftedCholeskyQR3", "householder").
        public var orthonormalizations: [String]
        /// All l = k + p computed singular values (the last p are less accurate).
        public var allSingularValues: [Double]
    }

    /// Runs the randomized SVD on the rows of `source` (n x d). Requires 1 <= k <= min(n, d);
    /// l = min(k + p, n, d). Deterministic for a given seed, source and block partition, and
    /// bitwise identical for any `workers` (all parallel work goes through GEMM and
    /// column-partitioned loops). Memory: l·(2n + 3d) floats + O(d·l) Double.
    public static func compute(_ source: some RowBlockSource, options: Options, workers: Int? = nil) -> Result {
        let n = source.rowCount, d = source.columnCount, k = options.rank
        precondition(k >= 1 && k <= min(n, d), "RandomizedSVD: rank \(k) not in 1...min(n \(n), d \(d))")
        precondition(options.oversampling >= 0 && options.powerIterations >= 0, "RandomizedSVD: negative p or q")
        if let m = options.mean { precondition(m.count == d, "RandomizedSVD: mean has \(m.count) entries, expected \(d)") }
        let l = min(k + options.oversampling, n, d)
        var methods: [String] = []

        var omega = [Float](repeating: 0, count: l * d)
        var gauss = GaussianStream(seed: options.seed)
        omega.withUnsafeMutableBufferPointer { gauss.fill($0.baseAddress!, count: l * d) }
        var yt = [Float](repeating: 0, count: l * n)
        var zt = [Float](repeating: 0, count: l * d)
        var scratch = [Float](repeating: 0, count: l * max(n, d))
        var mu = [Float](repeating: 0, count: d)

        yt.withUnsafeMutableBufferPointer { ytb in
        zt.withUnsafeMutableBufferPointer { ztb in
        scratch.withUnsafeMutableBufferPointer { scb in
        omega.withUnsafeMutableBufferPointer { omb in
            let Yt = ytb.baseAddress!, Zt = ztb.baseAddress!, S = scb.baseAddress!, Om = omb.baseAddress!
            // Pass 1: Yt = Ωᵀ Xᵀ, and the mean when it is not given.
            let needMean = options.centre && options.mean == nil
            var sums = [Double](repeating: 0, count: needMean ? d : 0)
            sums.withUnsafeMutableBufferPointer { sp in
                // With the mean to find, cut blocks into chunks of about 1 MiB so the column sums
                // re-read each chunk from cache rather than memory.
                let chunkRows = needMean ? max(16, (1 << 20) / (4 * d)) : Int.max
                applyX(source, Om, l, into: Yt, mu: nil, chunkRows: chunkRows, workers: workers) { base, rows, ld in
                    if needMean {
                        ColumnSums.accumulate(base, rows: rows, cols: d, ld: ld, into: sp.baseAddress!, workers: workers)
                    }
                }
            }
            if options.centre {
                if let m = options.mean { mu = m } else { mu = sums.map { Float($0 / Double(n)) } }
            }
            if options.centre { subtractRowTimesMean(Yt, Om, l, n, d, mu) }
            for _ in 0 ..< options.powerIterations {
                methods.append(TallQR.orthonormalizeRows(Yt, rows: l, length: n, scratch: S, precise: false, workers: workers).rawValue)
                applyXT(source, Yt, l, n, into: Zt, qRows: S, centre: options.centre, mu: mu, workers: workers)
                methods.append(TallQR.orthonormalizeRows(Zt, rows: l, length: d, scratch: S, precise: false, workers: workers).rawValue)
                mu.withUnsafeBufferPointer { mp in
                    applyX(source, Zt, l, into: Yt, mu: options.centre ? mp.baseAddress! : nil, chunkRows: .max, workers: workers) { _, _, _ in }
                }
            }
            methods.append(TallQR.orthonormalizeRows(Yt, rows: l, length: n, scratch: S, workers: workers).rawValue)
            // B = QᵀA, stored as Zt (l x d) == Bᵀ column-major (d x l).
            applyXT(source, Yt, l, n, into: Zt, qRows: S, centre: options.centre, mu: mu, workers: workers)
        }
        }
        }
        }

        let svd = JacobiSVD.thin(zt.map(Double.init), rows: d, cols: l)
        let basis = svd.u[0 ..< k * d].map(Float.init)
        var left: [Float] = []
        if options.computeLeft {
            // Uᵀ = Wᵀ Qᵀ: row j of the result is Σ_i W[i, j] · Qt[i, :].
            var wt = [Float](repeating: 0, count: k * l)
            for j in 0 ..< k { for i in 0 ..< l { wt[j * l + i] = Float(svd.v[j * l + i]) } }
            left = [Float](repeating: 0, count: k * n)
            GEMM.sgemm(m: k, n: n, k: l, a: wt, lda: l, b: yt, ldb: n, c: &left, ldc: n, workers: workers)
        }
        let pcs = PrincipalComponents(rows: n, columns: d, mean: options.centre ? mu : [Float](repeating: 0, count: d),
                                      singularValues: Array(svd.s[0 ..< k]), basis: basis, method: .randomized)
        return Result(components: pcs, left: left, orthonormalizations: methods, allSingularValues: svd.s)
    }

    /// Yt[:, block] = Mt · (X_block - 1μᵀ)ᵀ for every block (Mt is l x d; μ = 0 when nil), then
    /// `after(block)`. A thin product (l <= ~32): the fused `RowDots` kernel streams X once without
    /// packing it, which GEMM would have to do (the packing costs as much as the l-column product).
    static func applyX(_ source: some RowBlockSource, _ mt: UnsafePointer<Float>, _ l: Int,
                       into yt: UnsafeMutablePointer<Float>, mu: UnsafePointer<Float>?, chunkRows: Int, workers: Int?,
                       after: (_ base: UnsafePointer<Float>, _ rows: Int, _ ld: Int) -> Void) {
        let n = source.rowCount, d = source.columnCount
        source.forEachBlock { block in
            var r = 0
            while r < block.rows {
                let nb = min(chunkRows, block.rows - r)
                let base = block.base + r * block.ld
                RowDots.computeDirect(x: base, rows: nb, cols: d, ldx: block.ld, mu: mu, basis: mt, count: l,
                                out: yt + block.firstRow + r, rs: 1, cs: n, workers: workers)
                after(base, nb, block.ld)
                r += nb
            }
        }
    }

    /// Yt[j, :] -= <Mt[j, :], μ> for each of the l rows: the implicit centring X Ω - 1(μᵀΩ).
    static func subtractRowTimesMean(_ yt: UnsafeMutablePointer<Float>, _ mt: UnsafePointer<Float>, _ l: Int,
                                     _ n: Int, _ d: Int, _ mu: [Float]) {
        for j in 0 ..< l {
            var c = 0.0
            for i in 0 ..< d { c += Double(mt[j * d + i]) * Double(mu[i]) }
            let cf = Float(c), row = yt + j * n
            for i in 0 ..< n { row[i] -= cf }
        }
    }

    /// Zt = Qt · X - (Qt 1) μᵀ (l x d): the implicit centring of AᵀQ, accumulated over blocks
    /// by `ThinProducts.accumulateQtX` (Q transposed to n x l once, into `qRows`).
    static func applyXT(_ source: some RowBlockSource, _ qt: UnsafePointer<Float>, _ l: Int, _ n: Int,
                        into zt: UnsafeMutablePointer<Float>, qRows: UnsafeMutablePointer<Float>,
                        centre: Bool, mu: [Float], workers: Int?) {
        let d = source.columnCount
        for j in 0 ..< l { for i in 0 ..< n { qRows[i * l + j] = qt[j * n + i] } }
        var first = true
        source.forEachBlock { block in
            ThinProducts.accumulateQtX(q: qRows + block.firstRow * l, l: l, x: block.base, rows: block.rows, cols: d,
                                       ldx: block.ld, z: zt, overwrite: first, workers: workers)
            first = false
        }
        if first { zt.update(repeating: 0, count: l * d) }
        guard centre else { return }
        for j in 0 ..< l {
            let s = Float(ColumnSums.sum(qt + j * n, count: n))
            let row = zt + j * d
            for i in 0 ..< d { row[i] -= s * mu[i] }
        }
    }
}
