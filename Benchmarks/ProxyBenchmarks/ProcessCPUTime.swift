import Benchmark

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CPU time (user and system) of the whole process, every thread, as getrusage(2) reports it.
///
/// The library's `cpuUser` and `cpuTotal` read `/proc/self/stat` on Linux, which counts in scheduler ticks (10 ms
/// here): an iteration of 1,000 requests takes 15–40 ms, so they read 0, 10, 20… ms per iteration. Linux's getrusage
/// gives the sum of user and system time from the scheduler's own clock, to the microsecond, which is fine enough to
/// see a change of a few percent per iteration. (Its split between user and system is still apportioned by ticks, so
/// only the sum is recorded.)
enum ProcessCPUTime {
    /// User and system CPU time in nanoseconds; per request when scaled.
    static let totalMetric = BenchmarkMetric.custom("CPU total, getrusage (ns)")

    /// The CPU time used so far.
    static func now() -> Duration {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)  // an enum in Glibc's header, an int in Darwin's
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        let microseconds =
            (Int64(usage.ru_utime.tv_sec) + Int64(usage.ru_stime.tv_sec)) * 1_000_000
            + Int64(usage.ru_utime.tv_usec) + Int64(usage.ru_stime.tv_usec)
        return .microseconds(microseconds)
    }

    /// Records the CPU time used since `start` on `benchmark`'s custom metric.
    static func record(since start: Duration, on benchmark: Benchmark) {
        let (seconds, attoseconds) = (Self.now() - start).components
        benchmark.measurement(Self.totalMetric, Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }
}
