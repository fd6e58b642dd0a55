import Foundation

/// Runs blocking work — GDAL, the model — on a thread of its own, so that neither NIO's event loops
/// nor Swift's cooperative pool (two threads on two cores) ever wait for it.
enum BlockingThread {
    /// Runs `body` on a new thread and returns its result; the caller suspends meanwhile.
    static func run<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try body() })
            }
            thread.name = name
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}
