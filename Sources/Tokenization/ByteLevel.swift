import Foundation

/// GPT-2's reversible byte <-> Unicode mapping used by byte-level BPE vocabularies.
///
/// The 188 printable bytes ('!'...'~', '¡'...'¬', '®'...'ÿ') map to the code point of the same value;
/// the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) map in increasing order to U+0100, U+0101, ...
/// So ' ' (0x20) is 'Ġ' (U+0120) and '\n' (0x0A) is 'Ċ' (U+010A).
public enum ByteLevel {
    /// byteToScalar[b] is the code point standing for byte b.
    public static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var printable = [Bool](repeating: false, count: 256)
        for b in 0x21 ... 0x7E { printable[b] = true }
        for b in 0xA1 ... 0xAC { printable[b] = true }
        for b in 0xAE ... 0xFF { printable[b] = true }
        var next: UInt32 = 256
        for b in 0 ..< 256 {
            if printable[b] { table[b] = UInt32(b) } else { table[b] = next; next += 1 }
        }
        return table
    }()

    /// Inverse map: code point -> byte (nil for code points that are not part of the mapping).
    public static func byte(for scalar: UInt32) -> UInt8? {
        if scalar < 0x144, let b = scalarToByte[Int(scalar)], b >= 0 { return UInt8(b) }
        return nil
    }
    private static let scalarToByte: [Int?] = {
        var t = [Int?](repeating: nil, count: 0x144)
        for b in 0 ..< 256 { t[Int(byteToScalar[b])] = b }
        return t
    }()

    /// The byte-level string for raw bytes.
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }

    /// Raw bytes of a byte-level string; nil if it contains a code point outside the mapping.
    public static func decode(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.unicodeScalars.count)
        for u in s.unicodeScalars {
            guard let b = byte(for: u.value) else { return nil }
            out.append(b)
        }
        return out
    }
}
