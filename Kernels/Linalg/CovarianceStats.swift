import Foundation

/// The exactly mergeable second-moment statistics of a set of rows x_i in R^d:
/// n, s = Σ x_i and G = Σ x_i x_iᵀ (all Double). Two shards merge by adding the three fields,
/// so shards embedded on different machines give the statistics of their union, bit for bit
/// independent of how the rows were grouped up to Double rounding of the sums.
///
/// Accumulation: per block of `blockRows` rows, Gb = X_bᵀX_b by `GEMM.sgemm` (Float, parallel),
/// added to G in Double; s in Double. Error: |G - XᵀX| <= (γ_b·|X_b|ᵀ|X_b| summed over blocks) +
/// Double rounding. Inside GEMM each KC = 256-deep panel is summed in registers and the panels
/// are added into the Float tile, so γ_b ≈ (KC + blockRows/KC)·eps_float worst case (about
/// 264·eps at the default 2048 rows; sqrt of that typical). Larger blocks only add the second term,
/// and they amortise the d² Float -> Double pass (at 512 rows it was about 25% of the time).
/// The centred scatter G - n·μμᵀ cancels when ||μ||² dominates the spread: its relative error
/// grows like (||μ||² + σ²)/σ² times that bound (see Docs/LINALG.md).
public struct CovarianceStats: Equatable {
    public private(set) var dimension: Int
    public private(set) var count: Int
    /// Σ x_i (d).
    public var sum: [Double]
    /// Σ x_i x_iᵀ (d x d row-major, symmetric).
    public var gram: [Double]

    /// Rows per Float GEMM block before the Double accumulation (accuracy vs speed, see above).
    public static let defaultBlockRows = 2048

    public init(dimension: Int) {
        precondition(dimension >= 1, "CovarianceStats: dimension must be positive")
        self.dimension = dimension; count = 0
        sum = [Double](repeating: 0, count: dimension)
        gram = [Double](repeating: 0, count: dimension * dimension)
    }

    /// Fields given directly (e.g. read from a file); shapes are checked.
    public init(dimension: Int, count: Int, sum: [Double], gram: [Double]) {
        precondition(dimension >= 1 && count >= 0 && sum.count == dimension && gram.count == dimension * dimension,
                     "CovarianceStats: inconsistent fields")
        self.dimension = dimension; self.count = count; self.sum = sum; self.gram = gram
    }

    /// Statistics of all rows of `source`. Cost: n·d² multiply-adds through GEMM (the full
    /// symmetric product) + n·d Double adds.
    public init(_ source: some RowBlockSource, blockRows: Int = CovarianceStats.defaultBlockRows, workers: Int? = nil) {
        self.init(dimension: source.columnCount)
        accumulate(source, blockRows: blockRows, workers: workers)
    }

    /// Adds the rows of `source` (accumulates; existing statistics are kept).
    public mutating func accumulate(_ source: some RowBlockSource, blockRows: Int = CovarianceStats.defaultBlockRows,
                                    workers: Int? = nil) {
        precondition(source.columnCount == dimension, "CovarianceStats: source has \(source.columnCount) columns, expected \(dimension)")
        precondition(blockRows >= 1, "CovarianceStats: blockRows must be positive")
        let d = dimension
        Workspace.withScratch(floats: d * d) { gb in
            source.forEachBlock { block in
                var r = 0
                while r < block.rows {
                    let nb = min(blockRows, block.rows - r)
                    let base = block.base + r * block.ld
                    GEMM.sgemm(transA: true, m: d, n: d, k: nb, a: base, lda: block.ld, b: base, ldb: block.ld,
                               c: gb, ldc: d, workers: workers)
                    addBlock(gb, base: base, rows: nb, ld: block.ld, workers: workers)
                    count += nb
                    r += nb
                }
            }
        }
    }

    /// G += Gb (Float -> Double) and s += column sums of the block; parallel over rows of G / columns of s.
    private mutating func addBlock(_ gb: UnsafePointer<Float>, base: UnsafePointer<Float>, rows nb: Int, ld: Int, workers: Int?) {
        let d = dimension
        gram.withUnsafeMutableBufferPointer { gp in
            sum.withUnsafeMutableBufferPointer { sp in
                let g = gp.baseAddress!, s = sp.baseAddress!
                Parallel.run(workers: workers, maxUseful: max(1, d / 64)) { ith, nth in
                    let rows = Parallel.range(ith, of: nth, count: d)
                    for i in rows {
                        let gi = g + i * d, bi = gb + i * d
                        for j in 0 ..< d { gi[j] += Double(bi[j]) }
                    }
                    // Column sums of the block for columns in `rows`, in Double, rows in order.
                    for r in 0 ..< nb {
                        let x = base + r * ld
                        for j in rows { s[j] += Double(x[j]) }
                    }
                }
            }
        }
    }

    /// Adds another shard's statistics (exact up to Double rounding).
    public mutating func merge(_ other: CovarianceStats) {
        precondition(other.dimension == dimension, "CovarianceStats.merge: dimension \(other.dimension) != \(dimension)")
        count += other.count
        for i in 0 ..< dimension { sum[i] += other.sum[i] }
        for i in 0 ..< gram.count { gram[i] += other.gram[i] }
    }

    /// Statistics of the union of `shards`.
    public static func merged(_ shards: [CovarianceStats]) -> CovarianceStats {
        precondition(!shards.isEmpty, "CovarianceStats.merged: no shards")
        var total = shards[0]
        for s in shards.dropFirst() { total.merge(s) }
        return total
    }

    /// μ = s / n (d).
    public var mean: [Double] {
        precondition(count > 0, "CovarianceStats.mean: no rows")
        return sum.map { $0 / Double(count) }
    }

    /// Centred scatter S = Σ (x_i - μ)(x_i - μ)ᵀ = G - s sᵀ / n (d x d, symmetric). The sample
    /// covariance is S / (n - 1); the singular values of the centred matrix are sqrt(eig(S)).
    public var centredScatter: [Double] {
        precondition(count > 0, "CovarianceStats.centredScatter: no rows")
        let d = dimension, inv = 1 / Double(count)
        var c = gram
        for i in 0 ..< d {
            for j in 0 ..< d { c[i * d + j] -= sum[i] * sum[j] * inv }
        }
        return c
    }

    /// The top-k principal components of the rows: mean, singular values of the centred matrix
    /// (sqrt of the scatter eigenvalues, clamped at 0) and right singular vectors, by the
    /// symmetric eigensolver on the centred scatter. Cost: d² + (4/3)·d³ flops in Double.
    public func principalComponents(_ k: Int) -> PrincipalComponents {
        precondition(k >= 1 && k <= dimension, "CovarianceStats.principalComponents: k \(k) not in 1...\(dimension)")
        let (values, vectors) = SymmetricEigen.top(k, of: centredScatter, dimension: dimension)
        return PrincipalComponents(rows: count, columns: dimension, mean: mean.map(Float.init),
                                   singularValues: values.map { max($0, 0).squareRoot() },
                                   basis: vectors.map(Float.init), method: .exact)
    }
}
