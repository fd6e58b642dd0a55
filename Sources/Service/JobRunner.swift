import Foundation
import Logging
import Pipeline
import ServiceLifecycle

/// The job queue and its bounded pool of workers (a service of the server's `ServiceGroup`).
///
/// Jobs run one at a time per worker, each on a thread of its own (`BlockingThread`), through the
/// same `SegmentationJob` as `aerialseg run`, on the model loaded at start. The queue holds at most
/// `--queue` waiting jobs. On graceful shutdown (SIGTERM) it stops taking jobs, asks running jobs to
/// stop at their next row band (their finished bands stay in the work folder), puts them back in the
/// queue on disk and returns once they have stopped; a server started again on the same `--data`
/// continues them, as it continues jobs left `running` by a crash.
actor JobRunner: Service {
    let store: JobStore
    let registry: ModelRegistry
    let options: ServeOptions
    let metrics: ServiceMetrics
    let logger: Logger
    /// The test hook's folder (`AERIALSEG_TEST_PAUSE_AFTER_BANDS`): a paused job creates
    /// `<data>/test-paused-<id>` and waits for `<data>/test-continue`.
    private let dataDirectory: URL

    private var queue: [UUID] = []
    private var live: [UUID: LiveJob] = [:]
    private var idleWorkers: [CheckedContinuation<UUID?, Never>] = []
    private(set) var isDraining = false

    init(store: JobStore, registry: ModelRegistry, options: ServeOptions, metrics: ServiceMetrics,
         logger: Logger) async {
        self.store = store
        self.registry = registry
        self.options = options
        self.metrics = metrics
        self.logger = logger
        dataDirectory = URL(fileURLWithPath: options.dataDirectory)
        // Jobs a crash or a shutdown left behind: running ones first (they have bands on disk), then by age.
        let unfinished = await store.all().filter { !$0.status.isFinished }
            .sorted { ($0.status == .running ? 0 : 1, $0.createdAt) < ($1.status == .running ? 0 : 1, $1.createdAt) }
        queue = unfinished.map(\.id)
        for record in unfinished where record.status == .running {
            logger.info("job resumes after an interruption", metadata: ["job": "\(record.id)"])
        }
        metrics.queued.set(Double(queue.count))
    }

    // MARK: Admission

    /// Submissions admitted but not yet in `queue` (their record is being saved).
    private var admitting = 0

    /// Throws 503 while draining and 429 when the queue is full; called before a body is read and
    /// again when the job is added.
    func checkAdmission() throws {
        if isDraining {
            throw APIError(.serviceUnavailable, "the server is shutting down", hint: "try again after it restarts",
                           retryAfter: 30)
        }
        if queue.count + admitting >= options.queueLimit {
            throw APIError(.tooManyRequests, "the queue is full (\(options.queueLimit) jobs waiting)",
                           hint: "try again later", retryAfter: 10)
        }
    }

    /// Adds a new job (already checked readable) to the store and the queue.
    func submit(_ record: JobRecord) async throws {
        try checkAdmission()
        // Hold the place across the store's await: concurrent submissions re-enter this actor there.
        admitting += 1
        defer { admitting -= 1 }
        try await store.save(record)
        logger.info("job queued", metadata: ["job": "\(record.id)", "model": "\(record.model)",
                                             "input": "\(record.inputName)"])
        enqueue(record.id)
    }

    private func enqueue(_ id: UUID) {
        if idleWorkers.isEmpty {
            queue.append(id)
        } else {
            idleWorkers.removeFirst().resume(returning: id)
        }
        metrics.queued.set(Double(queue.count))
    }

    /// Live progress of a running job.
    func progress(_ id: UUID) -> RunProgressSnapshot? { live[id]?.snapshot }

    /// `DELETE /v1/jobs/{id}`: a queued job is cancelled at once, a running one at its next row band
    /// (the answer is then `running`, with the stop requested); a finished one is removed with its files.
    /// Returns the record after the change, nil when it was removed.
    func delete(_ id: UUID) async throws -> JobRecord? {
        guard let record = await store.record(id) else { throw APIError.unknownJob(id) }
        if let index = queue.firstIndex(of: id) {
            queue.remove(at: index)
            metrics.queued.set(Double(queue.count))
            let cancelled = try await store.update(id) {
                $0.status = .cancelled
                $0.finishedAt = Date()
            }
            logger.info("job cancelled", metadata: ["job": "\(id)", "status": "cancelled"])
            return cancelled
        }
        if let job = live[id] {
            job.requestStop(.cancelled)
            logger.info("job cancel requested", metadata: ["job": "\(id)"])
            return record
        }
        try await store.remove(id)
        logger.info("job removed", metadata: ["job": "\(id)"])
        return nil
    }

    // MARK: Service

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.sweepExpired() }
                await withTaskGroup(of: Void.self) { workers in
                    for n in 0..<max(1, options.workers) {
                        workers.addTask { await self.work(worker: n) }
                    }
                }
                group.cancelAll()  // the sweeper
            }
        } onGracefulShutdown: {
            Task { await self.drain() }
        }
        logger.info("job runner stopped", metadata: ["queued": "\(queue.count)"])
    }

    /// Stops taking work: idle workers end, running jobs are asked to stop at their next band.
    func drain() {
        guard !isDraining else { return }
        isDraining = true
        logger.info("draining", metadata: ["running": "\(live.count)", "queued": "\(queue.count)"])
        for job in live.values { job.requestStop(.shutdown) }
        idleWorkers.forEach { $0.resume(returning: nil) }
        idleWorkers.removeAll()
    }

    /// The next job for a worker, waiting for one; nil once draining.
    private func next() async -> UUID? {
        if isDraining { return nil }
        if !queue.isEmpty {
            let id = queue.removeFirst()
            metrics.queued.set(Double(queue.count))
            return id
        }
        return await withCheckedContinuation { idleWorkers.append($0) }
    }

    private func work(worker: Int) async {
        while let id = await next() {
            await execute(id)
        }
    }

    // MARK: Running one job

    private func execute(_ id: UUID) async {
        guard let record = await store.record(id), record.status == .queued || record.status == .running else { return }
        guard let model = registry.models[record.model] else {
            await finish(id, status: .failed, error: "aerialseg: error: the server no longer has the model '\(record.model)' "
                                               + "(restart it with that pipeline, or submit the job again)")
            return
        }
        let job = LiveJob()
        live[id] = job
        metrics.running.set(Double(live.count))
        let started: JobRecord
        do {
            guard let saved = try await store.update(id, {
                $0.status = .running
                $0.startedAt = Date()
                $0.starts += 1
            }) else { return }
            started = saved
        } catch {
            logger.error("cannot save job state", metadata: ["job": "\(id)", "error": "\(error)"])
            live[id] = nil
            return
        }
        logger.info("job running", metadata: ["job": "\(id)", "status": "running", "start": "\(started.starts)"])
        let outputFolder = store.outputFolder(id).path
        let runOptions = model.runOptions(outputDirectory: outputFolder, settings: record.settings,
                                          threads: options.threads)
        let hook = PauseHook.fromEnvironment(
            pausedFile: dataDirectory.appendingPathComponent("test-paused-\(id.uuidString.lowercased())"),
            continueFile: dataDirectory.appendingPathComponent("test-continue"))
        let clock = ContinuousClock.now
        let outcome: Result<RunResult, any Error> = await Result {
            try await BlockingThread.run("job-\(id)") {
                let segmentation = try SegmentationJob(options: runOptions, loaded: model.loaded)
                var bands = 0
                return try segmentation.run(input: record.input, progress: { job.update($0) }, isCancelled: {
                    bands += 1
                    hook?.bandFinished(bands) { job.stopReason == .cancelled }
                    return job.stopReason != .none
                })
            }
        }
        let seconds = (ContinuousClock.now - clock).seconds
        let snapshot = job.snapshot
        live[id] = nil
        metrics.running.set(Double(live.count))
        switch outcome {
        case .success(let result):
            let stem = ((record.input as NSString).lastPathComponent as NSString).deletingPathExtension
            let outputs = Dictionary(result.outputs.compactMap { path -> (JobOutput, String)? in
                let name = (path as NSString).lastPathComponent
                return JobOutput(fileName: name, stem: stem).map { ($0, name) }
            }, uniquingKeysWith: { first, _ in first })
            metrics.jobEnded(model: record.model, status: "succeeded", seconds: seconds, windows: snapshot.windowsDone)
            await finish(id, status: .succeeded, error: nil) {
                $0.outputs = outputs
                $0.seconds = result.seconds
                $0.modelSeconds = result.modelSeconds
                $0.resumedBands = result.resumedBands
                $0.windowsDone = snapshot.windowsTotal
                $0.windowsTotal = snapshot.windowsTotal
            }
        case .failure(let error) where error is CancellationError && job.stopReason == .shutdown:
            metrics.jobEnded(model: record.model, status: "interrupted", seconds: seconds, windows: snapshot.windowsDone)
            do {
                try await store.update(id) {
                    $0.status = .queued
                    $0.windowsDone = snapshot.windowsDone
                    $0.windowsTotal = snapshot.windowsTotal
                }
                logger.info("job checkpointed for shutdown", metadata: ["job": "\(id)", "status": "queued",
                                                                       "windows_done": "\(snapshot.windowsDone)"])
            } catch {
                logger.error("cannot save job state", metadata: ["job": "\(id)", "error": "\(error)"])
            }
        case .failure(let error) where error is CancellationError:
            metrics.jobEnded(model: record.model, status: "cancelled", seconds: seconds, windows: snapshot.windowsDone)
            try? FileManager.default.removeItem(atPath: outputFolder)  // its bands are of no use now
            await finish(id, status: .cancelled, error: nil)
        case .failure(let error):
            metrics.jobEnded(model: record.model, status: "failed", seconds: seconds, windows: snapshot.windowsDone)
            let line = APIError(.unprocessableContent, cli: error, path: record.input, shownAs: record.inputName).line
            await finish(id, status: .failed, error: line)
        }
    }

    private func finish(_ id: UUID, status: JobStatus, error: String?, _ change: @Sendable (inout JobRecord) -> Void = { _ in }) async {
        do {
            try await store.update(id) {
                $0.status = status
                $0.finishedAt = Date()
                $0.error = error
                change(&$0)
            }
        } catch {
            logger.error("cannot save job state", metadata: ["job": "\(id)", "error": "\(error)"])
        }
        var metadata: Logger.Metadata = ["job": "\(id)", "status": "\(status.rawValue)"]
        if let error { metadata["error"] = "\(error)" }
        logger.info("job \(status.rawValue)", metadata: metadata)
    }

    // MARK: Expiry

    /// Removes finished jobs older than `--job-ttl-hours`, at start and then every few minutes.
    private func sweepExpired() async {
        while !Task.isCancelled {
            let cutoff = Date().addingTimeInterval(-options.jobTTL.seconds)
            for record in await store.all() where record.status.isFinished && (record.finishedAt ?? .distantFuture) < cutoff {
                do {
                    try await store.remove(record.id)
                    logger.info("job expired", metadata: ["job": "\(record.id)"])
                } catch {
                    logger.error("cannot remove an expired job", metadata: ["job": "\(record.id)", "error": "\(error)"])
                }
            }
            do {
                try await Task.sleep(for: .seconds(min(300, max(1, options.jobTTL.seconds / 10))))
            } catch {
                return  // cancelled: the runner is stopping
            }
        }
    }
}

extension APIError {
    static func unknownJob(_ id: UUID) -> APIError {
        APIError(.notFound, "no job \(id.uuidString.lowercased())", hint: "GET /v1/jobs lists the jobs; finished jobs expire")
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
