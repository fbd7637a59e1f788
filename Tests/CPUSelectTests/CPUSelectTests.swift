import CPUSelect
import XCTest

final class CPUSelectTests: XCTestCase {
    static let zen4 = "avx512f avx512cd avx512bw avx512dq avx512vl avx2 avx fma bmi1 bmi2 f16c movbe abm popcnt sse4_2 ssse3 sse2"
    static let haswell = "avx2 avx fma bmi1 bmi2 f16c movbe abm popcnt sse4_2 ssse3 sse2"
    static let sandy = "avx popcnt sse4_2 ssse3 sse2"
    static let all: Set<String> = ["avx512", "avx2", "portable"]

    func testParsesCpuinfoFlagsLine() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 fma\nbugs\t\t: sysret_ss_attrs\n\nprocessor\t: 1\nflags\t\t: other\n"
        XCTAssertEqual(CPUSelect.flags(cpuinfo: text), ["fpu", "sse2", "avx2", "fma"], "first processor's flags only")
        XCTAssertEqual(CPUSelect.flags(cpuinfo: "Features\t: fp asimd evtstrm aes\n"), ["fp", "asimd", "evtstrm", "aes"])
        XCTAssertEqual(CPUSelect.flags(cpuinfo: ""), [])
    }

    func testPicksBestSupportedInstalledVariant() {
        func pick(_ flags: String, available: Set<String> = CPUSelectTests.all, forced: String? = nil) -> String? {
            CPUSelect.choose(flags: Set(flags.split(separator: " ").map(String.init)), arch: "x86_64", available: available, forced: forced).variant?.name
        }
        XCTAssertEqual(pick(Self.zen4), "avx512")
        XCTAssertEqual(pick(Self.haswell), "avx2")
        XCTAssertEqual(pick(Self.sandy), "portable")
        XCTAssertEqual(pick(Self.zen4, available: ["avx2", "portable"]), "avx2", "best installed")
        // AVX-512F alone (Knights Landing: no BW/VL) cannot run skylake-avx512 code.
        XCTAssertEqual(pick(Self.haswell + " avx512f avx512cd"), "avx2")
        XCTAssertNil(pick(Self.sandy, available: ["avx2"]), "nothing runnable")
        XCTAssertEqual(pick(Self.zen4, forced: "portable"), "portable")
        XCTAssertNil(pick(Self.haswell, forced: "avx512"))
        XCTAssertTrue(CPUSelect.choose(flags: [], arch: "x86_64", available: Self.all, forced: "avx512").error!.contains("avx512f"))
        XCTAssertTrue(CPUSelect.choose(flags: [], arch: "x86_64", available: Self.all, forced: "sse9").error!.contains("not a build"))
        XCTAssertEqual(CPUSelect.choose(flags: [], arch: "arm64", available: ["neon"]).variant?.name, "neon")
    }

    /// Every x86 variant's target CPU is one Package.swift maps to the matching kernel defines.
    func testVariantTable() {
        XCTAssertEqual(CPUSelect.x86Variants.map(\.name), ["avx512", "avx2", "portable"])
        XCTAssertEqual(CPUSelect.x86Variants.map(\.targetCPU), ["skylake-avx512", "haswell", nil])
        let avx512 = Set(CPUSelect.x86Variants[0].requiredFlags), avx2 = Set(CPUSelect.x86Variants[1].requiredFlags)
        XCTAssertTrue(avx2.isSubset(of: avx512), "each level includes the one below")
    }
}
