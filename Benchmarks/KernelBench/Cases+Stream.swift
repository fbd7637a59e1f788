import Kernels

/// STREAM-like copy and read over arrays far larger than the last-level cache: the machine's
/// memory bandwidth, against which bandwidth-bound kernels (GEMV, scoring, decode) are judged.
func streamCases(quick: Bool) -> [BenchCase] {
    let n = quick ? 1 << 20 : 1 << 25  // 128 MiB per array
    let copy = BenchCase(name: "stream-copy", params: [("n", .int(n))], flops: 0, bytes: 8 * Double(n),
                         bandwidthBound: true) { threads in
        let src = Buffer(n) { noise($0, 5) }, dst = Buffer(n)
        let run = {
            let s = src.p, d = dst.p
            Parallel.run(workers: threads) { ith, nth in
                let r = Parallel.range(ith, of: nth, count: n / vLanes)
                for v in r { vstore(vload(s, v * vLanes), d, v * vLanes) }
            }
        }
        run()
        let ok = (0 ..< n / vLanes * vLanes).allSatisfy { dst.p[$0] == src.p[$0] }
        return (ok, { run(); blackHole(dst) })
    }
    let read = BenchCase(name: "stream-read", params: [("n", .int(n))], flops: Double(n), bytes: 4 * Double(n),
                         bandwidthBound: true) { threads in
        let src = Buffer(n) { noise($0, 6) }
        let partial = Buffer(64)
        let run = {
            let s = src.p, out = partial.p
            Parallel.run(workers: threads) { ith, nth in
                var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat()
                let r = Parallel.range(ith, of: nth, count: n / (4 * vLanes))
                for v in r {
                    let p = v * 4 * vLanes
                    a0 += vload(s, p); a1 += vload(s, p + vLanes); a2 += vload(s, p + 2 * vLanes); a3 += vload(s, p + 3 * vLanes)
                }
                out[ith] = (a0 + a1 + a2 + a3).sum()
            }
        }
        run()
        return (partial.p[0].isFinite, { run(); blackHole(partial) })
    }
    return [copy, read]
}
