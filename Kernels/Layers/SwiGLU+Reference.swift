import Foundation

extension SwiGLU {
    /// Double reference of `forward`.
    package static func forwardReference(gate: [Double], up: [Double]) -> [Double] {
        zip(gate, up).map { g, u in g / (1 + exp(-g)) * u }
    }
}
