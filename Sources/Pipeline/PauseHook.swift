import Foundation

/// A test hook shared by `aerialseg run` and `aerialseg serve`: with `AERIALSEG_TEST_PAUSE_AFTER_BANDS=N`
/// in the environment, a job pauses after its N-th row band of a start (counted at each band boundary
/// `SegmentationJob.run` asks `isCancelled`). It creates `pausedFile` and waits until `continueFile`
/// exists or `stopWaiting` answers true, so that tests can `kill -9`, SIGTERM or start a second run
/// at a known point instead of after a timer. Not for production use.
public struct PauseHook: Sendable {
    public let afterBands: Int
    public let pausedFile: URL
    public let continueFile: URL

    /// The hook the environment asks for, or nil.
    public static func fromEnvironment(pausedFile: URL, continueFile: URL) -> PauseHook? {
        guard let text = ProcessInfo.processInfo.environment["AERIALSEG_TEST_PAUSE_AFTER_BANDS"],
              let bands = Int(text), bands > 0 else { return nil }
        return PauseHook(afterBands: bands, pausedFile: pausedFile, continueFile: continueFile)
    }

    /// Called on the job's thread after band `band` (1-based) of this start.
    public func bandFinished(_ band: Int, stopWaiting: () -> Bool = { false }) {
        guard band == afterBands else { return }
        _ = FileManager.default.createFile(atPath: pausedFile.path, contents: Data())
        let deadline = Date().addingTimeInterval(600)
        while !FileManager.default.fileExists(atPath: continueFile.path), !stopWaiting(), Date() < deadline {
            usleep(10_000)
        }
    }
}
