import Foundation
import XCTest
import ModelFormats
import Tokenization
import TestSupport

final class ChatTemplateTests: XCTestCase {
    static let smolSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    // Abbreviated but marker-faithful template texts of the common families.
    static let llama2Template = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
    static let llama3Template = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    static let zephyrTemplate = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
    static let alpacaTemplate = "{{ 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\\n\\n' }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}{% else %}{{ '### Response:\\n' + message['content'] + '\\n\\n' }}{% endif %}{% endfor %}{{ '### Response:\\n' }}"

    func testDetection() {
        XCTAssertEqual(ChatTemplateKind.detect("{{'<|im_start|>' + message['role']}}"), .chatml)
        XCTAssertEqual(ChatTemplateKind.detect(Self.llama2Template), .llama2)
        XCTAssertEqual(ChatTemplateKind.detect(Self.llama3Template), .llama3)
        XCTAssertEqual(ChatTemplateKind.detect(Self.zephyrTemplate), .zephyr)
        XCTAssertEqual(ChatTemplateKind.detect(Self.alpacaTemplate), .alpaca)
        XCTAssertNil(ChatTemplateKind.detect("{{ messages }}"))
        XCTAssertThrowsError(try ChatTemplate(template: "{{ messages }}"))
        XCTAssertThrowsError(try ChatTemplate(template: nil))
        XCTAssertEqual(try ChatTemplate(template: nil, override: .zephyr).kind, .zephyr)
        let o = try! ChatTemplate(template: Self.llama3Template, override: .chatml)
        XCTAssertEqual(o.kind, .chatml)
        XCTAssertTrue(o.summary.contains("override"))
        XCTAssertNil(try ChatTemplate(template: Self.llama2Template).defaultSystemPrompt, "system from a variable is not a default")
        XCTAssertEqual(try ChatTemplate(template: Self.alpacaTemplate).defaultSystemPrompt,
                       "Below is an instruction that describes a task. Write a response that appropriately completes the request.")
    }

    func testRenderEveryKind() {
        let conv: [ChatMessage] = [.system("S"), .user("U1"), .assistant("A1"), .user("U2"), .assistant("A2")]
        let expected: [ChatTemplateKind: (String, String)] = [
            .chatml: ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n",
                      "A2<|im_end|>\n"),
            .llama3: ("<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                      "A2<|eot_id|>"),
            .llama2: ("[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]", " A2 </s>"),
            .zephyr: ("<|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n<|assistant|>\n", "A2</s>\n"),
            .alpaca: ("S\n\n### Instruction:\nU1\n\n### Response:\nA1\n\n### Instruction:\nU2\n\n### Response:\n", "A2"),
        ]
        for kind in ChatTemplateKind.allCases {
            let r = ChatTemplate(kind: kind).render(conv)
            XCTAssertEqual(r.prompt, expected[kind]!.0, "\(kind) prompt")
            XCTAssertEqual(r.response, expected[kind]!.1, "\(kind) response")
            XCTAssertEqual(r.text, expected[kind]!.0 + expected[kind]!.1)
            // Open conversation: generation prompt equals the prompt above, response empty.
            let open = ChatTemplate(kind: kind).render(Array(conv.dropLast()))
            XCTAssertEqual(open.text, r.prompt, "\(kind) generation prompt")
            XCTAssertEqual(open.response, "")
        }
    }

    func testBoundaryIndicesWithUnicode() {
        let r = ChatTemplate(kind: .chatml).render([.user("héllo 👋🏽"), .assistant("ça va")])
        XCTAssertEqual(r.promptEndUTF8, r.prompt.utf8.count)
        XCTAssertEqual(r.promptEndCharacter, r.prompt.count)
        XCTAssertEqual(r.promptEndScalar, r.prompt.unicodeScalars.count)
        XCTAssertNotEqual(r.promptEndCharacter, r.promptEndUTF8)
        XCTAssertEqual(String(r.text.dropFirst(r.promptEndCharacter)), "ça va<|im_end|>\n")
    }

    func testTokenizerConfigTemplate() throws {
        let cfg = try JSONSerialization.data(withJSONObject: ["chat_template": [["name": "default", "template": Self.zephyrTemplate],
                                                                               ["name": "tool_use", "template": "x"]]])
        XCTAssertEqual(try ChatTemplate(tokenizerConfig: cfg).kind, .zephyr)
        let cfg2 = try JSONSerialization.data(withJSONObject: ["chat_template": "{{'<|im_start|>system\\nBe brief.<|im_end|>'}}"])
        let t = try ChatTemplate(tokenizerConfig: cfg2)
        XCTAssertEqual(t.kind, .chatml)
        XCTAssertEqual(t.defaultSystemPrompt, "Be brief.")
    }

    // MARK: Real SmolLM2 template

    func testSmolLM2TemplateFromGGUF() throws {
        let (tok, m) = try SmolLM2.load()
        let t = try ChatTemplate(gguf: m)
        XCTAssertEqual(t.kind, .chatml)
        XCTAssertFalse(t.overridden)
        XCTAssertEqual(t.defaultSystemPrompt, Self.smolSystem)
        XCTAssertEqual(t.endOfTurn, "<|im_end|>")
        XCTAssertEqual(tok.id(of: t.endOfTurn!), tok.eotID)

        // What the Jinja template produces (read from its text): default system turn when none is given.
        let r = t.render([.user("What is 2+2?"), .assistant("4.")])
        XCTAssertEqual(r.text, "<|im_start|>system\n\(Self.smolSystem)<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n")
        XCTAssertEqual(r.response, "4.<|im_end|>\n")
        let own = t.render([.system("Be terse."), .user("Hi")])
        XCTAssertEqual(own.text, "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")

        let enc = tok.encodeChat(r)
        XCTAssertTrue(enc.exact)
        XCTAssertEqual(enc.ids.first, 1, "starts with <|im_start|>")
        XCTAssertEqual(tok.decode(Array(enc.ids[..<enc.promptTokens])), r.prompt)
        XCTAssertEqual(tok.decode(Array(enc.ids[enc.promptTokens...])), r.response)
        XCTAssertEqual(Array(enc.ids[enc.promptTokens...]), [tok.id(of: "4")!, tok.id(of: ".")!, 2, tok.id(of: "Ċ")!])
        // The prompt ends with the assistant header: <|im_start|> "assistant" "\n".
        let lastStart = enc.ids[..<enc.promptTokens].lastIndex(of: 1)!
        XCTAssertEqual(tok.decode(Array(enc.ids[lastStart ..< enc.promptTokens])), "<|im_start|>assistant\n")
        XCTAssertEqual(enc.ids[enc.promptTokens - 1], tok.id(of: "Ċ")!)
        XCTAssertEqual(enc.ids.filter { $0 == 1 }.count, 3, "system, user, assistant turns")
    }
}
