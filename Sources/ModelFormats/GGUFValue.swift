import Foundation

/// GGUF metadata value type ids (`gguf_type` in ggml).
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Smallest encoded size of one value of this type (used to bound array counts before allocating).
    var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string: return 8          // u64 length, possibly zero bytes
        case .array: return 12          // u32 element type + u64 count
        }
    }
}

/// One GGUF metadata value. Arrays keep their element type so that empty arrays round-trip.
public indirect enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        case .array: return .array
        }
    }

    /// Any integer type as Int (nil for non-integers and for UInt64 values above Int.max).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// float32 / float64 (and integers, exactly converted) as Double.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return intValue.map(Double.init)
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var arrayValue: [GGUFValue]? { if case .array(_, let a) = self { return a } else { return nil } }
}

/// Ordered GGUF key-value metadata with typed accessors.
///
/// Accessors return nil when the key is absent or holds another type; the `require…` forms throw a
/// `FormatError` naming the key instead.
public struct GGUFMetadata: Sendable {
    /// Keys in file order.
    public private(set) var keys: [String] = []
    private var values: [String: GGUFValue] = [:]

    public init() {}

    /// Adds a key (replacing an existing value keeps its position).
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Inserts a new key, returning false if it already exists (the reader rejects duplicates with it).
    mutating func insertNew(_ key: String, _ value: GGUFValue) -> Bool {
        guard values[key] == nil else { return false }
        values[key] = value; keys.append(key); return true
    }

    public subscript(key: String) -> GGUFValue? { values[key] }
    public var count: Int { keys.count }
    /// (key, value) pairs in file order.
    public var entries: [(key: String, value: GGUFValue)] { keys.map { ($0, values[$0]!) } }

    public func int(_ key: String) -> Int? { values[key]?.intValue }
    public func float(_ key: String) -> Double? { values[key]?.doubleValue }
    public func bool(_ key: String) -> Bool? { values[key]?.boolValue }
    public func string(_ key: String) -> String? { values[key]?.stringValue }
    /// A string array (nil if any element is not a string).
    public func strings(_ key: String) -> [String]? {
        guard let a = values[key]?.arrayValue else { return nil }
        var out = [String](); out.reserveCapacity(a.count)
        for v in a { guard let s = v.stringValue else { return nil }; out.append(s) }
        return out
    }
    /// A float32/float64 (or integer) array as Float.
    public func floats(_ key: String) -> [Float]? {
        guard let a = values[key]?.arrayValue else { return nil }
        var out = [Float](); out.reserveCapacity(a.count)
        for v in a { guard let d = v.doubleValue else { return nil }; out.append(Float(d)) }
        return out
    }
    /// An integer array (any integer element type).
    public func ints(_ key: String) -> [Int]? {
        guard let a = values[key]?.arrayValue else { return nil }
        var out = [Int](); out.reserveCapacity(a.count)
        for v in a { guard let i = v.intValue else { return nil }; out.append(i) }
        return out
    }

    public func requireInt(_ key: String) throws -> Int {
        guard let v = values[key] else { throw FormatError(.missing, key, "required integer key is absent") }
        guard let i = v.intValue else { throw FormatError(.typeMismatch, key, "expected an integer, found \(v.type)") }
        return i
    }
    public func requireFloat(_ key: String) throws -> Double {
        guard let v = values[key] else { throw FormatError(.missing, key, "required float key is absent") }
        guard let d = v.doubleValue else { throw FormatError(.typeMismatch, key, "expected a number, found \(v.type)") }
        return d
    }
    public func requireString(_ key: String) throws -> String {
        guard let v = values[key] else { throw FormatError(.missing, key, "required string key is absent") }
        guard let s = v.stringValue else { throw FormatError(.typeMismatch, key, "expected a string, found \(v.type)") }
        return s
    }
    public func requireStrings(_ key: String) throws -> [String] {
        guard values[key] != nil else { throw FormatError(.missing, key, "required string array is absent") }
        guard let s = strings(key) else { throw FormatError(.typeMismatch, key, "expected an array of strings") }
        return s
    }
}
