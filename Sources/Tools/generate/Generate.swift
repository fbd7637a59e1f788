import Foundation
import Kernels
import Llama
import RunSupport

let spec = CommandSpec(
    name: "generate",
    synopsis: "--model M.gguf (--prompt TEXT | --prompts FILE --out OUT.jsonl) [options]",
    details: """
    Answers prompts with a Llama-architecture model, applying the chat template stored in the model
    (with its default system prompt unless --system is given). --prompt streams one answer to stdout;
    --prompts answers every line of FILE (plain text, or JSONL with a "prompt" field) in batches and
    writes one JSON object per line ({"prompt", "response", "tokens"}) to --out.
    """,
    options: [
        .init("model", "PATH", "GGUF file (or Hugging Face safetensors directory)"),
        .init("prompt", "TEXT", "one prompt; the answer streams to stdout"),
        .init("prompts", "FILE", "prompts file: plain text lines or JSONL with \"prompt\""),
        .init("out", "PATH", "JSONL output for --prompts (written atomically)"),
        .init("system", "TEXT", "system prompt (default: the template's own, if any)"),
        .init("max-tokens", "N", "new tokens per answer (default 256)"),
        .init("greedy", nil, "greedy decoding (the default)"),
        .init("temperature", "T", "sample at temperature T (> 0)"),
        .init("top-k", "K", "sample among the K most likely tokens"),
        .init("top-p", "P", "nucleus sampling mass (default 1)"),
        .init("seed", "S", "sampling seed (default 0)"),
        .init("batch-size", "N", "prompts generated together (default 32)"),
        .init("threads", "N", "worker threads (default: all cores)"),
    ])

/// The `generate` command; `arguments` are the options after the tool name.
public func generateMain(_ arguments: [String]) -> Never {
    runCommand(spec, arguments: arguments) { args in
        let modelPath = try args.require("model")
        let single = args.string("prompt"), file = args.string("prompts")
        guard (single == nil) != (file == nil) else { throw UsageError("give exactly one of --prompt and --prompts") }
        if file != nil && args.string("out") == nil { throw UsageError("--prompts needs --out") }
        if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
        let temperature = try args.double("temperature", default: 0, range: 0 ... 100)!
        if args.flag("greedy") && temperature > 0 { throw UsageError("--greedy and --temperature exclude each other") }
        var options = GenerationOptions(maxNewTokens: try args.int("max-tokens", default: 256, range: 1 ... 1 << 20)!,
                                        temperature: Float(temperature), topK: try args.int("top-k", default: 0, range: 0 ... 1 << 24)!,
                                        topP: Float(try args.double("top-p", default: 1, range: 0.0001 ... 1)!),
                                        seed: UInt64(try args.int("seed", default: 0, range: 0 ... Int.max)!))
        let batchSize = try args.int("batch-size", default: 32, range: 1 ... 4096)!
        let system = args.string("system")

        let start = DispatchTime.now()
        let loaded = try LlamaLoader.load(modelPath)
        options.stopTokens = loaded.stopTokens
        let c = loaded.model.config
        log("generate: loaded \(modelPath) in \(String(format: "%.2f", seconds(since: start))) s: \(c.layers) blocks, width \(c.hiddenSize), "
            + "vocab \(c.vocabSize); template \(loaded.template.summary); \(BuildInfo.isa) build, \(Parallel.defaultWorkers) threads")

        if let single {
            let prompt = loaded.promptTokens(single, system: system)
            var emitted: [Int32] = [], printedBytes = 0
            let t0 = DispatchTime.now()
            let out = try loaded.model.generate([prompt], options: options) { _, token in
                // Print the bytes of complete UTF-8 characters as they arrive.
                emitted.append(token)
                let text = Array(loaded.responseText(emitted).utf8)
                if text.count > printedBytes {
                    FileHandle.standardOutput.write(Data(text[printedBytes...]))
                    printedBytes = text.count
                }
            }
            print("")
            let dt = seconds(since: t0)
            log(String(format: "generate: %d prompt tokens, %d new tokens in %.2f s (%.1f tokens/s)", prompt.count, out[0].count, dt,
                       Double(out[0].count) / dt))
            return
        }
        let prompts = try readPrompts(file!)
        guard !prompts.isEmpty else { throw OutputError("\(file!) has no prompts") }
        var lines: [String] = []
        var newTokens = 0
        let t0 = DispatchTime.now()
        for b in stride(from: 0, to: prompts.count, by: batchSize) {
            let batch = Array(prompts[b ..< min(prompts.count, b + batchSize)])
            let answers = try loaded.model.generate(batch.map { loaded.promptTokens($0, system: system) }, options: options)
            for (p, a) in zip(batch, answers) {
                lines.append(try jsonLine(["prompt": p, "response": loaded.responseText(a), "tokens": a.count]))
                newTokens += a.count
            }
            let done = min(prompts.count, b + batchSize), dt = seconds(since: t0)
            log(String(format: "generate: %d/%d prompts, %.1f new tokens/s, ETA %.0f s", done, prompts.count, Double(newTokens) / dt,
                       dt / Double(done) * Double(prompts.count - done)))
        }
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: args.string("out")!)
        log("generate: wrote \(lines.count) answers to \(args.string("out")!)")
    }
}
