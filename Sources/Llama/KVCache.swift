/// Keys and values of every block for a fixed set of sequence slots, post-RoPE.
///
/// Layout per block: keys and values are each (slots, capacity, Hkv·D); slot s, position p is row
/// `s · capacity + p`. Memory: 2 · L · slots · capacity · Hkv·D floats.
public final class KVCache: @unchecked Sendable {
    public let slots: Int, capacity: Int, kvDim: Int, layers: Int
    /// Tokens cached per slot.
    public internal(set) var lengths: [Int]
    let storage: UnsafeMutableBufferPointer<Float>

    public init(config: LlamaConfig, slots: Int, capacity: Int) throws {
        guard slots > 0, capacity > 0 else { throw LlamaError.invalidInput("KV cache needs at least one slot and one position") }
        guard capacity <= config.contextLength else {
            throw LlamaError.invalidInput("KV cache capacity \(capacity) exceeds the context length \(config.contextLength)")
        }
        self.slots = slots
        self.capacity = capacity
        kvDim = config.kvDim
        layers = config.layers
        lengths = [Int](repeating: 0, count: slots)
        let (total, overflow) = (2 * layers * slots * capacity).multipliedReportingOverflow(by: kvDim)
        guard !overflow, total < 1 << 36 else { throw LlamaError.invalidInput("KV cache of \(slots) x \(capacity) tokens is too large") }
        storage = .allocate(capacity: total)
    }

    deinit { storage.deallocate() }

    /// Floats between consecutive slots in one block's key (or value) buffer.
    public var slotStride: Int { capacity * kvDim }
    public func keys(_ layer: Int) -> UnsafeMutablePointer<Float> { storage.baseAddress! + (2 * layer) * slots * slotStride }
    public func values(_ layer: Int) -> UnsafeMutablePointer<Float> { storage.baseAddress! + (2 * layer + 1) * slots * slotStride }

    public func reset() { lengths = [Int](repeating: 0, count: slots) }
}
