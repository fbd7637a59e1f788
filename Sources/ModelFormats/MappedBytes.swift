import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only bytes of a whole file: `mmap`ed (files) or an owned copy (in-memory data).
///
/// The base address is stable for the object's lifetime, so views handed out by the GGUF and safetensors
/// readers stay valid as long as the reader (which owns this) is alive.
public final class MappedBytes: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    /// Maps `path` read-only (MAP_PRIVATE). Empty files are represented by an empty buffer.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FormatError(.io, path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FormatError(.io, path, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0); mapped = false; return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw FormatError(.io, path, "cannot mmap \(size) bytes: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size); mapped = true
    }

    /// An owned, 64-byte aligned copy of `data`.
    public init(data: Data) {
        let n = data.count
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 64)
        data.withUnsafeBytes { src in if n > 0 { p.copyMemory(from: src.baseAddress!, byteCount: n) } }
        bytes = UnsafeRawBufferPointer(start: p, count: n); mapped = false
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
        else { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }
}

/// Bounds-checked little-endian reader over a byte buffer. Every read checks `offset + size <= end`
/// and throws a `FormatError(.truncated)` naming `context` otherwise.
struct ByteCursor {
    let base: UnsafeRawBufferPointer
    var offset: Int
    var context = ""

    init(_ base: UnsafeRawBufferPointer, offset: Int = 0) { self.base = base; self.offset = offset }

    var remaining: Int { base.count - offset }

    func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= base.count - offset else {
            throw FormatError(.truncated, context, offset: offset,
                              "\(what) needs \(n) bytes, only \(max(0, base.count - offset)) left in a \(base.count)-byte file")
        }
    }

    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        try need(MemoryLayout<T>.size, what)
        let v = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    /// A GGUF string: u64 length then bytes (decoded as UTF-8, invalid sequences repaired).
    mutating func readString(_ what: String) throws -> String {
        let start = offset
        let n = try read(UInt64.self, "\(what) length")
        guard n <= UInt64(remaining) else {
            throw FormatError(.truncated, context, offset: start,
                              "\(what) length \(n) exceeds the \(remaining) bytes left in the file")
        }
        let len = Int(n)
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: base[offset ..< offset + len]), as: UTF8.self)
        offset += len
        return s
    }
}
