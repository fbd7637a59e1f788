import Foundation

/// Reusable 64-byte-aligned scratch memory for kernels (packing panels, per-worker tiles).
///
/// Kernels take scratch from here instead of allocating per call: after the first call of a
/// given size a kernel runs allocation-free, and fresh pages are not faulted in on every call.
/// Thread-safe; each `withScratch` hands out a buffer no other caller holds.
public enum Workspace {
    private final class Pool: @unchecked Sendable {
        let lock = NSLock()
        var free: [(UnsafeMutableRawPointer, Int)] = []
    }
    private static let pool = Pool()

    /// Runs `body` with at least `count` floats of aligned scratch, returned to the pool afterwards.
    public static func withScratch<R>(floats count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let bytes = max(64, count * MemoryLayout<Float>.stride)
        let buffer = acquire(bytes)
        defer { release(buffer) }
        return try body(buffer.0.bindMemory(to: Float.self, capacity: buffer.1 / 4))
    }

    private static func acquire(_ bytes: Int) -> (UnsafeMutableRawPointer, Int) {
        pool.lock.lock()
        // Best fit among buffers large enough; else grow by replacing the largest free one.
        var best = -1
        for (i, entry) in pool.free.enumerated() where entry.1 >= bytes {
            if best < 0 || entry.1 < pool.free[best].1 { best = i }
        }
        if best >= 0 {
            let entry = pool.free.remove(at: best)
            pool.lock.unlock()
            return entry
        }
        var dropped: UnsafeMutableRawPointer?
        if let largest = pool.free.indices.max(by: { pool.free[$0].1 < pool.free[$1].1 }) {
            dropped = pool.free.remove(at: largest).0
        }
        pool.lock.unlock()
        dropped?.deallocate()
        let size = (bytes + 4095) & ~4095
        return (UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64), size)
    }

    private static func release(_ entry: (UnsafeMutableRawPointer, Int)) {
        pool.lock.lock()
        pool.free.append(entry)
        pool.lock.unlock()
    }
}
