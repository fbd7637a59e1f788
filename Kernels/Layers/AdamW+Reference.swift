import Foundation

extension AdamW {
    /// Double reference of one `step` (same formula and order); updates the arrays in place.
    package static func stepReference(param: inout [Double], grad: [Double], m: inout [Double], v: inout [Double],
                                      step: Int, lr: Double, beta1: Double, beta2: Double, eps: Double,
                                      weightDecay: Double, gradScale: Double = 1) {
        let bc1 = 1 - pow(beta1, Double(step)), bc2 = 1 - pow(beta2, Double(step))
        for i in param.indices {
            let g = grad[i] * gradScale
            param[i] *= 1 - lr * weightDecay
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            param[i] -= lr / bc1 * m[i] / (v[i].squareRoot() / bc2.squareRoot() + eps)
        }
    }
}
