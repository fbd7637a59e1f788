import Foundation

/// A trainer's full state: a JSON header and three float arrays (adapter values, optimiser moments).
///
/// File format (little-endian): "STCK", UInt32 version 1, UInt64 header length, the header JSON,
/// then three (UInt64 count, count·Float32) arrays: parameters, m, v. Floats are stored as their
/// bit patterns, so a restored run continues bit for bit.
public struct TrainerCheckpoint: Equatable, Sendable {
    public struct Header: Codable, Equatable, Sendable {
        public var format = "safetune-trainer-checkpoint"
        public var options: TrainerOptions
        public var loraConfig: LoRAConfig
        public var modelConfig: LlamaConfig
        public var step: Int
        public var epoch: Int
        public var cursor: Int
        public var optimizerStep: Int
        public var trainSamples: Int
        /// `Trainer.dataHash` of the training set (nil in checkpoints written before it existed).
        public var dataHash: UInt64?
        public var history: [StepRecord]
    }
    public var header: Header
    public var parameters: [Float]
    public var m: [Float]
    public var v: [Float]

    static let magic: [UInt8] = Array("STCK".utf8)

    public func write(to url: URL) throws {
        var data = Data(TrainerCheckpoint.magic)
        func put<T: FixedWidthInteger>(_ x: T) { withUnsafeBytes(of: x.littleEndian) { data.append(contentsOf: $0) } }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(header)
        put(UInt32(1))
        put(UInt64(json.count))
        data.append(json)
        for a in [parameters, m, v] {
            put(UInt64(a.count))
            for x in a { put(x.bitPattern) }
        }
        try data.write(to: url, options: .atomic)
    }

    /// Reads a checkpoint, treating every length as hostile.
    public static func read(from url: URL) throws -> TrainerCheckpoint {
        let data = try Data(contentsOf: url)
        func bad(_ what: String) -> LlamaError { .invalidInput("checkpoint \(url.lastPathComponent): \(what)") }
        var at = 0
        func take(_ n: Int, _ what: String) throws -> Data {
            guard n >= 0, n <= data.count - at else { throw bad("\(what) needs \(n) bytes at offset \(at), file has \(data.count)") }
            defer { at += n }
            return data.subdata(in: data.startIndex + at ..< data.startIndex + at + n)
        }
        func int<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
            let d = try take(MemoryLayout<T>.size, what)
            var x = T.zero
            _ = withUnsafeMutableBytes(of: &x) { d.copyBytes(to: $0) }
            return T(littleEndian: x)
        }
        guard try Array(take(4, "magic")) == magic else { throw bad("not a trainer checkpoint (bad magic)") }
        let version = try int(UInt32.self, "version")
        guard version == 1 else { throw bad("unsupported version \(version)") }
        let headerLength = try int(UInt64.self, "header length")
        guard headerLength <= UInt64(data.count) else { throw bad("header length \(headerLength) exceeds the file") }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: try take(Int(headerLength), "header")) }
        catch let e as LlamaError { throw e }
        catch { throw bad("header is not valid JSON: \(error)") }
        var arrays: [[Float]] = []
        for name in ["parameters", "m", "v"] {
            let n = try int(UInt64.self, "\(name) count")
            guard n <= UInt64(data.count - at) / 4 else { throw bad("\(name) count \(n) exceeds the file") }
            let bytes = try take(Int(n) * 4, name)
            var a = [Float](repeating: 0, count: Int(n))
            a.withUnsafeMutableBytes { _ = bytes.copyBytes(to: $0) }
            for i in 0 ..< a.count { a[i] = Float(bitPattern: UInt32(littleEndian: a[i].bitPattern)) }
            arrays.append(a)
        }
        guard at == data.count else { throw bad("\(data.count - at) trailing bytes") }
        return TrainerCheckpoint(header: header, parameters: arrays[0], m: arrays[1], v: arrays[2])
    }
}
