import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable { case system, user, assistant }
    public var role: Role
    public var content: String
    public init(_ role: Role, _ content: String) { self.role = role; self.content = content }
    public static func system(_ s: String) -> ChatMessage { ChatMessage(.system, s) }
    public static func user(_ s: String) -> ChatMessage { ChatMessage(.user, s) }
    public static func assistant(_ s: String) -> ChatMessage { ChatMessage(.assistant, s) }
}

/// The conversation formats we render natively (recognised from markers in a Jinja chat template).
public enum ChatTemplateKind: String, Sendable, CaseIterable {
    /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM, Qwen, …)
    case chatml
    /// `[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST] … </s>` (Llama 2, TinyLlama-chat v0.x, Mistral-style)
    case llama2
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` (Llama 3)
    case llama3
    /// `<|user|>\n…</s>\n<|assistant|>\n…</s>\n` (Zephyr, TinyLlama-chat 1.0)
    case zephyr
    /// `### Instruction:\n…\n\n### Response:\n…` (Alpaca)
    case alpaca

    /// The format a template text uses, by its markers; nil when none is recognised.
    public static func detect(_ template: String) -> ChatTemplateKind? {
        if template.contains("<|im_start|>") { return .chatml }
        if template.contains("<|start_header_id|>") { return .llama3 }
        if template.contains("[INST]") { return .llama2 }
        if template.contains("<|user|>") && template.contains("<|assistant|>") { return .zephyr }
        if template.contains("### Instruction") && template.contains("### Response") { return .alpaca }
        return nil
    }
}

/// A rendered conversation with the prompt/response boundary.
public struct RenderedChat: Sendable, Equatable {
    /// Full text: prompt followed by response.
    public let text: String
    /// UTF-8 byte offset in `text` where the prompt ends and the response begins.
    public let promptEndUTF8: Int
    public init(text: String, promptEndUTF8: Int) {
        precondition(promptEndUTF8 >= 0 && promptEndUTF8 <= text.utf8.count, "boundary outside the text")
        self.text = text; self.promptEndUTF8 = promptEndUTF8
    }
    public var prompt: String { String(decoding: text.utf8.prefix(promptEndUTF8), as: UTF8.self) }
    public var response: String { String(decoding: text.utf8.dropFirst(promptEndUTF8), as: UTF8.self) }
    /// The boundary as a count of Swift `Character`s (grapheme clusters) of the prompt.
    public var promptEndCharacter: Int { prompt.count }
    /// The boundary in Unicode scalars (code points).
    public var promptEndScalar: Int { prompt.unicodeScalars.count }
}

/// A chat template: which format, and the default system prompt the model's template inserts.
public struct ChatTemplate: Sendable {
    public let kind: ChatTemplateKind
    /// Inserted when the conversation does not start with a system message (nil: none).
    public let defaultSystemPrompt: String?
    /// The Jinja text the kind was recognised from (nil when chosen by name).
    public let source: String?
    /// True when `kind` came from an explicit override instead of detection.
    public let overridden: Bool

    public init(kind: ChatTemplateKind, defaultSystemPrompt: String? = nil) {
        self.kind = kind; self.defaultSystemPrompt = defaultSystemPrompt; source = nil; overridden = true
    }

    /// Recognises `template`; `override` (a kind) wins over detection. Throws when neither gives a kind.
    public init(template: String?, override: ChatTemplateKind? = nil) throws {
        let detected = template.flatMap(ChatTemplateKind.detect)
        guard let k = override ?? detected else {
            throw TokenizerError(template == nil ? "the model has no chat template; choose one by name"
                                                 : "chat template not recognised; choose one by name (\(ChatTemplateKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        kind = k
        source = template
        overridden = override != nil
        defaultSystemPrompt = template.flatMap { ChatTemplate.defaultSystem(in: $0, kind: k) }
    }

    /// From GGUF metadata (`tokenizer.chat_template`).
    public init(gguf m: TokenizerMetadataSource, override: ChatTemplateKind? = nil) throws {
        try self.init(template: m.string("tokenizer.chat_template"), override: override)
    }

    /// From a Hugging Face `tokenizer_config.json` (`chat_template` as a string, or a list of named templates,
    /// of which "default" is used).
    public init(tokenizerConfig data: Data, override: ChatTemplateKind? = nil) throws {
        let any = try? JSONSerialization.jsonObject(with: data)
        var text: String? = nil
        if let d = any as? [String: Any] {
            if let s = d["chat_template"] as? String { text = s }
            else if let list = d["chat_template"] as? [[String: Any]] {
                text = (list.first { $0["name"] as? String == "default" } ?? list.first)?["template"] as? String
            }
        }
        try self.init(template: text, override: override)
    }

    /// Human-readable description for logs: "chatml (detected, default system prompt)".
    public var summary: String {
        kind.rawValue + (overridden ? " (override" : " (detected") + (defaultSystemPrompt != nil ? ", default system prompt)" : ")")
    }

    /// Text that ends every turn (the stop string for generation), nil for Alpaca (ends with EOS).
    public var endOfTurn: String? {
        switch kind {
        case .chatml: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        case .llama2, .zephyr: return "</s>"
        case .alpaca: return nil
        }
    }

    /// Finds a literal default system prompt in the template text (a string literal between the format's
    /// system markers that contains no Jinja expression).
    static func defaultSystem(in t: String, kind: ChatTemplateKind) -> String? {
        let pairs: [(String, String)]
        switch kind {
        case .chatml: pairs = [("<|im_start|>system\n", "<|im_end|>"), ("<|im_start|>system\\n", "<|im_end|>")]
        case .llama2: pairs = [("<<SYS>>\n", "\n<</SYS>>"), ("<<SYS>>\\n", "\\n<</SYS>>")]
        case .zephyr: pairs = [("<|system|>\n", "</s>"), ("<|system|>\\n", "</s>")]
        case .llama3: pairs = [("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
                               ("<|start_header_id|>system<|end_header_id|>\\n\\n", "<|eot_id|>")]
        case .alpaca:
            guard let r = t.range(of: "Below is an instruction") else { return nil }
            let tail = t[r.lowerBound...]
            guard let end = tail.firstIndex(where: { $0 == "'" || $0 == "\"" || $0 == "\n" || $0 == "\\" }) else { return nil }
            return String(tail[..<end])
        }
        for (open, close) in pairs {
            var search = t.startIndex ..< t.endIndex
            while let o = t.range(of: open, range: search) {
                search = o.upperBound ..< t.endIndex
                guard let c = t.range(of: close, range: o.upperBound ..< t.endIndex) else { break }
                let body = t[o.upperBound ..< c.lowerBound]
                if body.isEmpty || body.contains(where: { "'\"{}+".contains($0) }) { continue }
                return body.replacingOccurrences(of: "\\n", with: "\n")
            }
        }
        return nil
    }

    /// Renders `messages`. When the last message is from the assistant, the response is that message's content
    /// plus the end-of-turn text and the prompt is everything before it; otherwise the whole text is the prompt,
    /// ending with the assistant header when `addGenerationPrompt`. Text stops before the BOS token, which the
    /// tokenizer adds (`encode(addSpecial: true)`).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> RenderedChat {
        var msgs = messages
        if msgs.first?.role != .system, let d = defaultSystemPrompt { msgs.insert(.system(d), at: 0) }
        let answer: ChatMessage? = msgs.last?.role == .assistant ? msgs.removeLast() : nil
        var p = ""
        switch kind {
        case .chatml:
            for m in msgs { p += "<|im_start|>\(m.role.rawValue)\n\(m.content)<|im_end|>\n" }
            if answer != nil || addGenerationPrompt { p += "<|im_start|>assistant\n" }
        case .llama3:
            for m in msgs { p += "<|start_header_id|>\(m.role.rawValue)<|end_header_id|>\n\n\(m.content)<|eot_id|>" }
            if answer != nil || addGenerationPrompt { p += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        case .zephyr:
            for m in msgs { p += "<|\(m.role.rawValue)|>\n\(m.content)</s>\n" }
            if answer != nil || addGenerationPrompt { p += "<|assistant|>\n" }
        case .llama2:
            var system: String? = nil
            var firstUser = true
            for m in msgs {
                switch m.role {
                case .system: system = m.content
                case .user:
                    p += (firstUser ? "" : "<s>") + "[INST] "
                    if firstUser, let s = system { p += "<<SYS>>\n\(s)\n<</SYS>>\n\n" }
                    p += m.content + " [/INST]"
                    firstUser = false
                case .assistant: p += " \(m.content) </s>"
                }
            }
        case .alpaca:
            for m in msgs {
                switch m.role {
                case .system: p += m.content + "\n\n"
                case .user: p += "### Instruction:\n\(m.content)\n\n"
                case .assistant: p += "### Response:\n\(m.content)\n\n"
                }
            }
            if answer != nil || addGenerationPrompt { p += "### Response:\n" }
        }
        var r = ""
        if let a = answer {
            switch kind {
            case .chatml: r = a.content + "<|im_end|>\n"
            case .llama3: r = a.content + "<|eot_id|>"
            case .zephyr: r = a.content + "</s>\n"
            case .llama2: r = " " + a.content + " </s>"
            case .alpaca: r = a.content
            }
        }
        return RenderedChat(text: p + r, promptEndUTF8: p.utf8.count)
    }
}

extension Tokenizer {
    /// Tokenizes a rendered conversation (BOS per the vocabulary, special tokens parsed) and finds the token
    /// index where the response begins: the prompt alone is tokenized too, and the boundary is the length of
    /// the common prefix. `exact` is false when a token straddles the boundary (the prompt's last tokens
    /// differ in the joint tokenization); the boundary then points at the first differing token.
    public func encodeChat(_ chat: RenderedChat) -> (ids: [Int], promptTokens: Int, exact: Bool) {
        let full = encode(chat.text, addSpecial: true, parseSpecial: true)
        let prompt = encode(chat.prompt, addSpecial: true, parseSpecial: true)
        var k = 0
        while k < prompt.count && k < full.count && prompt[k] == full[k] { k += 1 }
        return (full, k, k == prompt.count)
    }
}
