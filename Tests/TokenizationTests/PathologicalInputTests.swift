import Foundation
import XCTest
import Tokenization
import TestSupport

/// Long inputs that defeat naive implementations: one giant pre-token (heap merge path), long whitespace
/// runs, many special tokens, and concurrent use of one tokenizer.
final class PathologicalInputTests: XCTestCase {
    func testLongRunsStayFastAndRoundTrip() throws {
        let (t, _) = try SmolLM2.load()
        let n = isReleaseBuild ? 200_000 : 20_000
        for s in [String(repeating: "a", count: n), String(repeating: " ", count: n), String(repeating: "\n", count: n / 4),
                  String(repeating: "<|im_end|>", count: n / 20), String(repeating: "é😀", count: n / 8)] {
            let start = DispatchTime.now().uptimeNanoseconds
            let ids = t.encode(s, addSpecial: false)
            let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            XCTAssertEqual(t.decode(ids), s)
            XCTAssertLessThan(ids.count, s.utf8.count + 1)
            if isReleaseBuild { XCTAssertLessThan(secs, 2, "\(s.prefix(3).debugDescription)… took \(secs) s") }
        }
    }

    func testConcurrentEncodingIsDeterministic() throws {
        let (t, _) = try SmolLM2.load()
        let texts = trickyCorpus
        let expected = texts.map { t.encode($0) }
        let results = UnsafeMutableBufferPointer<[[Int]]>.allocate(capacity: 4)
        results.initialize(repeating: [])
        defer { results.deinitialize(); results.deallocate() }
        let box = UInt(bitPattern: results.baseAddress)
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            let p = UnsafeMutablePointer<[[Int]]>(bitPattern: box)!
            p[w] = texts.map { t.encode($0) }
        }
        for w in 0 ..< 4 { XCTAssertEqual(results[w], expected, "worker \(w)") }
    }
}
