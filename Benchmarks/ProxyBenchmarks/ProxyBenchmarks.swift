import Benchmark

/// The data plane's cost per forwarded request (`docs/bench/package-benchmark.md`).
///
/// Two benchmarks run the same client: one through the proxy to the origin, one straight to the origin. Allocation
/// counts and CPU time are the whole process's (client, origin and proxy), so the proxy's own cost per request is the
/// first minus the second.
///
/// One iteration is 1,000 requests (`scalingFactor: .kilo`, the library's scaling factors being powers of 1,000);
/// the figures printed are per request (`--scale` prints them per iteration, that is per 1,000 requests).
///
/// Left out, because they do not work on the machines this was written on: `instructions` (no hardware counters in
/// the VM: the library drops the metric; on a machine with them, `--metric instructions --metric mallocCountTotal`
/// runs with it, `--metric` replacing this list) and the ARC counts `retainCount`/`releaseCount` (the Swift 6.3
/// runtime's hooks crash on Linux, and the runtime interposer the library uses instead is not a package this machine
/// has).
let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [
            .mallocCountTotal, .cpuUser, .cpuTotal, .wallClock, .throughput, ProcessCPUTime.totalMetric,
        ],
        warmupIterations: 5,
        scalingFactor: .kilo,
        maxDuration: .seconds(10),
        maxIterations: 100,
        // Allocations are the one figure that does not move from run to run (the same count in every iteration), so
        // they alone get a tolerance of their own for `baseline check`: 250 per iteration, a quarter of an allocation
        // per request. A new allocation on the forwarding path (+1,000) fails it; the client's per-batch overhead
        // (about 60 per iteration) can drift with a NIO update without failing it.
        thresholds: [.mallocCountTotal: BenchmarkThresholds(absolute: [.p50: 250])]
    )

    for (name, path) in [("GET through proxy", LoopbackStack.Path.throughProxy), ("GET straight to origin", .direct)] {
        let stack = LoopbackStack(path: path)
        Benchmark(name, configuration: configuration) { benchmark in
            let start = ProcessCPUTime.now()
            do {
                try stack.send(requests: benchmark.scaledIterations.count)
            } catch {
                benchmark.error("\(name): \(error)")
            }
            ProcessCPUTime.record(since: start, on: benchmark)
        } setup: {
            try await stack.start()
        } teardown: {
            try await stack.stop()
        }
    }
}
