import Foundation
import Tokenization

/// Prompting a loaded model the way it was trained: chat template, stop tokens, decoding.
extension LoadedModel {
    /// Token ids of a one-turn conversation ending with the assistant header.
    public func promptTokens(_ prompt: String, system: String? = nil) -> [Int32] {
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(prompt))
        let rendered = template.render(messages, addGenerationPrompt: true)
        return tokenizer.encode(rendered.text, addSpecial: true, parseSpecial: true).map { Int32($0) }
    }

    /// End-of-sequence and end-of-turn ids (generation stops after emitting one).
    public var stopTokens: Set<Int32> {
        var s = Set<Int32>()
        if let e = tokenizer.eosID { s.insert(Int32(e)) }
        if let e = tokenizer.eotID { s.insert(Int32(e)) }
        if let end = template.endOfTurn?.trimmingCharacters(in: .whitespacesAndNewlines), let id = tokenizer.id(of: end) {
            s.insert(Int32(id))
        }
        return s
    }

    /// Text of generated ids, without a trailing stop token and special tokens.
    public func responseText(_ ids: [Int32]) -> String {
        var ids = ids
        if let last = ids.last, stopTokens.contains(last) { ids.removeLast() }
        return tokenizer.decode(ids.map(Int.init), skipSpecial: true)
    }
}
