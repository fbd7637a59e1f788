import Foundation
import Kernels

/// A binary logistic model on standardised features: p(harmful | x) = σ(w·z + b), z = (x − mean) / scale.
public struct LogisticModel: Codable, Equatable, Sendable {
    public var mean: [Double]
    public var scale: [Double]
    public var weights: [Double]
    public var bias: Double

    public init(mean: [Double], scale: [Double], weights: [Double], bias: Double) {
        self.mean = mean; self.scale = scale; self.weights = weights; self.bias = bias
    }

    public var dimension: Int { weights.count }

    /// The logit w·z + b of one feature row.
    public func logit(_ x: UnsafePointer<Float>) -> Double {
        var t = bias
        for j in 0 ..< weights.count { t += weights[j] * ((Double(x[j]) - mean[j]) / scale[j]) }
        return t
    }

    /// p(positive) of every row of a row-major (rows, dimension) matrix.
    public func probabilities(_ features: [Float], rows: Int) -> [Double] {
        precondition(features.count == rows * dimension, "LogisticModel: \(features.count) values for \(rows) rows of \(dimension)")
        return features.withUnsafeBufferPointer { f in
            (0 ..< rows).map { LogisticRegression.sigmoid(logit(f.baseAddress! + $0 * dimension)) }
        }
    }
}

/// L2-regularised logistic regression fitted by Newton's method (Double arithmetic; the Hessian's
/// Gram product uses the Float GEMM, which only shapes the step: the loss and gradient that decide
/// convergence are exact Double sums).
///
/// Minimises  L(w, b) = (1/Σc) Σ_i c_i · [−y_i log p_i − (1 − y_i) log(1 − p_i)] + (λ/2)·‖w‖²
/// with p_i = σ(w·z_i + b) on standardised features z (the bias is not penalised).
public enum LogisticRegression {
    public struct Fit: Sendable {
        public var model: LogisticModel
        public var loss: Double
        public var gradientNorm: Double
        public var iterations: Int
    }

    @inline(__always) public static func sigmoid(_ t: Double) -> Double {
        t >= 0 ? 1 / (1 + exp(-t)) : exp(t) / (1 + exp(t))
    }

    /// log(1 + e^t) without overflow.
    @inline(__always) static func softplus(_ t: Double) -> Double {
        t > 0 ? t + log1p(exp(-t)) : log1p(exp(t))
    }

    /// Column means and standard deviations (a constant column gets scale 1).
    public static func standardization(_ x: [Float], rows n: Int, dim d: Int) -> (mean: [Double], scale: [Double]) {
        var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        for i in 0 ..< n { for j in 0 ..< d { mean[j] += Double(x[i * d + j]) } }
        for j in 0 ..< d { mean[j] /= Double(max(n, 1)) }
        for i in 0 ..< n { for j in 0 ..< d { let v = Double(x[i * d + j]) - mean[j]; sq[j] += v * v } }
        let scale = sq.map { s -> Double in
            let sd = (s / Double(max(n - 1, 1))).squareRoot()
            return sd > 1e-8 ? sd : 1
        }
        return (mean, scale)
    }

    /// Loss and gradient at θ = [w; b] for standardised rows `z` (n, d) — the objective above.
    public static func lossAndGradient(theta: [Double], z: [Double], rows n: Int, dim d: Int, labels: [Bool],
                                       sampleWeights c: [Double], l2: Double) -> (loss: Double, gradient: [Double], p: [Double]) {
        let total = c.reduce(0, +)
        var loss = 0.0, g = [Double](repeating: 0, count: d + 1), p = [Double](repeating: 0, count: n)
        for i in 0 ..< n {
            var t = theta[d]
            let row = i * d
            for j in 0 ..< d { t += theta[j] * z[row + j] }
            loss += c[i] * (labels[i] ? softplus(-t) : softplus(t))
            p[i] = sigmoid(t)
            let r = c[i] * (p[i] - (labels[i] ? 1 : 0)) / total
            for j in 0 ..< d { g[j] += r * z[row + j] }
            g[d] += r
        }
        loss /= total
        for j in 0 ..< d {
            loss += 0.5 * l2 * theta[j] * theta[j]
            g[j] += l2 * theta[j]
        }
        return (loss, g, p)
    }

    /// Fits the model to `features` (row-major, rows × dim) and `labels` (true = positive).
    public static func fit(features x: [Float], rows n: Int, dim d: Int, labels: [Bool], l2: Double,
                           sampleWeights: [Double]? = nil, maxIterations: Int = 60, workers: Int? = nil) throws -> Fit {
        guard n > 0, x.count == n * d, labels.count == n else {
            throw DatasetError("logistic regression: \(x.count) values, \(labels.count) labels for \(n) rows of \(d)")
        }
        guard l2 > 0 else { throw DatasetError("logistic regression: the L2 strength must be > 0 (got \(l2))") }
        let c = sampleWeights ?? [Double](repeating: 1, count: n)
        let total = c.reduce(0, +)
        let (mean, scale) = standardization(x, rows: n, dim: d)
        var z = [Double](repeating: 0, count: n * d)
        for i in 0 ..< n { for j in 0 ..< d { z[i * d + j] = (Double(x[i * d + j]) - mean[j]) / scale[j] } }
        let D = d + 1
        var theta = [Double](repeating: 0, count: D)
        var (loss, g, p) = lossAndGradient(theta: theta, z: z, rows: n, dim: d, labels: labels, sampleWeights: c, l2: l2)
        var iterations = 0, converged = false
        var s = [Float](repeating: 0, count: n * D), h = [Float](repeating: 0, count: D * D)
        while iterations < maxIterations && !converged {
            let gnorm = g.map { $0 * $0 }.reduce(0, +).squareRoot()
            if gnorm < 1e-10 { break }
            iterations += 1
            // Hessian (1/Σc) Σ c_i p_i (1 − p_i) z̃_i z̃_iᵀ + λ·diag(1…1, 0), z̃ = [z; 1].
            for i in 0 ..< n {
                let r = (c[i] * p[i] * (1 - p[i]) / total).squareRoot()
                for j in 0 ..< d { s[i * D + j] = Float(r * z[i * d + j]) }
                s[i * D + d] = Float(r)
            }
            GEMM.sgemm(transA: true, m: D, n: D, k: n, a: s, lda: D, b: s, ldb: D, c: &h, ldc: D, workers: workers)
            var hd = h.map(Double.init)
            for j in 0 ..< d { hd[j * D + j] += l2 }
            hd[d * D + d] += 1e-10
            guard let step = choleskySolve(hd, g.map { -$0 }, n: D) else { break }
            // Backtracking: Newton steps are full near the optimum; far from it the loss must still fall.
            var t = 1.0, accepted = false
            let slope = zip(g, step).map { $0 * $1 }.reduce(0, +)
            while t > 1e-8 {
                let trial = zip(theta, step).map { $0 + t * $1 }
                let r = lossAndGradient(theta: trial, z: z, rows: n, dim: d, labels: labels, sampleWeights: c, l2: l2)
                if r.loss <= loss + 1e-4 * t * slope {
                    let improvement = loss - r.loss
                    theta = trial; loss = r.loss; g = r.gradient; p = r.p; accepted = true
                    converged = improvement < 1e-13 * max(1, abs(loss))
                    break
                }
                t *= 0.5
            }
            if !accepted { break }
        }
        let gnorm = g.map { $0 * $0 }.reduce(0, +).squareRoot()
        return Fit(model: LogisticModel(mean: mean, scale: scale, weights: Array(theta[0 ..< d]), bias: theta[d]),
                   loss: loss, gradientNorm: gnorm, iterations: iterations)
    }

    /// Solves A x = b for a symmetric positive definite A (n × n, row-major); nil if A is not SPD.
    public static func choleskySolve(_ a: [Double], _ b: [Double], n: Int) -> [Double]? { Cholesky.solve(a, b, n: n) }
}
