import Foundation
import Kernels
import Llama
import RunSupport
import SafetyTuning

let spec = CommandSpec(
    name: "sap",
    synopsis: "--model M.gguf --data TASK --triples TRIPLES --out ADAPTER_DIR [--report R.json] [--merged-gguf M.gguf] [options]",
    details: """
    SAP (Wu et al. 2025, METHODS.md 3.6): LoRA fine-tuning on --data with safety-aware probing. Per step:
    the contrastive safety gradient on a batch of --triples ({"prompt", "chosen", "rejected"} JSONL; chosen =
    safe answer), normalised over all LoRA parameters; theta += grad_rate * ||theta|| * g_hat; the probe
    gradient of the task loss there; exact restore; the task step with the probe in place; the probe set
    from zero by an AdamW step on h_clean - h_pert (persistent moments). The probe is removed before
    evaluation and export. --plain-sft runs the same loop without any of it (the baseline arm).

    Defaults (the official code's, scaled for SmolLM2-135M on a 2-core CPU): LoRA r 8, alpha 8, q,v,
    dropout 0.1 with the mask shared by the perturbed and clean passes; lr 1e-4 AdamW (0.9, 0.999, wd 0.01),
    no clipping; probe lr 0.05; grad rate 2e-5; T 1; probe preset code (layers 3/32 and 9/32 of depth, i.e.
    3 and 8 of 30); task batch 10, 128 tokens; contrastive batch 4 (code 8), 128 tokens (code 256);
    one epoch over --data. One step costs about 3 plain SFT steps (2.9x measured, Docs/SAP.md; the
    report's cost block measures it for each run).
    """,
    options: [
        .init("model", "PATH", "GGUF model (the aligned model to fine-tune)"),
        .init("data", "FILE", "task data: JSONL or JSON array (Alpaca, prompt/response, or messages)"),
        .init("triples", "FILE", "contrastive triples: JSONL/JSON of {prompt, chosen (safe), rejected (harmful)}"),
        .init("out", "DIR", "trained LoRA adapter (PEFT directory: adapter_config.json + adapter_model.safetensors)"),
        .init("report", "FILE", "JSON report (config, per-step losses, safety loss, cost per step vs plain SFT)"),
        .init("merged-gguf", "FILE", "also write the merged model (probe removed) as GGUF"),
        .init("merged-type", "T", "matrix type of --merged-gguf: f32 (default), f16 or q8_0"),
        .init("eval", "FILE", "held-out task rows: token-mean NLL with the probe removed, before and after"),
        .init("steps", "N", "optimiser steps (default: one epoch of --data)"),
        .init("epochs", "E", "epochs over --data instead of --steps"),
        .init("batch-size", "N", "task rows per step (default 10)"),
        .init("contrastive-batch", "N", "triples per step (default 4)"),
        .init("max-tokens", "N", "task rows cut to N tokens (default 128)"),
        .init("triple-max-tokens", "N", "chosen/rejected sequences cut to N tokens (default 128)"),
        .init("lr", "X", "LoRA learning rate (default 1e-4)"),
        .init("probe-lr", "X", "probe learning rate beta (default 0.05)"),
        .init("grad-rate", "X", "perturbation radius relative to ||theta|| (default 2e-5)"),
        .init("temperature", "T", "contrastive temperature (default 1)"),
        .init("contrastive", "R", "sum (default, the code: summed log-likelihoods) or mean (length-normalised)"),
        .init("probe-preset", "P", "code (default: depths 3/32, 9/32) or paper (11/32 ... 20/32)"),
        .init("probe-layers", "L,L", "0-based layers whose output gets a probe (overrides --probe-preset)"),
        .init("order", "O", "code (default: probe lags one step) or paper (same-batch probe, one extra pass)"),
        .init("probe-update", "U", "adam (default: AdamW from zero, persistent moments) or plain (beta * grad)"),
        .init("plain-sft", nil, "plain LoRA SFT with the same loop, data order and optimiser (baseline)"),
        .init("lora-rank", "R", "LoRA rank (default 8)"),
        .init("lora-alpha", "A", "LoRA alpha (default 8: scaling 1)"),
        .init("lora-dropout", "P", "LoRA dropout (default 0.1)"),
        .init("targets", "LIST", "adapted projections among q,k,v,o,gate,up,down (default q,v)"),
        .init("max-grad-norm", "X", "clip the task gradient's global norm (default: none, as the code)"),
        .init("recompute", nil, "keep only the residual stream and recompute blocks in backward (less memory)"),
        .init("seed", "S", "seed of the adapter init, data order and dropout (default 0)"),
        .init("threads", "N", "worker threads (default: all cores)"),
    ])

/// The `sap` command; `arguments` are the options after the tool name.
public func sapMain(_ arguments: [String]) -> Never {
    runCommand(spec, arguments: arguments) { args in
        let started = DispatchTime.now()
        let modelPath = try args.require("model"), dataPath = try args.require("data"), outPath = try args.require("out")
        let plain = args.flag("plain-sft")
        let triplesPath = args.string("triples")
        if !plain && triplesPath == nil { throw UsageError("--triples is required (or --plain-sft for the baseline)") }
        if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
        for (o, p) in [("out", outPath), ("report", args.string("report")), ("merged-gguf", args.string("merged-gguf"))] {
            if let p { try checkOutputFolder(p, option: o) }
        }
        if args.has("steps") && args.has("epochs") { throw UsageError("give --steps or --epochs, not both") }
        var o = SAPOptions()
        o.plainSFT = plain
        o.learningRate = Float(try args.double("lr", default: 1e-4, range: 0 ... 1)!)
        o.probeLearningRate = Float(try args.double("probe-lr", default: 0.05, range: 0 ... 1e3)!)
        o.gradRate = try args.double("grad-rate", default: 2e-5, range: 0 ... 1)!
        o.temperature = try args.double("temperature", default: 1, range: 1e-6 ... 1e6)!
        o.batchSize = try args.int("batch-size", default: 10, range: 1 ... 4096)!
        o.contrastiveBatchSize = try args.int("contrastive-batch", default: 4, range: 1 ... 4096)!
        o.maxGradNorm = try args.double("max-grad-norm", range: 1e-12 ... 1e12)
        o.seed = UInt64(try args.int("seed", default: 0, range: 0 ... Int.max)!)
        guard let order = SAPOptions.Order(rawValue: args.string("order") ?? "code") else { throw UsageError("--order must be code or paper") }
        guard let update = SAPOptions.ProbeUpdate(rawValue: args.string("probe-update") ?? "adam") else {
            throw UsageError("--probe-update must be adam or plain")
        }
        guard let preset = SAPOptions.ProbePreset(rawValue: args.string("probe-preset") ?? "code") else {
            throw UsageError("--probe-preset must be code or paper")
        }
        o.order = order
        guard let reduction = SAPOptions.ContrastiveReduction(rawValue: args.string("contrastive") ?? "sum") else {
            throw UsageError("--contrastive must be sum or mean")
        }
        o.contrastiveReduction = reduction
        o.probeUpdate = update
        let maxTokens = try args.int("max-tokens", default: 128, range: 8 ... 1 << 20)!
        let tripleMaxTokens = try args.int("triple-max-tokens", default: 128, range: 8 ... 1 << 20)!
        let lora = LoRAConfig(rank: try args.int("lora-rank", default: 8, range: 1 ... 4096)!,
                              alpha: Float(try args.double("lora-alpha", default: 8, range: 1e-6 ... 1e6)!),
                              dropout: Float(try args.double("lora-dropout", default: 0.1, range: 0 ... 0.99)!),
                              targets: try args.loraTargets(default: "q,v"))
        let mergedType = try args.string("merged-type").map { name -> GGUFExport.MatrixType in
            guard let t = GGUFExport.MatrixType(rawValue: name) else { throw UsageError("--merged-type must be f32, f16 or q8_0") }
            return t
        } ?? .f32

        // Data first (cheap, and bad files fail before the model loads).
        let data = try Dataset.load(dataPath)
        guard !data.samples.isEmpty else { throw DatasetError("\(dataPath) has no rows") }
        let triples = try triplesPath.map { try ContrastiveTriples.load($0) } ?? []
        let evalData = try args.string("eval").map { try Dataset.load($0) }
        let loaded = try LlamaLoader.load(modelPath)
        let L = loaded.model.config.layers
        if let list = args.string("probe-layers") {
            o.probeLayers = try list.split(separator: ",").map { s in
                guard let l = Int(s.trimmingCharacters(in: .whitespaces)), l >= 0, l < L else {
                    throw UsageError("--probe-layers: '\(s)' is not a layer in 0..<\(L)")
                }
                return l
            }
        } else {
            o.probeLayers = preset.layers(blocks: L)
        }
        let task = SampleEncoding.trainingSet(data.samples, with: loaded, maxTokens: maxTokens)
        guard !task.samples.isEmpty else { throw DatasetError("\(dataPath): no row leaves a response token within \(maxTokens) tokens") }
        let encodedTriples = ContrastiveTriples.encode(triples, with: loaded, maxTokens: tripleMaxTokens)
        if !plain && encodedTriples.pairs.isEmpty {
            throw DatasetError("\(triplesPath!): no triple leaves a response token within \(tripleMaxTokens) tokens")
        }
        let evalSet = evalData.map { SampleEncoding.trainingSet($0.samples, with: loaded, maxTokens: maxTokens).samples } ?? []
        let perEpoch = max(1, task.samples.count / min(o.batchSize, task.samples.count))
        if let s = try args.int("steps", range: 0 ... 10_000_000) { o.maxSteps = s }
        else { o.maxSteps = (try args.int("epochs", default: 1, range: 0 ... 100_000)!) * perEpoch }

        let adapter = try LoRAAdapter(base: loaded.model.weights, config: lora, seed: o.seed)
        let engine = TrainingEngine(model: loaded.model, adapter: adapter, recompute: args.flag("recompute"))
        let trainer = try SAPTrainer(engine: engine, taskSet: task.samples, pairs: encodedTriples.pairs, options: o)
        trainer.log = { log("sap: " + $0) }
        log("sap: \(plain ? "plain SFT" : "SAP") on \(task.samples.count) task rows (\(task.dropped.count) dropped, \(task.truncated) truncated)"
            + (plain ? "" : ", \(encodedTriples.pairs.count) triples, probe layers \(o.probeLayers) of \(L), order \(o.order.rawValue)")
            + "; \(o.maxSteps) steps of \(o.batchSize); LoRA r\(lora.rank) alpha \(lora.alpha) \(lora.targets.map(\.rawValue).joined(separator: ","));"
            + " \(BuildInfo.isa) build, \(Parallel.defaultWorkers) threads")
        let evalBefore = evalSet.isEmpty ? nil : try trainer.evaluate(evalSet)
        let trainStart = DispatchTime.now()
        try trainer.run()
        let trainSeconds = seconds(since: trainStart)
        trainer.removeProbes()
        let evalAfter = evalSet.isEmpty ? nil : try trainer.evaluate(evalSet)
        if let a = evalAfter, let b = evalBefore { log(String(format: "sap: held-out NLL %.4f -> %.4f (probe removed)", b, a)) }

        try produceAtomically(outPath) { try adapter.savePEFT(to: $0, baseModel: modelPath) }
        if let merged = args.string("merged-gguf") {
            let weights = try adapter.merged(into: loaded.model.weights)
            try produceAtomically(merged) {
                try GGUFExport.write(weights, tokenizer: loaded.tokenizer, template: loaded.template,
                                     name: "safetune-sap", matrixType: mergedType, to: $0)
            }
        }

        // Cost: the task pass (forward + backward + optimiser) is what a plain SFT step does.
        let h = trainer.history
        func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }
        let stepMean = mean(h.map(\.seconds)), sftMean = mean(h.map { $0.phaseSeconds["task_pass"] ?? 0 })
        var phases: [String: Double] = [:]
        for r in h { for (k, v) in r.phaseSeconds { phases[k, default: 0] += v / Double(h.count) } }
        let steps: [[String: Any]] = h.map { r in
            var s: [String: Any] = ["step": r.step, "epoch": r.epoch, "loss": r.loss, "grad_norm": r.gradNorm, "theta_norm": r.thetaNorm,
                                    "lr": r.learningRate, "tokens": r.tokens, "seconds": r.seconds, "phase_seconds": r.phaseSeconds]
            if let x = r.safetyLoss { s["safety_loss"] = x }
            if let x = r.safetyGradNorm { s["safety_grad_norm"] = x }
            if let x = r.epsilon { s["epsilon"] = x }
            if let x = r.probeGradNorm { s["probe_grad_norm"] = x }
            if let x = r.probeNorm { s["probe_norm"] = x }
            if let x = r.relativeProbeSize { s["relative_probe_size"] = x.map { $0.isFinite ? $0 : 0 } }
            return s
        }
        var report: [String: Any] = [
            "tool": "sap", "method": plain ? "plain-sft" : "sap", "model": modelPath, "data": dataPath, "adapter": outPath,
            "config": ["lr": Double(o.learningRate), "probe_lr": Double(o.probeLearningRate), "grad_rate": o.gradRate,
                       "temperature": o.temperature, "contrastive": o.contrastiveReduction.rawValue, "order": o.order.rawValue, "probe_update": o.probeUpdate.rawValue,
                       "probe_layers": plain ? [] : o.probeLayers, "probe_preset": args.has("probe-layers") ? "explicit" : preset.rawValue,
                       "batch_size": o.batchSize, "contrastive_batch": o.contrastiveBatchSize, "steps": o.maxSteps,
                       "max_tokens": maxTokens, "triple_max_tokens": tripleMaxTokens, "seed": Int(o.seed),
                       "max_grad_norm": orNull(o.maxGradNorm), "optimizer": "adamw(0.9,0.999,1e-8,wd 0.01)",
                       "lora": ["rank": lora.rank, "alpha": Double(lora.alpha), "dropout": Double(lora.dropout),
                                "targets": lora.targets.map(\.rawValue)]],
            "rows": ["task": data.count, "task_used": task.samples.count, "task_dropped": task.dropped, "task_truncated": task.truncated,
                     "triples": triples.count, "triples_used": encodedTriples.pairs.count, "triples_dropped": encodedTriples.dropped,
                     "eval": evalSet.count],
            "steps": steps,
            "final_loss": orNull(h.last?.loss),
            "cost": ["seconds_per_step": stepMean, "plain_sft_seconds_per_step": sftMean,
                     "extra_seconds_per_step": stepMean - sftMean, "ratio_vs_plain_sft": orNull(sftMean > 0 ? stepMean / sftMean : nil),
                     "phase_seconds_per_step": phases,
                     "note": "plain SFT = the step's task pass (forward + backward + optimiser) measured in the same run"],
            "timings": ["train_seconds": trainSeconds, "total_seconds": seconds(since: started),
                        "tokens_per_second": Double(h.reduce(0) { $0 + $1.tokens }) / max(trainSeconds, 1e-9)],
            "template": loaded.template.summary, "build": buildReport(),
        ]
        if !plain, let last = h.last { report["final_safety_loss"] = orNull(last.safetyLoss) }
        // Steps whose contrastive gradient vanished (sigmoid saturated: the step was plain SFT).
        let saturated = h.filter { ($0.safetyGradNorm ?? 1) < 1e-8 }.count
        if !plain {
            report["saturated_contrastive_steps"] = saturated
            if saturated > 0 {
                log("sap: warning: \(saturated) of \(h.count) steps had a vanishing safety gradient (||g|| < 1e-8: chosen and "
                    + "rejected log-likelihoods too far apart); consider --contrastive mean or a larger --temperature")
            }
        }
        if let b = evalBefore { report["eval_loss_before"] = b }
        if let a = evalAfter { report["eval_loss_after"] = a }
        if let m = args.string("merged-gguf") { report["merged_model"] = m; report["merged_type"] = mergedType.rawValue }
        if !trainer.hiddenNorms.isEmpty { report["hidden_norm_at_probes"] = trainer.hiddenNorms }
        if let path = args.string("report") { try writeAtomically(try jsonData(report), to: path) }
        log(String(format: "sap: %d steps in %.1f s (%.2f s/step, plain SFT part %.2f s/step); wrote %@", h.count, trainSeconds, stepMean, sftMean, outPath))
    }
}
