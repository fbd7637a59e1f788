import Foundation
import XCTest
import ModelFormats
import TestSupport

final class GGUFTests: XCTestCase {
    /// Metadata with every value type, nested and empty arrays.
    static func allTypesMetadata() -> [(String, GGUFValue)] {
        [
            ("general.architecture", .string("llama")),
            ("t.u8", .uint8(250)), ("t.i8", .int8(-7)), ("t.u16", .uint16(65000)), ("t.i16", .int16(-32000)),
            ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)),
            ("t.u64", .uint64(18_000_000_000_000_000_000)), ("t.i64", .int64(-9_000_000_000_000_000_000)),
            ("t.f32", .float32(3.25)), ("t.f64", .float64(-1e-300)), ("t.true", .bool(true)), ("t.false", .bool(false)),
            ("t.str", .string("héllo ▁ 😀\n")), ("t.empty", .string("")),
            ("t.strs", .strings(["a", "", "Ġthe", "<|im_end|>"])), ("t.floats", .float32s([1, -2.5, .infinity])),
            ("t.ints", .int32s([1, -2, 3])), ("t.emptyarr", .array(.uint64, [])),
            ("t.nested", .array(.array, [.array(.int8, [.int8(1), .int8(-1)]), .array(.string, [.string("x")]),
                                         .array(.array, [.array(.bool, [.bool(true)])])])),
            ("llama.block_count", .uint32(2)),
        ]
    }

    func makeWriter(version: UInt32 = 3, alignment: Int = 32) throws -> GGUFWriter {
        var w = GGUFWriter(version: version, alignment: alignment)
        for (k, v) in Self.allTypesMetadata() { w.set(k, v) }
        var rng = SeededRNG(seed: 7)
        try w.addTensor("a.f32", dims: [5, 3], floats: uniformFloats(15, &rng))
        try w.addTensor("b.f16", type: .f16, dims: [7], bytes: (0 ..< 14).map { _ in UInt8.random(in: 0 ... 255, using: &rng) })
        try w.addTensor("c.q8_0", type: .q8_0, dims: [64, 2], bytes: (0 ..< 136).map { _ in UInt8.random(in: 0 ... 255, using: &rng) })
        try w.addTensor("d.q4_1", type: .q4_1, dims: [32, 1, 3], bytes: (0 ..< 60).map { _ in UInt8.random(in: 0 ... 255, using: &rng) })
        return w
    }

    func testWriterReaderRoundTripAllTypes() throws {
        for version: UInt32 in [2, 3] {
            for alignment in [32, 64, 8] {
                let w = try makeWriter(version: version, alignment: alignment)
                let data = try w.serialize()
                let f = try GGUFFile(data: data)
                XCTAssertEqual(f.version, version)
                XCTAssertEqual(f.alignment, alignment)
                XCTAssertEqual(f.dataOffset % alignment, 0)
                for (k, v) in Self.allTypesMetadata() { XCTAssertEqual(f.metadata[k], v, "key \(k)") }
                XCTAssertEqual(f.metadata.keys.first, "general.architecture", "file order kept")
                XCTAssertEqual(f.tensors.map(\.name), w.tensors.map(\.name))
                for t in w.tensors {
                    let view = try f.tensor(t.name)
                    XCTAssertEqual(view.dims, t.dims)
                    XCTAssertEqual(view.type, t.type)
                    XCTAssertEqual(Array(view.bytes), t.bytes, t.name)
                    XCTAssertEqual(view.info.fileOffset % alignment, 0)
                    XCTAssertEqual(view.info.shape, t.dims.reversed())
                }
            }
        }
    }

    func testTypedAccessors() throws {
        let f = try GGUFFile(data: try makeWriter().serialize())
        let m = f.metadata
        XCTAssertEqual(m.int("llama.block_count"), 2)
        XCTAssertEqual(m.int("t.i64"), -9_000_000_000_000_000_000)
        XCTAssertNil(m.int("t.u64"), "UInt64 above Int.max is not an Int")
        XCTAssertEqual(m.float("t.f32"), 3.25)
        XCTAssertEqual(m.string("t.str"), "héllo ▁ 😀\n")
        XCTAssertEqual(m.strings("t.strs"), ["a", "", "Ġthe", "<|im_end|>"])
        XCTAssertEqual(m.floats("t.floats"), [1, -2.5, .infinity])
        XCTAssertEqual(m.ints("t.ints"), [1, -2, 3])
        XCTAssertEqual(m.bool("t.true"), true)
        XCTAssertNil(m.string("llama.block_count"))
        XCTAssertNil(m.int("absent"))
        XCTAssertThrowsError(try m.requireInt("absent")) { XCTAssertEqual(($0 as? FormatError)?.kind, .missing) }
        XCTAssertThrowsError(try m.requireString("t.u8")) { XCTAssertEqual(($0 as? FormatError)?.kind, .typeMismatch) }
        XCTAssertThrowsError(try f.tensor("nope")) { XCTAssertEqual(($0 as? FormatError)?.kind, .missing) }
    }

    func testAtomicWriteToFileAndMappedRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("tiny.gguf").path
        let w = try makeWriter()
        try w.write(to: path)
        try w.write(to: path) // overwrite in place
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["tiny.gguf"], "no temp files left")
        let f = try GGUFFile(path: path)
        XCTAssertEqual(f.fileSize, try w.serialize().count)
        let floats = try f.withTensor("a.f32") { v in Array(v.bytes.bindMemory(to: Float.self)) }
        var rng = SeededRNG(seed: 7)
        XCTAssertEqual(floats, uniformFloats(15, &rng))
    }

    func testWriterRejectsBadTensors() throws {
        var w = GGUFWriter()
        XCTAssertThrowsError(try w.addTensor("x", type: .q8_0, dims: [31], bytes: [UInt8](repeating: 0, count: 34)))
        XCTAssertThrowsError(try w.addTensor("x", type: .f32, dims: [2], bytes: [0, 0, 0]))
        try w.addTensor("x", type: .f32, dims: [1], bytes: [0, 0, 0, 0])
        XCTAssertThrowsError(try w.addTensor("x", type: .f32, dims: [1], bytes: [0, 0, 0, 0])) {
            XCTAssertEqual(($0 as? FormatError)?.kind, .duplicate)
        }
    }

    /// F16 and Q8_0 encoders: decode with the block layout (d: F16, then 32 int8) and bound the error.
    func testFloatEncoders() throws {
        var rng = SeededRNG(seed: 21)
        var x = normalFloats(96, &rng, scale: 3)
        x[40] = 0; for i in 64 ..< 96 { x[i] = 0 }   // an all-zero block must give d = 0, q = 0
        var w = GGUFWriter()
        try w.addTensor("q", dims: [32, 3], floats: x, as: .q8_0)
        try w.addTensor("h", dims: [96], floats: x, as: .f16)
        XCTAssertThrowsError(try w.addTensor("bad", dims: [33], floats: [Float](repeating: 1, count: 33), as: .q8_0))
        XCTAssertThrowsError(try w.addTensor("bad2", dims: [256], floats: [Float](repeating: 1, count: 256), as: .q2_K))
        let f = try GGUFFile(data: w.serialize())
        let q = try f.tensor("q")
        XCTAssertEqual(q.bytes.count, 3 * 34)
        for blk in 0 ..< 3 {
            let base = blk * 34
            let d16 = Float(Float16(bitPattern: UInt16(q.bytes[base]) | UInt16(q.bytes[base + 1]) << 8))
            let amax = x[(blk * 32) ..< (blk * 32 + 32)].map(abs).max()!
            let d = amax / 127
            for i in 0 ..< 32 {
                let qi = Float(Int8(bitPattern: q.bytes[base + 2 + i]))
                let bound = Double(0.5 * d + 127 * abs(d16 - d)) * (1 + 1e-6)
                XCTAssertLessThanOrEqual(Double(abs(d16 * qi - x[blk * 32 + i])), bound, "block \(blk) element \(i)")
            }
            if amax == 0 { XCTAssertEqual(d16, 0) }
        }
        let h = try f.tensor("h")
        for i in 0 ..< 96 {
            let v = Float(Float16(bitPattern: UInt16(h.bytes[2 * i]) | UInt16(h.bytes[2 * i + 1]) << 8))
            XCTAssertEqual(v, Float(Float16(x[i])))
            XCTAssertLessThanOrEqual(abs(v - x[i]), abs(x[i]) * 0x1p-11 + 0x1p-25)
        }
    }

    /// Q4_0 / Q4_1 encoders, decoded with the documented block layout; error within half a step plus the
    /// F16 rounding of the scales.
    func testQ4Encoders() throws {
        var rng = SeededRNG(seed: 33)
        var x = normalFloats(128, &rng, scale: 2)
        for i in 96 ..< 128 { x[i] = 0.75 }   // constant block: d = 0 (Q4_1) / exact (Q4_0)
        var w = GGUFWriter()
        try w.addTensor("a", dims: [64, 2], floats: x, as: .q4_0)
        try w.addTensor("b", dims: [64, 2], floats: x, as: .q4_1)
        XCTAssertThrowsError(try w.addTensor("nan", dims: [32], floats: [Float](repeating: .nan, count: 32), as: .q4_1))
        XCTAssertThrowsError(try w.addTensor("rows", dims: [16, 2], floats: [Float](repeating: 0, count: 32), as: .q4_0))
        let f = try GGUFFile(data: w.serialize())
        func f16(_ p: UnsafeRawBufferPointer, _ o: Int) -> Float { Float(Float16(bitPattern: UInt16(p[o]) | UInt16(p[o + 1]) << 8)) }
        for (name, isQ41) in [("a", false), ("b", true)] {
            let t = try f.tensor(name)
            let bpb = isQ41 ? 20 : 18
            XCTAssertEqual(t.bytes.count, 4 * bpb)
            for blk in 0 ..< 4 {
                let base = blk * bpb
                let d = f16(t.bytes, base), m = isQ41 ? f16(t.bytes, base + 2) : 0
                let qs = base + (isQ41 ? 4 : 2)
                let vals = x[(blk * 32) ..< (blk * 32 + 32)]
                let range = isQ41 ? Double(vals.max()! - vals.min()!) : Double(vals.map(abs).max()!) * 2
                for j in 0 ..< 32 {
                    let byte = t.bytes[qs + (j % 16)]
                    let q = Float(j < 16 ? byte & 0x0F : byte >> 4)
                    let y = isQ41 ? d * q + m : d * (q - 8)
                    // half a step (range/15 or range/16), plus F16 rounding of d (x16 steps) and m; Q4_0 clamps
                    // q = 16 to 15 (a value of the opposite sign to the largest one), costing a full step.
                    let steps = !isQ41 && q == 15 ? 1.0 : 0.5
                    let bound = range / 15 * steps + 16 * Double(abs(d)) * 0x1p-11 + Double(abs(m)) * 0x1p-11 + 1e-6
                    XCTAssertLessThanOrEqual(Double(abs(y - x[blk * 32 + j])), bound, "\(name) block \(blk) element \(j)")
                }
            }
        }
    }

    func testTypeTable() {
        XCTAssertEqual(GGMLType.from(id: 3)?.bytesPerBlock, 20)
        XCTAssertEqual(GGMLType.from(id: 8)?.rowBytes(elements: 576), 18 * 34)
        XCTAssertEqual(GGMLType.from(id: 14)?.rowBytes(elements: 512), 420)
        XCTAssertNil(GGMLType.from(id: 4), "Q4_2 was removed upstream")
        XCTAssertNil(GGMLType.from(id: 31))
        XCTAssertNil(GGMLType.q4_0.rowBytes(elements: 33))
        XCTAssertEqual(Set(GGMLType.all.map(\.id)).count, GGMLType.all.count)
    }

    // MARK: Real model

    func testRealSmolLM2Header() throws {
        guard let path = smolLM2Path() else { throw XCTSkip(smolLM2MissingMessage) }
        let f = try GGUFFile(path: path)
        let m = f.metadata
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(m.string("general.architecture"), "llama")
        XCTAssertEqual(m.int("llama.block_count"), 30)
        XCTAssertEqual(m.int("llama.embedding_length"), 576)
        XCTAssertEqual(m.int("llama.feed_forward_length"), 1536)
        XCTAssertEqual(m.int("llama.attention.head_count"), 9)
        XCTAssertEqual(m.int("llama.attention.head_count_kv"), 3)
        XCTAssertEqual(m.int("llama.vocab_size"), 49152)
        XCTAssertEqual(m.float("llama.rope.freq_base"), 100_000)
        XCTAssertEqual(m.strings("tokenizer.ggml.tokens")?.count, 49152)
        XCTAssertEqual(m.strings("tokenizer.ggml.merges")?.count, 48900)
        XCTAssertEqual(m.string("tokenizer.ggml.model"), "gpt2")
        XCTAssertEqual(m.string("tokenizer.ggml.pre"), "smollm")
        XCTAssertEqual(m.count, 33)
        XCTAssertEqual(f.tensors.count, 272)
        var byType: [String: Int] = [:]
        for t in f.tensors { byType[t.type.name, default: 0] += 1 }
        XCTAssertEqual(byType, ["Q8_0": 1, "F32": 61, "Q4_1": 210])
        let emb = try f.tensor("token_embd.weight")
        XCTAssertEqual(emb.dims, [576, 49152])
        XCTAssertEqual(emb.bytes.count, 49152 * 18 * 34)
        XCTAssertEqual(f.dataOffset, 1_785_664 + (32 - 1_785_664 % 32) % 32)
        let last = f.tensors.map { $0.fileOffset + $0.byteCount }.max()!
        XCTAssertLessThanOrEqual(last, f.fileSize)
        XCTAssertGreaterThan(last + 32, f.fileSize, "data section ends with the last tensor (plus padding)")
        // An F32 norm weight reads as plausible floats.
        let norm = try f.tensor("blk.0.attn_norm.weight")
        let w = Array(norm.bytes.bindMemory(to: Float.self))
        XCTAssertEqual(w.count, 576)
        XCTAssertTrue(w.allSatisfy { $0.isFinite && abs($0) < 100 })
    }
}
