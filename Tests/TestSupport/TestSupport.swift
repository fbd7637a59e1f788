import Foundation
import XCTest

/// Deterministic SplitMix64, so that every failure reproduces from its seed.
public struct SeededRNG: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Standard normal sample (Box-Muller).
    public mutating func normal() -> Double {
        let u1 = max(Double.leastNonzeroMagnitude, Double.random(in: 0 ..< 1, using: &self))
        let u2 = Double.random(in: 0 ..< 1, using: &self)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// `count` uniform floats in `range`.
public func uniformFloats(_ count: Int, _ rng: inout SeededRNG, in range: ClosedRange<Float> = -1 ... 1) -> [Float] {
    (0 ..< count).map { _ in Float.random(in: range, using: &rng) }
}

/// `count` standard normal floats scaled by `scale`.
public func normalFloats(_ count: Int, _ rng: inout SeededRNG, scale: Double = 1) -> [Float] {
    (0 ..< count).map { _ in Float(rng.normal() * scale) }
}

/// Asserts |actual[i] - expected[i]| <= bound(i) for every element; reports the worst one.
public func assertWithinBound(_ actual: [Float], _ expected: [Double], _ what: @autoclosure () -> String,
                              bound: (Int) -> Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what()): count", file: file, line: line)
    var worst = -1, worstRatio = 0.0
    for i in 0 ..< min(actual.count, expected.count) {
        let err = abs(Double(actual[i]) - expected[i])
        let b = bound(i)
        let ratio = err.isNaN ? .infinity : err / max(b, .leastNonzeroMagnitude)
        if err > b || err.isNaN, ratio > worstRatio || worst < 0 { worst = i; worstRatio = ratio }
    }
    if worst >= 0 {
        XCTFail("\(what()): element \(worst) is \(actual[worst]), expected \(expected[worst]) ± \(bound(worst)) (error/bound \(worstRatio))",
                file: file, line: line)
    }
}

/// |x - r| <= atol + rtol·|r| elementwise.
public func assertClose(_ actual: [Float], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
                        _ what: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) {
    assertWithinBound(actual, expected, what(), bound: { atol + rtol * abs(expected[$0]) }, file: file, line: line)
}

/// Central-difference gradient of `f` at `x` in Double; `precise` uses the 4-point stencil.
public func numericalGradient(of f: ([Double]) -> Double, at x: [Double], h: Double = 1e-5,
                              precise: Bool = false) -> [Double] {
    var x = x
    var g = [Double](repeating: 0, count: x.count)
    for i in 0 ..< x.count {
        let x0 = x[i]
        x[i] = x0 + h; let fp = f(x)
        x[i] = x0 - h; let fm = f(x)
        if precise {
            x[i] = x0 + 2 * h; let fp2 = f(x)
            x[i] = x0 - 2 * h; let fm2 = f(x)
            g[i] = (8 * (fp - fm) - (fp2 - fm2)) / (12 * h)
        } else {
            g[i] = (fp - fm) / (2 * h)
        }
        x[i] = x0
    }
    return g
}

/// |a - n| / max(|a| + |n|, floor) <= rtol per element; fails on the worst.
public func assertGradientsMatch(analytic: [Float], numeric: [Double], _ what: String,
                                 rtol: Double = 1e-4, floor: Double = 1e-6,
                                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(analytic.count, numeric.count, "\(what): count", file: file, line: line)
    var worst = 0.0, at = -1
    for i in 0 ..< min(analytic.count, numeric.count) {
        let a = Double(analytic[i]), n = numeric[i]
        let rel = abs(a - n) / max(abs(a) + abs(n), floor)
        if rel > worst || rel.isNaN { worst = rel.isNaN ? .infinity : rel; at = i }
    }
    if worst > rtol {
        XCTFail("\(what): gradient \(at) analytic \(analytic[at]) vs numeric \(numeric[at]) (relative error \(worst))",
                file: file, line: line)
    }
}

/// True when tests run in an optimised build (large shapes are affordable only then).
public var isReleaseBuild: Bool {
    #if DEBUG
    return false
    #else
    return true
    #endif
}

/// The `../shared` folder beside the checkout, when present (real public data).
public func sharedDataDirectory() -> URL? {
    var dir = URL(fileURLWithPath: #filePath)
    for _ in 0 ..< 6 {
        dir.deleteLastPathComponent()
        let candidate = dir.appendingPathComponent("shared/data")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
    }
    if let env = ProcessInfo.processInfo.environment["SAFETUNE_SHARED_DATA"] { return URL(fileURLWithPath: env) }
    return nil
}
