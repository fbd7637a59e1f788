import Foundation

/// The one error type of ModelFormats: what went wrong, where (key or tensor name), and at which byte offset.
///
/// Every parser in this module treats lengths, counts and offsets as hostile: they are checked against the
/// file size before any allocation or read, and a bad file produces one of these, never a crash.
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        case io                 // the file could not be opened or mapped
        case truncated          // a read would go past the end of the file or section
        case badMagic           // not a GGUF / safetensors file
        case unsupportedVersion // GGUF v1, big-endian, ...
        case invalidValue       // absurd count, negative dimension, overflow, bad JSON, ...
        case unknownType        // metadata value type or ggml tensor type not in our tables
        case duplicate          // a key or tensor name occurs twice
        case misaligned         // a tensor offset is not a multiple of the alignment
        case outOfBounds        // a tensor's byte range leaves the data section, or overlaps another
        case missing            // a required key or tensor is absent
        case typeMismatch       // a key holds a different type than requested
    }
    public let kind: Kind
    /// The metadata key, tensor name or field the error is about ("" when none applies).
    public let context: String
    /// Byte offset in the file where the problem was detected, when meaningful.
    public let offset: Int?
    public let message: String

    public init(_ kind: Kind, _ context: String, offset: Int? = nil, _ message: String) {
        self.kind = kind; self.context = context; self.offset = offset; self.message = message
    }

    public var description: String {
        var s = "\(kind.rawValue)"
        if !context.isEmpty { s += " [\(context)]" }
        if let offset { s += " at byte \(offset)" }
        return s + ": " + message
    }
}
