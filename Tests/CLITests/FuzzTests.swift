import Foundation
import Testing
import TestSupport

/// Coverage-guided fuzzing in CI: `Tests/Fuzz/run` builds the libFuzzer binaries with swiftc
/// (`-sanitize=fuzzer,address`, so LeakSanitizer too) and runs every target for a bounded time
/// (`-max_total_time=30 -timeout=10 -rss_limit_mb=2048`); any crash, hang, leak or out-of-memory
/// fails it. About 3 minutes on 2 cores. A crashing input it finds is left in the run's folder (the
/// script prints it) and belongs, committed, in a Swift Testing regression case over that input.
@Suite struct FuzzTests {
    @Test(.timeLimit(.minutes(10)))
    func parsersSurviveFuzzing() throws {
        let script = Fixtures.packageRoot.appendingPathComponent("Tests/Fuzz/run").path
        let seconds = ProcessInfo.processInfo.environment["AERIALSEG_FUZZ_SECONDS"] ?? "30"
        let result = try Tool.run("bash", [script, seconds])
        print(result.stdout)  // per target: exec/s, cov and ft (libFuzzer's coverage counters)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr.suffix(4000))")
        #expect(result.stdout.components(separatedBy: "DONE").count - 1 == 7, "every target ran to its end")
    }
}
