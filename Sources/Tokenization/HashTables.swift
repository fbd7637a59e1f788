import Foundation

/// Open-addressing UInt64 -> UInt64 map with linear probing and a multiplicative hash; used for the merge
/// pair table (Swift's Dictionary hashes with SipHash, which dominated the merge loop).
/// `UInt64.max` is reserved as the empty-slot key.
struct U64Map {
    private(set) var keys: [UInt64]
    private(set) var values: [UInt64]
    private(set) var count = 0
    private var shift: UInt64

    init(capacityLog2: Int = 10) {
        keys = [UInt64](repeating: .max, count: 1 << capacityLog2)
        values = [UInt64](repeating: 0, count: 1 << capacityLog2)
        shift = UInt64(64 - capacityLog2)
    }

    @inline(__always) private func slot(_ k: UInt64) -> Int { Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    @inline(__always) func get(_ k: UInt64) -> UInt64? {
        let mask = keys.count - 1
        var i = slot(k)
        return keys.withUnsafeBufferPointer { kb in
            while true {
                let x = kb[i]
                if x == k { return values[i] }
                if x == .max { return nil }
                i = (i + 1) & mask
            }
        }
    }

    /// Inserts unless present; returns false when the key already exists.
    @discardableResult
    mutating func insertNew(_ k: UInt64, _ v: UInt64) -> Bool {
        precondition(k != .max, "reserved key")
        if (count + 1) * 2 > keys.count { grow() }
        let mask = keys.count - 1
        var i = slot(k)
        while keys[i] != .max {
            if keys[i] == k { return false }
            i = (i + 1) & mask
        }
        keys[i] = k; values[i] = v; count += 1
        return true
    }

    private mutating func grow() {
        let oldK = keys, oldV = values
        let log2 = 64 - Int(shift) + 1
        keys = [UInt64](repeating: .max, count: 1 << log2)
        values = [UInt64](repeating: 0, count: 1 << log2)
        shift = UInt64(64 - log2)
        count = 0
        for (k, v) in zip(oldK, oldV) where k != .max { insertNew(k, v) }
    }
}

/// Bounded cache of pre-token bytes -> token ids without per-lookup allocation: keys and ids live in two
/// pools, slots hold (hash, key range, id range). Cleared wholesale when half full. Lock-protected.
final class PieceCache: @unchecked Sendable {
    private struct Slot { var hash: UInt64 = 0; var keyStart: Int32 = 0; var keyLen: Int32 = 0; var idStart: Int32 = 0; var idLen: Int32 = 0 }
    static let capacityLog2 = 18
    private var slots = [Slot](repeating: Slot(), count: 1 << capacityLog2)
    private var keyPool: [UInt8] = []
    private var idPool: [Int32] = []
    private(set) var entries = 0
    private let lock = NSLock()

    var count: Int { lock.lock(); defer { lock.unlock() }; return entries }

    @inline(__always) static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(b.count)
        var i = 0
        let raw = UnsafeRawBufferPointer(b)
        while i + 8 <= b.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x0000_0100_0000_01B3
            h ^= h >> 29
            i += 8
        }
        while i < b.count { h = (h ^ UInt64(b[i])) &* 0x0000_0100_0000_01B3; i += 1 }
        h ^= h >> 32; h = h &* 0x9E37_79B9_7F4A_7C15; h ^= h >> 29
        return h | 1   // 0 marks an empty slot
    }

    /// Appends the cached ids of `key` to `out`; false on a miss.
    func get(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt64, into out: inout [Int32]) -> Bool {
        lock.lock(); defer { lock.unlock() }
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h >> UInt64(64 - PieceCache.capacityLog2))
        while true {
            let s = slots[i]
            if s.hash == 0 { return false }
            if s.hash == h && Int(s.keyLen) == key.count {
                let equal = keyPool.withUnsafeBufferPointer { kp in
                    memcmp(kp.baseAddress! + Int(s.keyStart), key.baseAddress!, key.count) == 0
                }
                if equal {
                    idPool.withUnsafeBufferPointer { ip in
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: ip[Int(s.idStart) ..< Int(s.idStart + s.idLen)]))
                    }
                    return true
                }
            }
            i = (i + 1) & mask
        }
    }

    func put(_ key: UnsafeBufferPointer<UInt8>, hash h: UInt64, _ ids: [Int32]) {
        lock.lock(); defer { lock.unlock() }
        if entries * 2 >= slots.count || keyPool.count + key.count > Int(Int32.max) / 2 {
            slots = [Slot](repeating: Slot(), count: slots.count)
            keyPool.removeAll(keepingCapacity: true); idPool.removeAll(keepingCapacity: true); entries = 0
        }
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h >> UInt64(64 - PieceCache.capacityLog2))
        while slots[i].hash != 0 { i = (i + 1) & mask }
        slots[i] = Slot(hash: h, keyStart: Int32(keyPool.count), keyLen: Int32(key.count),
                        idStart: Int32(idPool.count), idLen: Int32(ids.count))
        keyPool.append(contentsOf: key)
        idPool.append(contentsOf: ids)
        entries += 1
    }
}
