import Foundation
import Hummingbird
import Logging

/// What the routes work with: the options, the models, the jobs and the metrics.
struct ServerState: Sendable {
    let options: ServeOptions
    let registry: ModelRegistry
    let store: JobStore
    let runner: JobRunner
    let metrics: ServiceMetrics
    let uploads: UploadReceiver
    let predictions: PredictionSlots
    let fileIO = FileIO()

    /// `<data>/tmp`: uploads of synchronous predictions, removed when answered.
    var temporaryFolder: URL { URL(fileURLWithPath: options.dataDirectory).appendingPathComponent("tmp") }

    /// The request's query parameters (decoded; the first of repeated keys wins).
    static func query(_ request: Request) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where result[String(key)] == nil {
            result[String(key)] = String(value)
        }
        return result
    }
}

/// Bounds synchronous predictions: `capacity` run at once, at most `maxWaiting` wait, more get 429.
actor PredictionSlots {
    let capacity: Int
    let maxWaiting: Int
    private var inUse = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(capacity: Int, maxWaiting: Int) {
        self.capacity = capacity
        self.maxWaiting = maxWaiting
    }

    func acquire() async throws {
        if inUse < capacity {
            inUse += 1
            return
        }
        guard waiting.count < maxWaiting else {
            throw APIError(.tooManyRequests, "too many predictions waiting (\(maxWaiting))", hint: "try again shortly",
                           retryAfter: 1)
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { inUse -= 1 } else { waiting.removeFirst().resume() }
    }
}
