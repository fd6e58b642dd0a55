import Foundation
import Pipeline
import Synchronization

/// Why a running job is asked to stop at its next row band.
enum StopReason: Int, Sendable {
    case none = 0
    /// `DELETE /v1/jobs/{id}`: the job ends cancelled.
    case cancelled
    /// Graceful shutdown: the job goes back to the queue and resumes after a restart.
    case shutdown
}

/// What the HTTP side and a job's thread share while the job runs: progress and the stop request.
final class LiveJob: Sendable {
    private let progress = Mutex(RunProgressSnapshot())
    private let stop = Atomic<Int>(StopReason.none.rawValue)

    var snapshot: RunProgressSnapshot { progress.withLock { $0 } }

    func update(_ p: RunProgress) {
        progress.withLock {
            $0 = RunProgressSnapshot(windowsDone: p.windowsDone, windowsTotal: p.windowsTotal,
                                     windowsPerSecond: p.windowsPerSecond)
        }
    }

    var stopReason: StopReason { StopReason(rawValue: stop.load(ordering: .relaxed)) ?? .none }

    /// Asks the job to stop at its next band boundary; the first reason given wins.
    func requestStop(_ reason: StopReason) {
        _ = stop.compareExchange(expected: StopReason.none.rawValue, desired: reason.rawValue, ordering: .relaxed)
    }
}

/// A test hook: with `AERIALSEG_TEST_PAUSE_AFTER_BANDS=N` in the server's environment, each job
/// pauses after its N-th row band of a start — it creates `<data>/test-paused-<id>` and waits until
/// `<data>/test-continue` exists or the job is cancelled (a shutdown waits too, so tests see the
/// draining server answer 503) — so that tests can `kill -9` or SIGTERM a server mid-job
/// deterministically. Not for production use.
struct PauseHook: Sendable {
    let afterBands: Int
    let dataDirectory: URL

    static func fromEnvironment(dataDirectory: String) -> PauseHook? {
        guard let text = ProcessInfo.processInfo.environment["AERIALSEG_TEST_PAUSE_AFTER_BANDS"],
              let bands = Int(text), bands > 0 else { return nil }
        return PauseHook(afterBands: bands, dataDirectory: URL(fileURLWithPath: dataDirectory))
    }

    /// Called on the job's thread after band `band` (1-based) of this start.
    func bandFinished(_ band: Int, job id: UUID, live: LiveJob) {
        guard band == afterBands else { return }
        let paused = dataDirectory.appendingPathComponent("test-paused-\(id.uuidString.lowercased())")
        FileManager.default.createFile(atPath: paused.path, contents: Data())
        let go = dataDirectory.appendingPathComponent("test-continue").path
        let deadline = Date().addingTimeInterval(600)
        while !FileManager.default.fileExists(atPath: go), live.stopReason != .cancelled, Date() < deadline {
            usleep(10_000)
        }
    }
}
