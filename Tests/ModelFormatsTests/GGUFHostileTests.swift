import Foundation
import XCTest
import ModelFormats
import TestSupport

/// Hand-assembled GGUF bytes, so tests can write any (wrong) value.
struct RawGGUF {
    var d = Data()
    mutating func u8(_ v: UInt8) { d.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8)) }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        d.append(contentsOf: Array("GGUF".utf8)); u32(version); u64(tensors); u64(kvs)
    }
    mutating func kvU32(_ k: String, _ v: UInt32) { str(k); u32(4); u32(v) }
    mutating func tensorInfo(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        str(name); u32(UInt32(dims.count)); for x in dims { u64(x) }; u32(type); u64(offset)
    }
    mutating func pad(_ a: Int = 32) { while d.count % a != 0 { d.append(0) } }
    mutating func zeros(_ n: Int) { d.append(contentsOf: [UInt8](repeating: 0, count: n)) }
}

final class GGUFHostileTests: XCTestCase {
    func expect(_ data: Data, _ kind: FormatError.Kind, _ context: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try GGUFFile(data: data)
            XCTFail("expected \(kind) error, parse succeeded", file: file, line: line)
        } catch let e as FormatError {
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            if let context { XCTAssertEqual(e.context, context, "\(e)", file: file, line: line) }
            XCTAssertFalse(e.description.isEmpty)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func valid() -> Data {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("tokenizer.ggml.tokens", .strings(["a", "b", "Ġc"]))
        w.set("x.nested", .array(.array, [.array(.uint8, [.uint8(1)])]))
        try! w.addTensor("w", dims: [4, 2], floats: [1, 2, 3, 4, 5, 6, 7, 8])
        try! w.addTensor("q", type: .q8_0, dims: [32], bytes: [UInt8](repeating: 1, count: 34))
        return try! w.serialize()
    }

    func testEveryTruncationFailsCleanly() throws {
        let data = valid()
        let full = try GGUFFile(data: data)
        let lastEnd = full.tensors.map { $0.fileOffset + $0.byteCount }.max()!
        for n in 0 ..< data.count {
            if n >= lastEnd {
                // Only trailing alignment padding is cut: still a complete file.
                XCTAssertNoThrow(try GGUFFile(data: data.prefix(n)), "prefix \(n)")
                continue
            }
            XCTAssertThrowsError(try GGUFFile(data: data.prefix(n)), "prefix \(n) of \(data.count)") { e in
                XCTAssertTrue(e is FormatError, "\(e)")
            }
        }
    }

    func testMagicAndVersion() {
        var r = RawGGUF(); r.d.append(contentsOf: Array("GGML".utf8)); r.u32(3); r.u64(0); r.u64(0)
        expect(r.d, .badMagic)
        for v: UInt32 in [1, 4, 0x0300_0000] {
            var r = RawGGUF(); r.header(version: v, tensors: 0, kvs: 0)
            expect(r.d, .unsupportedVersion, "header")
        }
        var ok = RawGGUF(); ok.header(version: 2, tensors: 0, kvs: 0)
        XCTAssertNoThrow(try GGUFFile(data: ok.d))
    }

    func testAbsurdCounts() {
        var r = RawGGUF(); r.header(tensors: 0, kvs: UInt64.max); expect(r.d, .invalidValue, "header")
        r = RawGGUF(); r.header(tensors: 1 << 62, kvs: 0); expect(r.d, .invalidValue, "header")
        // A string length far beyond the file.
        r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.u64(UInt64.max); r.zeros(16)
        expect(r.d, .truncated, "metadata #0")
        // A value string length past the end, naming the key.
        r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.str("general.name"); r.u32(8); r.u64(1 << 40); r.zeros(8)
        expect(r.d, .truncated, "general.name")
        // Array counts that cannot fit (would allocate 2^60 elements if trusted).
        r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.str("tokenizer.ggml.tokens"); r.u32(9); r.u32(8); r.u64(1 << 60); r.zeros(64)
        expect(r.d, .invalidValue, "tokenizer.ggml.tokens")
        r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.str("arr"); r.u32(9); r.u32(0); r.u64(17); r.zeros(16)
        expect(r.d, .invalidValue, "arr")
        // Deeply nested arrays stop at the nesting limit, not the stack.
        r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.str("deep"); r.u32(9)
        for _ in 0 ..< 200 { r.u32(9); r.u64(1) }
        r.u32(0); r.u64(0)
        expect(r.d, .invalidValue, "deep")
    }

    func testUnknownTypes() {
        var r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.str("k"); r.u32(13); r.zeros(8)
        expect(r.d, .unknownType, "k")
        r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.str("k"); r.u32(9); r.u32(99); r.u64(0)
        expect(r.d, .unknownType, "k")
        for bad: UInt32 in [4, 5, 31, 36, 1000] {
            r = RawGGUF(); r.header(tensors: 1, kvs: 0); r.tensorInfo("t", dims: [32], type: bad, offset: 0); r.pad(); r.zeros(256)
            expect(r.d, .unknownType, "t")
        }
        r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.str("b"); r.u32(7); r.u8(2)
        expect(r.d, .invalidValue, "b")
    }

    func testTensorGeometry() {
        func one(_ dims: [UInt64], type: UInt32 = 0, offset: UInt64 = 0, dataBytes: Int = 64) -> Data {
            var r = RawGGUF(); r.header(tensors: 1, kvs: 0); r.tensorInfo("t", dims: dims, type: type, offset: offset)
            r.pad(); r.zeros(dataBytes); return r.d
        }
        XCTAssertNoThrow(try GGUFFile(data: one([4, 4])))
        expect(one([4, 5]), .outOfBounds, "t")                    // 80 bytes > 64
        expect(one([4], offset: 64), .outOfBounds, "t")           // starts at the end
        expect(one([4], offset: 1 << 62), .outOfBounds, "t")      // offset past the file
        expect(one([4], offset: 8), .misaligned, "t")
        expect(one([0]), .invalidValue, "t")
        expect(one([1, 1, 1, 1, 1]), .invalidValue, "t")          // 5 dims
        expect(one([]), .invalidValue, "t")
        expect(one([33], type: 8), .invalidValue, "t")            // Q8_0 row not a multiple of 32
        expect(one([1 << 34, 1 << 34, 1 << 34]), .invalidValue, "t") // element count overflow
        expect(one([UInt64.max]), .invalidValue, "t")
    }

    func testDuplicatesAndOverlaps() {
        var r = RawGGUF(); r.header(tensors: 0, kvs: 2); r.kvU32("k", 1); r.kvU32("k", 2)
        expect(r.d, .duplicate, "k")
        r = RawGGUF(); r.header(tensors: 2, kvs: 0)
        r.tensorInfo("t", dims: [4], type: 0, offset: 0); r.tensorInfo("t", dims: [4], type: 0, offset: 32); r.pad(); r.zeros(64)
        expect(r.d, .duplicate, "t")
        r = RawGGUF(); r.header(tensors: 2, kvs: 0)
        r.tensorInfo("a", dims: [16], type: 0, offset: 0); r.tensorInfo("b", dims: [4], type: 0, offset: 32); r.pad(); r.zeros(128)
        expect(r.d, .outOfBounds, "b")
    }

    func testAlignmentKey() {
        func withAlignment(_ v: UInt32) -> Data {
            var r = RawGGUF(); r.header(tensors: 1, kvs: 1); r.kvU32("general.alignment", v)
            r.tensorInfo("t", dims: [4], type: 0, offset: 0); r.pad(Int(max(v, 1)) <= 4096 && v & (v &- 1) == 0 && v > 0 ? Int(v) : 32); r.zeros(16)
            return r.d
        }
        XCTAssertEqual(try GGUFFile(data: withAlignment(64)).alignment, 64)
        expect(withAlignment(0), .invalidValue, "general.alignment")
        expect(withAlignment(48), .invalidValue, "general.alignment")
        var r = RawGGUF(); r.header(tensors: 0, kvs: 1); r.str("general.alignment"); r.u32(8); r.str("32")
        expect(r.d, .invalidValue, "general.alignment")
    }

    /// Random byte corruption of a valid file: every mutant either parses (and then all tensor views lie
    /// inside the file) or throws a FormatError. A crash fails the whole run.
    func testRandomCorruptionNeverCrashes() throws {
        let base = valid()
        var rng = SeededRNG(seed: 2024)
        var parsed = 0
        for _ in 0 ..< (isReleaseBuild ? 20000 : 3000) {
            var d = base
            for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
                let i = Int.random(in: 0 ..< d.count, using: &rng)
                d[i] = Bool.random(using: &rng) ? UInt8.random(in: 0 ... 255, using: &rng) : d[i] ^ (1 << UInt8.random(in: 0 ... 7, using: &rng))
            }
            do {
                let f = try GGUFFile(data: d)
                parsed += 1
                for t in f.tensors {
                    XCTAssertLessThanOrEqual(t.fileOffset + t.byteCount, d.count)
                    XCTAssertEqual(try f.tensor(t.name).bytes.count, t.byteCount)
                }
            } catch is FormatError {
            } catch { XCTFail("non-FormatError \(error)") }
        }
        XCTAssertGreaterThan(parsed, 0, "some mutants (in tensor data) must still parse")
    }
}
