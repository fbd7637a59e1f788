/// Build facts compiled into the binary (not read from the environment at run time), so that
/// every benchmark record and report states what it actually ran.
public enum BuildInfo {
    /// SafeTune's release version.
    public static let version = "0.2.0"

    #if KERNELS_AVX512
    public static let isa = "avx512"
    #elseif KERNELS_FMA && arch(x86_64)
    public static let isa = "avx2-fma"
    #elseif arch(arm64)
    public static let isa = "neon"
    #else
    public static let isa = "portable"
    #endif

    #if KERNELS_FMA || arch(arm64)
    public static let fma = true
    #else
    public static let fma = false
    #endif

    #if KERNELS_TARGET_CPU_SET
    public static let targetCPUSet = true
    #else
    public static let targetCPUSet = false
    #endif

    #if DEBUG
    public static let configuration = "debug"
    #else
    public static let configuration = "release"
    #endif

    /// Vector width in floats of the kernels' native register.
    public static var lanes: Int { vLanes }
}
