import Foundation
import ModelFormats

/// LoRA adapters in Hugging Face PEFT's directory format: `adapter_config.json` and
/// `adapter_model.safetensors` with tensors named
/// `base_model.model.model.layers.{l}.{self_attn|mlp}.{q_proj…down_proj}.lora_{A,B}.weight`,
/// A as `[r, in]` and B as `[out, r]` (F32). B rows of q_proj and k_proj are written in Hugging Face's
/// rotate-half row order (the engine keeps GGUF's adjacent-pair order), so the directory applies to
/// the Hugging Face checkpoint of the same model. Trained norms go out as PEFT `modules_to_save`
/// (full weights under the module's own name).
extension LoRAAdapter {
    public static let peftConfigFile = "adapter_config.json"
    public static let peftWeightsFile = "adapter_model.safetensors"

    static func peftModule(_ t: LoRATarget) -> String {
        switch t {
        case .q, .k, .v, .o: return "self_attn." + t.peftName
        case .gate, .up, .down: return "mlp." + t.peftName
        }
    }

    static func peftName(layer: Int, target: LoRATarget, matrix: String) -> String {
        "base_model.model.model.layers.\(layer).\(peftModule(target)).lora_\(matrix).weight"
    }

    static func peftNormNames(_ c: LlamaConfig) -> (attn: [String], ffn: [String], output: String) {
        ((0 ..< c.layers).map { "base_model.model.model.layers.\($0).input_layernorm.weight" },
         (0 ..< c.layers).map { "base_model.model.model.layers.\($0).post_attention_layernorm.weight" },
         "base_model.model.model.norm.weight")
    }

    /// The Double whose decimal form is the Float's shortest one (0.05, not 0.05000000074505806).
    static func shortest(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }

    /// Writes the adapter as a PEFT directory (created if needed; files replaced atomically).
    /// `baseModel` goes to `base_model_name_or_path`.
    public func savePEFT(to directory: String, baseModel: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let c = modelConfig, r = config.rank
        var st = SafeTensorsWriter()
        st.metadata = ["format": "pt"]
        for s in slots {
            let aValues = Array(UnsafeBufferPointer(start: a(s), count: r * s.inDim))
            var bValues = Array(UnsafeBufferPointer(start: b(s), count: s.outDim * r))
            if s.target == .q || s.target == .k {
                bValues = LoRAAdapter.permuteRows(bValues, rowLength: r, headDim: c.headDim, toHuggingFace: true)
            }
            try st.add(LoRAAdapter.peftName(layer: s.layer, target: s.target, matrix: "A"), shape: [r, s.inDim], floats: aValues)
            try st.add(LoRAAdapter.peftName(layer: s.layer, target: s.target, matrix: "B"), shape: [s.outDim, r], floats: bValues)
        }
        if config.trainNorms {
            let names = LoRAAdapter.peftNormNames(c), p = buffer.valuePointer, C = c.hiddenSize
            for l in 0 ..< c.layers {
                try st.add(names.attn[l], shape: [C], floats: Array(UnsafeBufferPointer(start: p + attnNormOffsets![l], count: C)))
                try st.add(names.ffn[l], shape: [C], floats: Array(UnsafeBufferPointer(start: p + ffnNormOffsets![l], count: C)))
            }
            try st.add(names.output, shape: [C], floats: Array(UnsafeBufferPointer(start: p + outputNormOffset!, count: C)))
        }
        let json: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": baseModel,
            "r": r, "lora_alpha": LoRAAdapter.shortest(config.alpha), "lora_dropout": LoRAAdapter.shortest(config.dropout),
            "target_modules": config.targets.map(\.peftName), "bias": "none", "fan_in_fan_out": false,
            "inference_mode": true, "init_lora_weights": true, "use_rslora": false, "use_dora": false,
            "modules_to_save": config.trainNorms ? ["input_layernorm", "post_attention_layernorm", "norm"] as Any : NSNull(),
            "layers_to_transform": NSNull(), "rank_pattern": [String: Int](), "alpha_pattern": [String: Double](),
        ]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try st.write(to: directory + "/" + LoRAAdapter.peftWeightsFile)
        try GGUFWriter.atomicWrite(data, to: directory + "/" + LoRAAdapter.peftConfigFile)
    }

    /// Reads a PEFT LoRA directory for a model of `modelConfig`. Every field the engine cannot honour
    /// (DoRA, rsLoRA, per-layer ranks, biases, fan-in/fan-out layout, modules other than the seven
    /// projections and the norms) is an error that names it, as is any missing or misshapen tensor.
    public static func loadPEFT(from directory: String, modelConfig c: LlamaConfig) throws -> LoRAAdapter {
        let configPath = directory + "/" + peftConfigFile, weightsPath = directory + "/" + peftWeightsFile
        func bad(_ what: String) -> LlamaError { .invalidInput("adapter \(directory): \(what)") }
        guard let data = FileManager.default.contents(atPath: configPath) else { throw bad("cannot read \(peftConfigFile)") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw bad("\(peftConfigFile) is not a JSON object")
        }
        if let t = json["peft_type"] as? String, t.uppercased() != "LORA" { throw bad("peft_type \(t) is not LORA") }
        guard let r = json["r"] as? Int, r >= 1 else { throw bad("\"r\" must be a positive integer") }
        guard let alpha = (json["lora_alpha"] as? NSNumber)?.floatValue, alpha > 0 else { throw bad("\"lora_alpha\" must be positive") }
        let dropout = (json["lora_dropout"] as? NSNumber)?.floatValue ?? 0
        for flag in ["use_dora", "use_rslora", "fan_in_fan_out"] where (json[flag] as? Bool) == true {
            throw bad("\"\(flag)\": true is not supported")
        }
        if let bias = json["bias"] as? String, bias != "none" { throw bad("bias \"\(bias)\" is not supported (only \"none\")") }
        if json["layers_to_transform"] != nil && !(json["layers_to_transform"] is NSNull) { throw bad("\"layers_to_transform\" is not supported") }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let p = json[key] as? [String: Any], !p.isEmpty { throw bad("\"\(key)\" (per-module ranks or alphas) is not supported") }
        }
        let modules: [String]
        if let list = json["target_modules"] as? [String] { modules = list }
        else if let one = json["target_modules"] as? String { modules = [one] }
        else { throw bad("\"target_modules\" must be a list of module names") }
        var targets: [LoRATarget] = []
        for m in modules {
            guard let t = LoRATarget.allCases.first(where: { $0.peftName == m }) else {
                throw bad("target module \"\(m)\" is not one of \(LoRATarget.allCases.map(\.peftName).joined(separator: ", "))")
            }
            targets.append(t)
        }
        var trainNorms = false
        if let saved = json["modules_to_save"] as? [String], !saved.isEmpty {
            guard Set(saved).isSubset(of: ["input_layernorm", "post_attention_layernorm", "norm"]) else {
                throw bad("modules_to_save \(saved) are not supported (only the RMSNorm weights)")
            }
            trainNorms = true
        }
        let adapter: LoRAAdapter
        do { adapter = try LoRAAdapter(modelConfig: c, config: LoRAConfig(rank: r, alpha: alpha, dropout: dropout, targets: targets, trainNorms: trainNorms)) }
        catch { throw bad("\(error)") }

        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: weightsPath) } catch { throw bad("\(peftWeightsFile): \(error)") }
        var used = Set<String>()
        func read(_ name: String, shape: [Int], into dst: UnsafeMutablePointer<Float>, permuteHeads: Bool = false) throws {
            guard let info = file.tensorInfo(name) else { throw bad("\(peftWeightsFile) has no tensor \(name)") }
            guard info.shape == shape else { throw bad("tensor \(name) has shape \(info.shape), expected \(shape)") }
            var v = try file.floats(name)
            if permuteHeads { v = LoRAAdapter.permuteRows(v, rowLength: shape[1], headDim: c.headDim, toHuggingFace: false) }
            dst.update(from: v, count: v.count)
            used.insert(name)
        }
        for s in adapter.slots {
            try read(peftName(layer: s.layer, target: s.target, matrix: "A"), shape: [r, s.inDim], into: adapter.a(s))
            try read(peftName(layer: s.layer, target: s.target, matrix: "B"), shape: [s.outDim, r], into: adapter.b(s),
                     permuteHeads: s.target == .q || s.target == .k)
        }
        if trainNorms {
            let names = peftNormNames(c), p = adapter.buffer.valuePointer, C = c.hiddenSize
            for l in 0 ..< c.layers {
                try read(names.attn[l], shape: [C], into: p + adapter.attnNormOffsets![l])
                try read(names.ffn[l], shape: [C], into: p + adapter.ffnNormOffsets![l])
            }
            try read(names.output, shape: [C], into: p + adapter.outputNormOffset!)
        }
        if let extra = file.tensors.map(\.name).first(where: { !used.contains($0) }) {
            throw bad("tensor \(extra) does not belong to a \(c.layers)-block model with targets \(modules) (wrong base model?)")
        }
        for i in 0 ..< adapter.parameterCount where !adapter.buffer.values[i].isFinite {
            throw bad("adapter holds a non-finite value")
        }
        return adapter
    }
}
