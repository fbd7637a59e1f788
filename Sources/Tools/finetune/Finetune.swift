import Foundation
import Kernels
import Llama
import RunSupport
import SafetyTuning

private let spec = CommandSpec(
    name: "finetune",
    synopsis: "--model M.gguf --data FILE --out ADAPTER_DIR [--merged-gguf OUT.gguf] [--report R.json] [options]",
    details: """
    Plain LoRA supervised fine-tuning: renders every row with the model's chat template, trains a LoRA
    adapter on the response tokens (and the end-of-turn token) of the frozen F32 base, and writes the
    adapter as a Hugging Face PEFT directory (adapter_config.json + adapter_model.safetensors). With
    --merged-gguf, the adapter is also merged into the base and written as a GGUF that llama.cpp runs.
    Data: JSONL or a JSON array in the Alpaca (instruction/input/output), prompt/response or chat
    messages shape. Held-out loss: --eval-data FILE, or --eval-fraction F of --data's rows (seeded).
    Progress (loss, tokens/s, ETA) goes to stderr; every output is written atomically at the end.
    Defaults: r 8, alpha 16, dropout 0.05 on q,v; AdamW lr 2e-4, weight decay 0.01, linear decay;
    batch 4, 1 epoch, clip 1.0, 512 tokens per row.
    """,
    options: [
        .init("model", "PATH", "base model: GGUF file or Hugging Face safetensors directory"),
        .init("data", "FILE", "training data: JSONL or JSON array (Alpaca, prompt/response, or messages)"),
        .init("eval-data", "FILE", "held-out data in the same shapes"),
        .init("eval-fraction", "F", "hold out a seeded fraction F in [0, 1) of --data's rows (default 0)"),
        .init("out", "DIR", "adapter directory (PEFT format); replaced if it exists"),
        .init("merged-gguf", "PATH", "also write the base model with the adapter merged in as GGUF"),
        .init("merged-type", "T", "matrix type of the merged GGUF: f32, f16 (default) or q8_0"),
        .init("report", "FILE", "JSON report: config, seed, data counts, losses per step, eval losses, tokens/s, memory, time"),
        .init("checkpoint", "FILE", "write the full trainer state here (every --checkpoint-every steps and at the end)"),
        .init("checkpoint-every", "N", "steps between checkpoints (default 0: only at the end)"),
        .init("resume", nil, "continue from --checkpoint (same data and options)"),
        .init("rank", "R", "LoRA rank (default 8)"),
        .init("alpha", "A", "LoRA alpha; the branch is scaled by alpha/r (default 16)"),
        .init("dropout", "P", "LoRA dropout in [0, 1) (default 0.05)"),
        .init("targets", "LIST", "adapted projections, comma-separated among q,k,v,o,gate,up,down, or all (default q,v)"),
        .init("train-norms", nil, "also train the RMSNorm weights"),
        .init("lr", "X", "peak learning rate (default 2e-4)"),
        .init("schedule", "S", "constant, linear (default) or cosine"),
        .init("warmup", "N", "linear warmup steps (default 0)"),
        .init("min-lr-ratio", "F", "cosine: final learning rate as a fraction of the peak (default 0)"),
        .init("optimizer", "O", "adamw (default) or sgd"),
        .init("weight-decay", "X", "decoupled weight decay (default 0.01 for AdamW, 0 for SGD)"),
        .init("beta1", "X", "AdamW beta1 (default 0.9)"),
        .init("beta2", "X", "AdamW beta2 (default 0.999)"),
        .init("eps", "X", "AdamW epsilon (default 1e-8)"),
        .init("momentum", "X", "SGD momentum (default 0)"),
        .init("steps", "N", "optimiser steps to take"),
        .init("epochs", "X", "passes over the training rows (default 1; fractions allowed)"),
        .init("batch", "N", "rows per micro-batch (default 4)"),
        .init("batch-tokens", "N", "dynamic batching: group rows of similar length into micro-batches of at most N tokens"),
        .init("accumulation", "N", "micro-batches per optimiser step (default 1)"),
        .init("max-grad-norm", "X", "clip the global gradient norm to X; 0 turns clipping off (default 1.0)"),
        .init("loss", "R", "micro-batch loss: token-mean (default), sample-mean or sum"),
        .init("max-tokens", "N", "cut every row to N tokens (default 512)"),
        .init("eval-every", "N", "held-out loss every N steps (default 0: at the end only)"),
        .init("eval-batch", "N", "rows per evaluation batch (default 8)"),
        .init("recompute", nil, "keep only the residual stream; recompute blocks in backward (less memory)"),
        .init("log-every", "N", "progress line every N steps (default 1)"),
        .init("threads", "N", "worker threads (default: all cores)"),
        .init("seed", "S", "seed of the data order, held-out split, adapter init and dropout (default 0)"),
    ])

/// Where the outputs go: each is written to a staged path first and renamed into place at the end,
/// so a failed run leaves no half-written output (and any older output untouched).
private struct Staged {
    var staged: String, final: String
    static func next(to path: String) -> Staged {
        let url = URL(fileURLWithPath: path)
        return Staged(staged: url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).staged-\(getpid())").path,
                      final: path)
    }
}

private func requireFolder(of path: String, for option: String) throws {
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
        throw UsageError("--\(option) \(path): folder \(dir) does not exist")
    }
}

/// The `finetune` command; `arguments` are the options after the tool name.
public func finetuneMain(_ arguments: [String]) -> Never {
    runCommand(spec, arguments: arguments) { args in
        let started = DispatchTime.now()
        let modelPath = try args.require("model"), dataPath = try args.require("data"), outPath = try args.require("out")

        // Every option is checked before any work, so a bad invocation leaves nothing behind.
        if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
        if args.has("eval-data") && args.has("eval-fraction") { throw UsageError("give --eval-data or --eval-fraction, not both") }
        if args.has("steps") && args.has("epochs") { throw UsageError("give --steps or --epochs, not both") }
        if args.has("batch") && args.has("batch-tokens") { throw UsageError("give --batch or --batch-tokens, not both") }
        if args.has("merged-type") && !args.has("merged-gguf") { throw UsageError("--merged-type needs --merged-gguf") }
        if args.flag("resume") && !args.has("checkpoint") { throw UsageError("--resume needs --checkpoint FILE") }
        if args.has("checkpoint-every") && !args.has("checkpoint") { throw UsageError("--checkpoint-every needs --checkpoint FILE") }
        guard let mergedType = GGUFExport.MatrixType(rawValue: (args.string("merged-type") ?? "f16").lowercased()) else {
            throw UsageError("--merged-type must be f32, f16 or q8_0")
        }
        var outIsDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: outPath, isDirectory: &outIsDir) {
            guard outIsDir.boolValue else { throw UsageError("--out \(outPath) exists and is not a directory") }
            // Only an adapter directory (or an empty one) is replaced, never an unrelated folder.
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: outPath)) ?? []
            guard entries.isEmpty || entries.contains(LoRAAdapter.peftConfigFile) else {
                throw UsageError("--out \(outPath) is a folder that holds no \(LoRAAdapter.peftConfigFile); choose a new or adapter folder")
            }
        }
        try requireFolder(of: outPath, for: "out")
        for option in ["merged-gguf", "report", "checkpoint"] { if let p = args.string(option) { try requireFolder(of: p, for: option) } }

        var o = FineTuneOptions()
        let seed = UInt64(try args.int("seed", default: 0, range: 0 ... Int.max)!)
        o.trainer.seed = seed
        o.lora = LoRAConfig(rank: try args.int("rank", default: 8, range: 1 ... 4096)!,
                            alpha: Float(try args.double("alpha", default: 16, range: 1e-6 ... 1e6)!),
                            dropout: Float(try args.double("dropout", default: 0.05, range: 0 ... 0.99)!),
                            targets: try args.loraTargets(default: "q,v"), trainNorms: args.flag("train-norms"))
        o.trainer.learningRate = Float(try args.double("lr", default: 2e-4, range: 0 ... 10)!)
        let warmup = try args.int("warmup", default: 0, range: 0 ... 1 << 30)!
        switch args.string("schedule") ?? "linear" {
        case "constant": o.schedule = .constant(warmupSteps: warmup)
        case "linear": o.schedule = .linear(warmupSteps: warmup)
        case "cosine": o.schedule = .cosine(warmupSteps: warmup, minRatio: try args.double("min-lr-ratio", default: 0, range: 0 ... 1)!)
        case let s: throw UsageError("--schedule '\(s)' must be constant, linear or cosine")
        }
        if args.has("min-lr-ratio") && args.string("schedule") != "cosine" { throw UsageError("--min-lr-ratio needs --schedule cosine") }
        switch (args.string("optimizer") ?? "adamw").lowercased() {
        case "adamw":
            if args.has("momentum") { throw UsageError("--momentum is for --optimizer sgd") }
            o.trainer.optimizer = .adamW(beta1: Float(try args.double("beta1", default: 0.9, range: 0 ... 0.999999)!),
                                         beta2: Float(try args.double("beta2", default: 0.999, range: 0 ... 0.999999999)!),
                                         eps: Float(try args.double("eps", default: 1e-8, range: 1e-30 ... 1)!),
                                         weightDecay: Float(try args.double("weight-decay", default: 0.01, range: 0 ... 10)!))
        case "sgd":
            for a in ["beta1", "beta2", "eps"] where args.has(a) { throw UsageError("--\(a) is for --optimizer adamw") }
            o.trainer.optimizer = .sgd(momentum: Float(try args.double("momentum", default: 0, range: 0 ... 0.999999)!),
                                       weightDecay: Float(try args.double("weight-decay", default: 0, range: 0 ... 10)!))
        case let s: throw UsageError("--optimizer '\(s)' must be adamw or sgd")
        }
        if let n = try args.int("steps", range: 1 ... 1 << 30) { o.length = .steps(n) }
        if let e = try args.double("epochs", range: 1e-9 ... 1e6) { o.length = .epochs(e) }
        o.trainer.batchSize = try args.int("batch", default: 4, range: 1 ... 1 << 20)!
        o.trainer.batchTokens = try args.int("batch-tokens", range: 2 ... 1 << 24)
        o.trainer.gradientAccumulation = try args.int("accumulation", default: 1, range: 1 ... 1 << 20)!
        let clip = try args.double("max-grad-norm", default: 1, range: 0 ... 1e9)!
        o.trainer.maxGradNorm = clip > 0 ? clip : nil
        switch args.string("loss") ?? "token-mean" {
        case "token-mean": o.trainer.reduction = .tokenMean
        case "sample-mean": o.trainer.reduction = .sampleMean
        case "sum": o.trainer.reduction = .sum
        case let s: throw UsageError("--loss '\(s)' must be token-mean, sample-mean or sum")
        }
        o.maxTokens = try args.int("max-tokens", default: 512, range: 2 ... 1 << 20)!
        o.trainer.evalEvery = try args.int("eval-every", default: 0, range: 0 ... 1 << 30)!
        o.trainer.evalBatchSize = try args.int("eval-batch", default: 8, range: 1 ... 1 << 20)!
        o.trainer.logEvery = try args.int("log-every", default: 1, range: 0 ... 1 << 30)!
        o.recompute = args.flag("recompute")
        let evalFraction = try args.double("eval-fraction", default: 0, range: 0 ... 0.99)!
        let checkpointEvery = try args.int("checkpoint-every", default: 0, range: 0 ... 1 << 30)!
        if let budget = o.trainer.batchTokens, budget < o.maxTokens {
            log("finetune: note: --batch-tokens \(budget) is below --max-tokens \(o.maxTokens); longer rows train alone in their micro-batch")
        }
        try o.validate()

        let data = try Dataset.load(dataPath)
        guard data.count > 0 else { throw DatasetError("\(dataPath) has no rows") }
        let evalData = try args.string("eval-data").map { try Dataset.load($0) }
        if let evalData, evalData.count == 0 { throw DatasetError("\(evalData.path) has no rows") }
        let checkpoint = args.flag("resume") ? try TrainerCheckpoint.read(from: URL(fileURLWithPath: try args.require("checkpoint"))) : nil

        let loaded: LoadedModel
        do { loaded = try LlamaLoader.load(modelPath, keepQuantized: false) } catch { throw OutputError("model \(modelPath): \(error)") }
        let prepared = try FineTuneData.prepare(data.samples, evalData: evalData?.samples, evalFraction: evalFraction, seed: seed,
                                                model: loaded, maxTokens: o.maxTokens)
        let run = try FineTune(model: loaded, data: prepared, options: o)
        if let checkpoint { try run.resume(from: checkpoint) }
        let c = loaded.model.config
        let tr = prepared.train, targets = o.lora.targets.map(\.rawValue).joined(separator: ",")
        var intro = "finetune: \(tr.samples.count) training rows (\(tr.tokens) tokens, \(tr.truncated) truncated, "
        intro += "\(tr.dropped.count) dropped), \(prepared.eval.samples.count) held-out rows; "
        intro += "model \(modelPath) (\(c.layers) blocks, width \(c.hiddenSize), template \(loaded.template.summary)); "
        intro += "LoRA r \(o.lora.rank) alpha \(o.lora.alpha) on \(targets) (\(run.adapter.parameterCount) parameters); "
        intro += "\(run.options.trainer.maxSteps) steps; \(BuildInfo.isa) build, \(Parallel.defaultWorkers) threads"
        if let checkpoint { intro += "; resuming at step \(checkpoint.header.step)" }
        log(intro)

        let result = try run.run(checkpoint: args.string("checkpoint").map { URL(fileURLWithPath: $0) }, checkpointEvery: checkpointEvery,
                                 log: { log("finetune: " + $0) })

        // Outputs: staged, then renamed into place together.
        let adapterStage = Staged.next(to: outPath)
        let mergedStage = args.string("merged-gguf").map { Staged.next(to: $0) }
        let reportStage = args.string("report").map { Staged.next(to: $0) }
        var staged: [Staged] = []
        defer { for s in staged { try? FileManager.default.removeItem(atPath: s.staged) } }
        try? FileManager.default.removeItem(atPath: adapterStage.staged)
        staged.append(adapterStage)
        try run.adapter.savePEFT(to: adapterStage.staged, baseModel: modelPath)
        var exportSeconds = 0.0
        if let mergedStage {
            let t0 = DispatchTime.now()
            staged.append(mergedStage)
            let name = URL(fileURLWithPath: mergedStage.final).deletingPathExtension().lastPathComponent
            try FineTune.exportMerged(run.adapter, model: loaded, type: mergedType, name: name, to: mergedStage.staged)
            exportSeconds = seconds(since: t0)
        }
        if let reportStage {
            let none: Any = NSNull()
            var report: [String: Any] = ["tool": "finetune", "model": modelPath, "data": dataPath, "adapter": outPath, "seed": seed]
            report["eval_data"] = args.string("eval-data") ?? none
            report["eval_fraction"] = evalFraction
            report["merged_gguf"] = args.string("merged-gguf") ?? none
            report["merged_type"] = args.has("merged-gguf") ? mergedType.rawValue : none
            report["config"] = run.configJSON
            report["data_counts"] = prepared.json
            report["template"] = loaded.template.summary
            let modelConfig: [String: Int] = ["layers": c.layers, "hidden": c.hiddenSize, "heads": c.heads, "kv_heads": c.kvHeads,
                                              "ffn": c.ffnSize, "vocab": c.vocabSize, "context": c.contextLength]
            report["model_config"] = modelConfig
            report["build"] = buildReport()
            report["checkpoint"] = args.string("checkpoint") ?? none
            report["export_seconds"] = exportSeconds
            for (k, v) in result.json { report[k] = v }
            report["total_seconds"] = seconds(since: started)
            staged.append(reportStage)
            try writeAtomically(try jsonData(report), to: reportStage.staged)
        }
        // Move into place; an existing adapter directory is swapped out, and removed once all outputs are in place.
        var previous: String?
        if FileManager.default.fileExists(atPath: outPath) {
            let old = Staged.next(to: outPath + ".old").staged
            try FileManager.default.moveItem(atPath: outPath, toPath: old)
            previous = old
        }
        do {
            for s in [adapterStage] + [mergedStage, reportStage].compactMap({ $0 }) where rename(s.staged, s.final) != 0 {
                throw OutputError("cannot move \(s.staged) to \(s.final): \(String(cString: strerror(errno)))")
            }
        } catch {
            if let previous {
                try? FileManager.default.removeItem(atPath: outPath)
                try? FileManager.default.moveItem(atPath: previous, toPath: outPath)
            }
            throw error
        }
        if let previous { try? FileManager.default.removeItem(atPath: previous) }
        let last = result.steps.last
        var done = String(format: "finetune: done: %d steps, final loss %.4f", last?.step ?? 0, last?.loss ?? .nan)
        if let e = result.evalLosses.last { done += String(format: ", held-out loss %.4f (base %.4f)", e.loss, result.baseEvalLoss ?? .nan) }
        done += String(format: ", %.0f tokens/s, peak RSS %.0f MiB, %.1f s; wrote ", result.tokensPerSecond,
                       Double(result.peakResidentBytes) / 1_048_576, seconds(since: started))
        done += ([outPath] + [args.string("merged-gguf"), args.string("report")].compactMap { $0 }).joined(separator: ", ")
        log(done)
    }
}
