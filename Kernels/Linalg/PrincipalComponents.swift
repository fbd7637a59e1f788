import Foundation

/// The principal subspace of a tall matrix X (n x d): the mean μ of its rows and the top-k
/// singular triplets of the centred matrix X - 1μᵀ (right vectors only; scoring needs no U).
public struct PrincipalComponents: Equatable {
    public enum Method: String { case exact, randomized, sketchMerge }
    public var rows: Int
    public var columns: Int
    /// μ (d).
    public var mean: [Float]
    /// sigma_1 >= ... >= sigma_k of the centred matrix.
    public var singularValues: [Double]
    /// k x d row-major: row j is the unit right singular vector v_j (sign arbitrary).
    public var basis: [Float]
    public var method: Method

    public var rank: Int { singularValues.count }

    public init(rows: Int, columns: Int, mean: [Float], singularValues: [Double], basis: [Float], method: Method) {
        precondition(mean.count == columns && basis.count == singularValues.count * columns, "PrincipalComponents: inconsistent shapes")
        self.rows = rows; self.columns = columns; self.mean = mean; self.singularValues = singularValues
        self.basis = basis; self.method = method
    }
}

/// Chooses between the exact covariance path and the randomized SVD.
public enum PrincipalSubspace {
    public enum Choice: String, Sendable { case automatic, exact, randomized }

    /// Modelled cost in "GEMM-flop equivalents" of each path for an n x d input, rank k with
    /// oversampling p and q power iterations. Exact: one pass n·d² (GEMM on the full symmetric
    /// product, 2·n·d² flops at full GEMM rate) plus the Double eigensolver, (4/3)·d³ flops at
    /// about 1/20 of the GEMM rate. Randomized: 2q + 2 passes of 2·n·d·l flops through thin GEMMs
    /// (about half the GEMM rate at l = k + p <= 32) plus CholeskyQR (8·n·l² per step).
    public static func modelledCost(rows n: Int, cols d: Int, rank k: Int, oversampling p: Int, powerIterations q: Int)
        -> (exact: Double, randomized: Double) {
        let nd = Double(n), dd = Double(d), l = Double(min(k + p, d, max(n, 1)))
        let exact = 2 * nd * dd * dd + 20 * (4.0 / 3.0) * dd * dd * dd
        let randomized = 2 * (2 * Double(q) + 2) * 2 * nd * dd * l + Double(2 * q + 2) * 8 * max(nd, dd) * l * l
        return (exact, randomized)
    }

    /// The method `.automatic` picks: exact when its modelled cost is lower, or when the requested
    /// rank is so large that the randomized path has no advantage (l >= d / 2).
    public static func choose(rows n: Int, cols d: Int, rank k: Int, oversampling p: Int = 10, powerIterations q: Int = 2) -> Choice {
        if k + p >= d / 2 { return .exact }
        let c = modelledCost(rows: n, cols: d, rank: k, oversampling: p, powerIterations: q)
        return c.exact <= c.randomized ? .exact : .randomized
    }

    /// Top-k principal components of the rows of `source` by the chosen method (`.automatic`
    /// uses the cost model). Both paths centre on the mean of the rows.
    public static func compute(_ source: some RowBlockSource, rank k: Int, choice: Choice = .automatic,
                               oversampling p: Int = 10, powerIterations q: Int = 2, seed: UInt64 = 0,
                               workers: Int? = nil) -> PrincipalComponents {
        var method = choice
        if method == .automatic {
            method = choose(rows: source.rowCount, cols: source.columnCount, rank: k, oversampling: p, powerIterations: q)
        }
        switch method {
        case .exact, .automatic:
            return CovarianceStats(source, workers: workers).principalComponents(k)
        case .randomized:
            var options = RandomizedSVD.Options(rank: k)
            options.oversampling = p; options.powerIterations = q; options.seed = seed
            return RandomizedSVD.compute(source, options: options, workers: workers).components
        }
    }
}
