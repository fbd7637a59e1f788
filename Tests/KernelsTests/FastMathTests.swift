import Foundation
import Kernels
import TestSupport
import XCTest

final class FastMathTests: XCTestCase {
    func testVExpRelativeErrorWithinDocumentedBound() {
        // A dense sweep of [-87, 88] plus values near the reduction boundaries (n·ln2 ± ln2/2).
        var xs: [Float] = []
        let n = isReleaseBuild ? 2_000_000 : 200_000
        for i in 0 ... n { xs.append(-87 + 175 * Float(i) / Float(n)) }
        for k in -125 ... 126 {
            let c = Float(Double(k) * M_LN2)
            for d: Float in [-0.3466, 0.3465, 0.34657, -0.34657, 0] { xs.append(c + d) }
        }
        xs = xs.filter { $0 >= -87 && $0 <= 88 }
        var worst = 0.0, at: Float = 0
        var i = 0
        while i + vLanes <= xs.count {
            var v = VFloat()
            for j in 0 ..< vLanes { v[j] = xs[i + j] }
            let e = vexp(v)
            for j in 0 ..< vLanes {
                let ref = Foundation.exp(Double(xs[i + j]))
                let rel = abs(Double(e[j]) - ref) / ref
                if rel > worst || rel.isNaN { worst = rel.isNaN ? .infinity : rel; at = xs[i + j] }
            }
            i += vLanes
        }
        print("vexp max relative error \(worst) at x = \(at) (lanes \(vLanes))")
        XCTAssertLessThanOrEqual(worst, FastMath.expMaxRelativeError, "vexp at \(at)")
    }

    func testVExpSpecialValues() {
        var v = VFloat(repeating: 0)
        let specials: [Float] = [-.infinity, -1000, -87.5, 0, 88.5, .nan, 1, -1]
        for j in 0 ..< min(vLanes, specials.count) { v[j] = specials[j] }
        let e = vexp(v)
        XCTAssertEqual(e[0], 0); XCTAssertEqual(e[1], 0); XCTAssertEqual(e[2], 0)
        XCTAssertEqual(e[3], 1)
        if vLanes >= 8 {
            XCTAssertEqual(e[4], fastExp(88), "saturates at exp(88)")
            XCTAssertTrue(e[5].isNaN)
            XCTAssertEqual(Double(e[6]), M_E, accuracy: M_E * FastMath.expMaxRelativeError)
        }
        XCTAssertEqual(Double(fastExp(-1)), exp(-1.0), accuracy: exp(-1.0) * FastMath.expMaxRelativeError)
    }
}
