import Foundation

/// An approximately mergeable summary of one shard: its row count n_s, mean μ_s and top-r
/// singular triplets (σ_sj, v_sj) of the centred shard (e.g. from `RandomizedSVD`).
///
/// Merge: the centred scatter of the union is exactly
///   S = Σ_s S_s + Σ_s n_s (μ_s - μ)(μ_s - μ)ᵀ,   μ = Σ_s n_s μ_s / N,
/// and each S_s is approximated by V_s diag(σ_s²) V_sᵀ. Stacking the rows σ_sj·v_sjᵀ and
/// sqrt(n_s)·(μ_s - μ)ᵀ of all shards into M gives MᵀM = that approximation, so the merged
/// components are the top right singular triplets of M (thin SVD by Householder QR + Jacobi).
/// Error: ||S - MᵀM||₂ <= Σ_s (σ_s,r+1)² (the energy each shard's truncation dropped) plus the
/// shards' own SVD errors; the merged means and counts are exact.
public struct SubspaceSketch: Equatable {
    public var rows: Int
    public var mean: [Double]
    public var singularValues: [Double]
    /// r x d row-major.
    public var basis: [Double]
    public var dimension: Int { mean.count }
    public var rank: Int { singularValues.count }

    public init(rows: Int, mean: [Double], singularValues: [Double], basis: [Double]) {
        precondition(rows >= 1 && !mean.isEmpty && basis.count == singularValues.count * mean.count,
                     "SubspaceSketch: inconsistent shapes")
        self.rows = rows; self.mean = mean; self.singularValues = singularValues; self.basis = basis
    }

    /// The sketch of a shard from its principal components.
    public init(_ pcs: PrincipalComponents) {
        self.init(rows: pcs.rows, mean: pcs.mean.map(Double.init), singularValues: pcs.singularValues,
                  basis: pcs.basis.map(Double.init))
    }

    /// Merges shard sketches into the sketch of their union, keeping `rank` triplets
    /// (default: the largest shard rank). Cost: O(m·d·min(m, d)) with m = Σ r_s + shards.
    public static func merged(_ shards: [SubspaceSketch], rank: Int? = nil) -> SubspaceSketch {
        precondition(!shards.isEmpty, "SubspaceSketch.merged: no shards")
        let d = shards[0].dimension
        precondition(shards.allSatisfy { $0.dimension == d }, "SubspaceSketch.merged: dimensions differ")
        let total = shards.reduce(0) { $0 + $1.rows }
        var mu = [Double](repeating: 0, count: d)
        for s in shards { for t in 0 ..< d { mu[t] += Double(s.rows) * s.mean[t] } }
        for t in 0 ..< d { mu[t] /= Double(total) }
        // Rows of M (m x d, row-major).
        var m = [Double]()
        for s in shards {
            for j in 0 ..< s.rank { for t in 0 ..< d { m.append(s.singularValues[j] * s.basis[j * d + t]) } }
            let w = Double(s.rows).squareRoot()
            for t in 0 ..< d { m.append(w * (s.mean[t] - mu[t])) }
        }
        let rows = m.count / d
        let keep = min(rank ?? shards.map(\.rank).max()!, rows, d)
        precondition(keep >= 1, "SubspaceSketch.merged: rank must be positive")
        var sigma = [Double](), basis = [Double]()
        if rows <= d {
            // Mᵀ is d x rows column-major == M row-major: its left singular vectors are V.
            let svd = JacobiSVD.thin(m, rows: d, cols: rows)
            sigma = Array(svd.s[0 ..< keep]); basis = Array(svd.u[0 ..< keep * d])
        } else {
            // M column-major (rows x d): its right singular vectors are V.
            var mc = [Double](repeating: 0, count: rows * d)
            for i in 0 ..< rows { for t in 0 ..< d { mc[t * rows + i] = m[i * d + t] } }
            let svd = JacobiSVD.thin(mc, rows: rows, cols: d)
            sigma = Array(svd.s[0 ..< keep]); basis = Array(svd.v[0 ..< keep * d])
        }
        return SubspaceSketch(rows: total, mean: mu, singularValues: sigma, basis: basis)
    }

    /// The merged sketch as principal components (Float basis and mean).
    public func components(rank k: Int? = nil) -> PrincipalComponents {
        let r = min(k ?? rank, rank)
        return PrincipalComponents(rows: rows, columns: dimension, mean: mean.map(Float.init),
                                   singularValues: Array(singularValues[0 ..< r]), basis: basis[0 ..< r * dimension].map(Float.init),
                                   method: .sketchMerge)
    }
}
