import Foundation
import Kernels

/// One line for `--version`: the tool, SafeTune's version, the kernels' build and, when the dist
/// launcher started this process, which variant it picked and why.
public func versionText(_ tool: String) -> String {
    var s = "\(tool) \(BuildInfo.version) (kernels: \(BuildInfo.isa), \(BuildInfo.configuration)"
    if let launch = ProcessInfo.processInfo.environment["SAFETUNE_LAUNCH"], !launch.isEmpty { s += "; launcher chose \(launch)" }
    return s + ")"
}

/// The build facts every JSON report carries under "build".
public func buildReport() -> [String: Any] {
    var b: [String: Any] = ["version": BuildInfo.version, "isa": BuildInfo.isa, "fma": BuildInfo.fma,
                            "configuration": BuildInfo.configuration, "lanes": BuildInfo.lanes]
    if let launch = ProcessInfo.processInfo.environment["SAFETUNE_LAUNCH"], !launch.isEmpty { b["launcher"] = launch }
    return b
}
