import Foundation
import Kernels
import Llama
import RunSupport
import SafetyTuning

let spec = CommandSpec(
    name: "seal",
    synopsis: "--model M.gguf --data FT --safe SAFE --out KEPT [--scores S.jsonl] [--report R.json] [--adapter-out DIR] [options]",
    details: """
    SEAL (Shen et al., ICLR 2025, METHODS.md 4.6): learns one selector logit per row of --data by bilevel
    optimisation against a trusted --safe set (prompt/response rows, e.g. refusals), then keeps the top
    --keep-fraction rows. Per step, a safe batch and a fine-tuning batch: the model (a fresh LoRA, later
    discarded) descends u*l_safe + (1-u)*w_j*l_j with u = 1, 0.97, 0.94 by epoch; the selector descends
    mean w_j * stopgrad(l_j), w = N*softmax(logits). Scores are tied to input row numbers (rows dropped by
    --max-tokens get no score and are not kept), so the kept rows are exactly the top-ranked inputs.
    --adapter-out then fine-tunes a fresh LoRA from the original model on the kept rows (SEAL's SFT stage).

    Defaults (Llama-3 scripts, scaled for SmolLM2-135M on a 2-core CPU by METHODS.md 5.5): LoRA r 16,
    alpha 16, q,v; model Adam (0.9, 0.95) lr 1e-4 (code 1e-5), clip 1; selector Adam (0.9, 0.95) lr 5e-3,
    clip 10; batch 16 pairs (code 64); 3 epochs of min(|safe|, |data|)/16 steps; keep 0.8; rows cut to 256
    tokens. SFT: 2 epochs, lr 1e-4, batch 16.
    """,
    options: [
        .init("model", "PATH", "GGUF model (the aligned model)"),
        .init("data", "FILE", "fine-tuning rows to rank: JSONL or JSON array (Alpaca, prompt/response, messages)"),
        .init("safe", "FILE", "trusted upper-level rows (prompt/response), disjoint from evaluation prompts"),
        .init("out", "FILE", "the kept rows, in --data's own format and order"),
        .init("scores", "FILE", "JSONL per input row: index, score (selector logit), weight, rank, kept"),
        .init("report", "FILE", "JSON report (config, per-step losses, selector stats, timings)"),
        .init("adapter-out", "DIR", "also fine-tune a fresh LoRA on the kept rows and save it (PEFT directory)"),
        .init("keep-fraction", "P", "fraction of rows to keep, in (0, 1] (default 0.8)"),
        .init("epochs", "E", "selection epochs (default 3)"),
        .init("max-steps", "N", "stop selection after N steps"),
        .init("batch-size", "N", "pairs (safe, fine-tuning) per step (default 16)"),
        .init("safe-batch-size", "N", "safe rows per step, if fewer than --batch-size (default: pairs)"),
        .init("lr", "X", "selection-phase model learning rate (default 1e-4)"),
        .init("selector-lr", "X", "selector learning rate (default 5e-3)"),
        .init("selector-optimizer", "O", "adam (default, the code) or sgd (the paper's Algorithm 2)"),
        .init("selector-clip", "X", "selector gradient clip (default 10 with adam, none with sgd; 0 = none)"),
        .init("parameterisation", "P", "softmax (default: N*softmax) or sigmoid (2*sigmoid)"),
        .init("algorithm", "A", "2 (default: the code) or 1 (auxiliary lower-level adapter)"),
        .init("upper-weight", "U", "u in the first epoch (default 1)"),
        .init("upper-decay", "D", "u decrease per later epoch (default 0.03)"),
        .init("max-tokens", "N", "rows cut to N tokens (default 256)"),
        .init("lora-rank", "R", "LoRA rank (default 16)"),
        .init("lora-alpha", "A", "LoRA alpha (default 16)"),
        .init("lora-dropout", "P", "LoRA dropout of both phases (default 0, as in the code)"),
        .init("targets", "LIST", "adapted projections among q,k,v,o,gate,up,down (default q,v)"),
        .init("sft-epochs", "E", "epochs of the SFT on the kept rows (default 2)"),
        .init("sft-steps", "N", "steps of the SFT instead of --sft-epochs"),
        .init("sft-lr", "X", "SFT learning rate (default 1e-4)"),
        .init("sft-batch", "N", "SFT batch size (default 16)"),
        .init("seed", "S", "seed of the adapters and data orders (default 0)"),
        .init("threads", "N", "worker threads (default: all cores)"),
    ])

/// The `seal` command; `arguments` are the options after the tool name.
public func sealMain(_ arguments: [String]) -> Never {
    runCommand(spec, arguments: arguments) { args in
        let started = DispatchTime.now()
        let modelPath = try args.require("model"), dataPath = try args.require("data"), safePath = try args.require("safe")
        let outPath = try args.require("out")
        if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
        for (o, p) in [("out", outPath), ("scores", args.string("scores")), ("report", args.string("report")),
                       ("adapter-out", args.string("adapter-out"))] {
            if let p { try checkOutputFolder(p, option: o) }
        }
        let keepFraction = try args.double("keep-fraction", default: 0.8)!
        guard keepFraction > 0 && keepFraction <= 1 else { throw UsageError("--keep-fraction \(keepFraction) must be in (0, 1]") }
        var o = SEALOptions()
        o.epochs = try args.int("epochs", default: 3, range: 1 ... 10_000)!
        o.maxSteps = try args.int("max-steps", range: 0 ... 100_000_000)
        o.batchSize = try args.int("batch-size", default: 16, range: 1 ... 4096)!
        o.safeBatchSize = try args.int("safe-batch-size", range: 1 ... 4096)
        o.learningRate = Float(try args.double("lr", default: 1e-4, range: 0 ... 1)!)
        o.selectorLearningRate = Float(try args.double("selector-lr", default: 5e-3, range: 0 ... 1e6)!)
        guard let opt = SEALOptions.SelectorOptimizer(rawValue: args.string("selector-optimizer") ?? "adam") else {
            throw UsageError("--selector-optimizer must be adam or sgd")
        }
        o.selectorOptimizer = opt
        let clip = try args.double("selector-clip", default: opt == .adam ? 10 : 0, range: 0 ... 1e12)!
        o.selectorMaxGradNorm = clip > 0 ? clip : nil
        guard let param = DataSelector.Parameterisation(rawValue: args.string("parameterisation") ?? "softmax") else {
            throw UsageError("--parameterisation must be softmax or sigmoid")
        }
        o.parameterisation = param
        switch args.string("algorithm") ?? "2" {
        case "2": o.algorithm = .penalty
        case "1": o.algorithm = .auxiliary
        case let a: throw UsageError("--algorithm must be 1 or 2, not '\(a)'")
        }
        o.upperWeight = try args.double("upper-weight", default: 1, range: 0 ... 1)!
        o.upperWeightDecay = try args.double("upper-decay", default: 0.03, range: 0 ... 1)!
        o.seed = UInt64(try args.int("seed", default: 0, range: 0 ... Int.max)!)
        let maxTokens = try args.int("max-tokens", default: 256, range: 8 ... 1 << 20)!
        let lora = LoRAConfig(rank: try args.int("lora-rank", default: 16, range: 1 ... 4096)!,
                              alpha: Float(try args.double("lora-alpha", default: 16, range: 1e-6 ... 1e6)!),
                              dropout: Float(try args.double("lora-dropout", default: 0, range: 0 ... 0.99)!),
                              targets: try args.loraTargets(default: "q,v"))
        if args.has("sft-steps") && args.has("sft-epochs") { throw UsageError("give --sft-steps or --sft-epochs, not both") }

        let data = try Dataset.load(dataPath)
        guard !data.samples.isEmpty else { throw DatasetError("\(dataPath) has no rows") }
        let safe = try Dataset.load(safePath)
        guard !safe.samples.isEmpty else { throw DatasetError("\(safePath) has no rows") }
        let loaded = try LlamaLoader.load(modelPath)
        let fine = SampleEncoding.trainingSet(data.samples, with: loaded, maxTokens: maxTokens)
        let safeSet = SampleEncoding.trainingSet(safe.samples, with: loaded, maxTokens: maxTokens)
        guard !fine.samples.isEmpty else { throw DatasetError("\(dataPath): no row leaves a response token within \(maxTokens) tokens") }
        guard !safeSet.samples.isEmpty else { throw DatasetError("\(safePath): no row leaves a response token within \(maxTokens) tokens") }
        if Int((keepFraction * Double(fine.samples.count)).rounded(.down)) < 1 {
            throw UsageError("--keep-fraction \(keepFraction) of \(fine.samples.count) scored rows keeps no row")
        }

        let adapter = try LoRAAdapter(base: loaded.model.weights, config: lora, seed: o.seed)
        let aux = o.algorithm == .auxiliary ? try LoRAAdapter(base: loaded.model.weights, config: lora, seed: o.seed) : nil
        let engine = TrainingEngine(model: loaded.model, adapter: adapter)
        let selection = try SEALSelection(engine: engine, safeSet: safeSet.samples, fineTuneSet: fine.samples, options: o, auxiliaryAdapter: aux)
        selection.log = { log("seal: " + $0) }
        log("seal: ranking \(fine.samples.count) rows of \(dataPath) (\(fine.dropped.count) dropped, \(fine.truncated) truncated) against "
            + "\(safeSet.samples.count) safe rows; \(selection.totalSteps) steps of \(selection.batchSize) fine-tuning + \(selection.safeBatchSize) safe rows "
            + "(\(selection.stepsPerEpoch) per epoch); selector \(o.parameterisation.rawValue)/\(o.selectorOptimizer.rawValue), "
            + "algorithm \(o.algorithm == .penalty ? 2 : 1); \(BuildInfo.isa) build, \(Parallel.defaultWorkers) threads")
        let selectStart = DispatchTime.now()
        let selector = try selection.run()
        let selectSeconds = seconds(since: selectStart)
        let keptRows = try selector.keep(fraction: keepFraction)        // selector rows
        let keptInput = keptRows.map { fine.sourceIndex[$0] }.sorted()   // input rows (stable ids)
        let keptSet = Set(keptRows)
        let rank = selector.ranking()
        var rankOf = [Int](repeating: 0, count: selector.count)
        for (r, m) in rank.enumerated() { rankOf[m] = r + 1 }
        let weights = selector.weights()
        var rowOf = [Int: Int]()
        for (m, i) in fine.sourceIndex.enumerated() { rowOf[i] = m }

        // SEAL's SFT stage: a fresh LoRA from the original model on the kept rows.
        var sftReport: [String: Any]?
        var sftAdapter: LoRAAdapter?
        if args.has("adapter-out") {
            let sftSamples = keptRows.map { fine.samples[$0] }
            var t = TrainerOptions()
            t.learningRate = Float(try args.double("sft-lr", default: 1e-4, range: 0 ... 1)!)
            t.batchSize = try args.int("sft-batch", default: 16, range: 1 ... 4096)!
            t.optimizer = .adamW(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0)
            t.maxGradNorm = 1
            t.seed = o.seed
            let perEpoch = max(1, sftSamples.count / min(t.batchSize, sftSamples.count))
            t.maxSteps = try args.int("sft-steps", range: 0 ... 100_000_000) ?? (try args.int("sft-epochs", default: 2, range: 0 ... 10_000)! * perEpoch)
            let fresh = try LoRAAdapter(base: loaded.model.weights, config: lora, seed: o.seed)
            let trainer = try Trainer(engine: TrainingEngine(model: loaded.model, adapter: fresh), trainSet: sftSamples, options: t)
            trainer.log = { log("seal: sft " + $0) }
            let s0 = DispatchTime.now()
            try trainer.run()
            sftAdapter = fresh
            sftReport = ["rows": sftSamples.count, "steps": t.maxSteps, "lr": Double(t.learningRate), "batch_size": t.batchSize,
                         "losses": trainer.history.map(\.loss), "seconds": seconds(since: s0)]
        }

        // Outputs: all built in memory first, then each written atomically.
        try writeAtomically(data.serialize(keptInput), to: outPath)
        if let path = args.string("scores") {
            var lines: [String] = []
            for i in data.samples.indices {
                var r: [String: Any] = ["index": i]
                if let m = rowOf[i] {
                    r["score"] = Double(selector.logits[m]); r["weight"] = Double(weights[m]); r["rank"] = rankOf[m]; r["kept"] = keptSet.contains(m)
                } else {
                    r["score"] = NSNull(); r["kept"] = false; r["dropped"] = true
                }
                if let h = data.samples[i].harmful { r["label"] = h ? "harmful" : "benign" }
                lines.append(try jsonLine(r))
            }
            try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: path)
        }
        if let dir = args.string("adapter-out"), let a = sftAdapter { try produceAtomically(dir) { try a.savePEFT(to: $0, baseModel: modelPath) } }

        let h = selection.history
        func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }
        var report: [String: Any] = [
            "tool": "seal", "model": modelPath, "data": dataPath, "safe": safePath, "output": outPath,
            "config": ["keep_fraction": keepFraction, "epochs": o.epochs, "batch_size": selection.batchSize,
                       "safe_batch_size": selection.safeBatchSize, "steps": selection.totalSteps,
                       "steps_per_epoch": selection.stepsPerEpoch, "lr": Double(o.learningRate), "selector_lr": Double(o.selectorLearningRate),
                       "selector_optimizer": o.selectorOptimizer.rawValue, "selector_clip": orNull(o.selectorMaxGradNorm),
                       "parameterisation": o.parameterisation.rawValue, "algorithm": o.algorithm == .penalty ? 2 : 1,
                       "upper_weight": o.upperWeight, "upper_decay": o.upperWeightDecay, "max_tokens": maxTokens, "seed": Int(o.seed),
                       "model_optimizer": "adam(0.9,0.95,1e-8,wd 0), clip 1",
                       "lora": ["rank": lora.rank, "alpha": Double(lora.alpha), "dropout": Double(lora.dropout),
                                "targets": lora.targets.map(\.rawValue)]],
            "rows": ["data": data.count, "scored": fine.samples.count, "dropped": fine.dropped, "truncated": fine.truncated,
                     "safe": safe.count, "safe_used": safeSet.samples.count, "kept": keptInput.count],
            "steps": h.map { r -> [String: Any] in
                var s: [String: Any] = ["step": r.step, "epoch": r.epoch, "u": r.upperWeight, "safe_loss": r.safeLoss,
                                        "fine_tune_loss": r.fineTuneLoss, "model_loss": r.modelLoss, "selector_loss": r.selectorLoss,
                                        "grad_norm": r.gradNorm, "selector_grad_norm": r.selectorGradNorm, "tokens": r.tokens, "seconds": r.seconds]
                if let a = r.auxiliaryLoss { s["auxiliary_loss"] = a }
                return s
            },
            "selector": ["final": selector.stats, "by_epoch": selection.epochStats,
                         "threshold_logit": orNull(keptRows.map { Double(selector.logits[$0]) }.min())],
            "timings": ["selection_seconds": selectSeconds, "seconds_per_step": mean(h.map(\.seconds)),
                        "tokens_per_second": Double(h.reduce(0) { $0 + $1.tokens }) / max(selectSeconds, 1e-9),
                        "total_seconds": seconds(since: started)],
            "template": loaded.template.summary, "build": buildReport(),
        ]
        if let s = sftReport { report["sft"] = s; report["adapter"] = args.string("adapter-out")! }
        if data.hasLabels {
            // Removal quality against the data's labels (evaluation only; labels never enter the selector).
            let scored = fine.sourceIndex
            let labels = scored.map { data.samples[$0].harmful! }
            let q = RemovalQuality(scores: (0 ..< selector.count).map { -selector.logits[$0] },
                                   removed: (0 ..< selector.count).map { !keptSet.contains($0) }, labels: labels)
            report["against_labels"] = q.json
            log(String(format: "seal: against the data's labels: AUROC %.3f, harmful removed %.1f%%, benign removed %.1f%%",
                       q.auroc ?? .nan, q.recall * 100, q.benignRemovedFraction * 100))
        }
        if let path = args.string("report") { try writeAtomically(try jsonData(report), to: path) }
        log(String(format: "seal: kept %d of %d rows in %.1f s; wrote %@", keptInput.count, data.count, seconds(since: started), outPath))
    }
}
