import Dispatch
import Foundation
import XCTest
import Kernels

/// The parallel runtime: every task runs exactly once with the right (ith, nth), regions may follow
/// each other back to back, come from several threads at once, or be nested, and none of that
/// changes a result.
final class ParallelTests: XCTestCase {
    /// Runs one region; returns, for worker indices 0...nth, how often each ran (nth is the count
    /// the region should use) and asserts every run saw that nth.
    private func region(_ workers: Int, maxUseful: Int = .max) -> [Int] {
        let nth = max(1, min(workers, maxUseful))
        let runs = UnsafeMutablePointer<Int>.allocate(capacity: 2 * (nth + 1))
        runs.initialize(repeating: 0, count: 2 * (nth + 1))
        defer { runs.deallocate() }
        Parallel.run(workers: workers, maxUseful: maxUseful) { ith, n in
            runs[ith] += 1
            runs[nth + 1 + ith] = n
        }
        for i in 0 ..< nth { XCTAssertEqual(runs[nth + 1 + i], nth) }
        return Array(UnsafeBufferPointer(start: runs, count: nth + 1))
    }

    func testEveryWorkerRunsOnceForManyBackToBackRegions() {
        for _ in 0 ..< 2000 {
            for w in [1, 2, 3] {
                let c = region(w)
                XCTAssertEqual(Array(c[0 ..< w]), [Int](repeating: 1, count: w))
                XCTAssertEqual(c[w], 0)
            }
        }
        XCTAssertEqual(region(4, maxUseful: 2), [1, 1, 0])
    }

    /// Regions started from two threads at once (one gets the pool, the other falls back) and a
    /// region nested inside a region both complete with every index run once.
    func testConcurrentAndNestedRegions() {
        let n = 4096
        var a = [Int](repeating: 0, count: n), b = [Int](repeating: 0, count: n)
        a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeMutableBufferPointer { pb in
                let ua = UInt(bitPattern: pa.baseAddress!), ub = UInt(bitPattern: pb.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: 2) { which in
                    let p = UnsafeMutablePointer<Int>(bitPattern: which == 0 ? ua : ub)!
                    for round in 0 ..< 200 {
                        Parallel.forEach(n, workers: 2) { i in p[i] += round }
                    }
                }
            }
        }
        let expected = (0 ..< 200).reduce(0, +)
        XCTAssertEqual(Set(a), [expected])
        XCTAssertEqual(Set(b), [expected])

        var nested = [Int](repeating: 0, count: 64)
        nested.withUnsafeMutableBufferPointer { p in
            let u = UInt(bitPattern: p.baseAddress!)
            Parallel.run(workers: 2) { ith, _ in
                let q = UnsafeMutablePointer<Int>(bitPattern: u)! + 32 * ith
                Parallel.forEach(32, workers: 2) { i in q[i] += 1 }
            }
        }
        XCTAssertEqual(Set(nested), [1])
    }

    /// forEach hands out every task exactly once whatever the count and worker count, also when
    /// one worker's own range is slow and the others take tasks from it.
    func testForEachRunsEveryTaskOnceWithStealing() {
        for workers in 1 ... 4 {
            for count in [1, 2, 3, 7, 16, 31, 64, 67] {
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in
                    let u = UInt(bitPattern: h.baseAddress!)
                    Parallel.forEach(count, workers: workers) { t in
                        // The first worker's range sleeps, so a second worker runs out first and steals.
                        if t < count / max(1, workers) { usleep(200) }
                        UnsafeMutablePointer<Int>(bitPattern: u)![t] += 1
                    }
                }
                XCTAssertEqual(hits, [Int](repeating: 1, count: count), "workers \(workers) count \(count)")
            }
        }
    }
}
