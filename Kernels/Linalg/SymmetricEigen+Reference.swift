import Foundation

/// The slow, simple twin of `SymmetricEigen`: classical cyclic two-sided Jacobi on the whole
/// matrix (Golub & Van Loan Alg. 8.5.3), the oracle for tests.
extension SymmetricEigen {
    /// All eigenvalues (descending) and eigenvectors (d x d row-major, row j = vector j).
    package static func jacobiReference(_ a: [Double], dimension d: Int) -> (values: [Double], vectors: [Double]) {
        var m = a
        var v = [Double](repeating: 0, count: d * d)
        for i in 0 ..< d { v[i * d + i] = 1 }  // column-major accumulation: v[col * d + row]
        for _ in 0 ..< 100 {
            var off = 0.0, total = 0.0
            for i in 0 ..< d { for j in 0 ..< d { total += m[i * d + j] * m[i * d + j]; if i != j { off += m[i * d + j] * m[i * d + j] } } }
            if off <= 1e-30 * total || off == 0 { break }
            for p in 0 ..< d {
                for q in p + 1 ..< d where m[p * d + q] != 0 {
                    let theta = (m[q * d + q] - m[p * d + p]) / (2 * m[p * d + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0 ..< d {  // columns p, q
                        let mkp = m[k * d + p], mkq = m[k * d + q]
                        m[k * d + p] = c * mkp - s * mkq
                        m[k * d + q] = s * mkp + c * mkq
                    }
                    for k in 0 ..< d {  // rows p, q
                        let mpk = m[p * d + k], mqk = m[q * d + k]
                        m[p * d + k] = c * mpk - s * mqk
                        m[q * d + k] = s * mpk + c * mqk
                    }
                    for k in 0 ..< d {
                        let vp = v[p * d + k], vq = v[q * d + k]
                        v[p * d + k] = c * vp - s * vq
                        v[q * d + k] = s * vp + c * vq
                    }
                }
            }
        }
        let order = (0 ..< d).sorted { m[$0 * d + $0] > m[$1 * d + $1] }
        var values = [Double](), vectors = [Double]()
        for j in order {
            values.append(m[j * d + j])
            vectors.append(contentsOf: v[j * d ..< j * d + d])
        }
        return (values, vectors)
    }

    /// Top-k singular values and right singular vectors (k x d) of the centred (or raw) Float
    /// matrix X (n x d) in Double: the reference every SVD test compares against.
    package static func centredSVDReference(_ x: [Float], rows n: Int, cols d: Int, centre: Bool = true)
        -> (mean: [Double], values: [Double], vectors: [Double]) {
        var mu = [Double](repeating: 0, count: d)
        if centre { for i in 0 ..< n { for t in 0 ..< d { mu[t] += Double(x[i * d + t]) } }; for t in 0 ..< d { mu[t] /= Double(n) } }
        var s = [Double](repeating: 0, count: d * d)
        var row = [Double](repeating: 0, count: d)
        for i in 0 ..< n {
            for t in 0 ..< d { row[t] = Double(x[i * d + t]) - mu[t] }
            for a in 0 ..< d { let ra = row[a]; for b in 0 ..< d { s[a * d + b] += ra * row[b] } }
        }
        let (values, vectors) = jacobiReference(s, dimension: d)
        return (mu, values.map { max($0, 0).squareRoot() }, vectors)
    }
}
