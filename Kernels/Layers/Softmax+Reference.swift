import Foundation

extension Softmax {
    /// Double reference of `forward`.
    package static func forwardReference(_ inp: [Double], rows: Int, columns: Int) -> [Double] {
        var out = [Double](repeating: 0, count: rows * columns)
        for r in 0 ..< rows {
            let row = inp[r * columns ..< (r + 1) * columns]
            let m = row.max()!
            if m == -.infinity { continue }
            let e = row.map { exp($0 - m) }
            let s = e.reduce(0, +)
            for c in 0 ..< columns { out[r * columns + c] = e[c] / s }
        }
        return out
    }
}
