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
