import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// `aerialseg serve`: the models loaded once, the job store and runner, and the HTTP application.
public struct Server: Sendable {
    let state: ServerState
    let logger: Logger

    /// Loads every model (refusing a pipeline without weights) and opens `--data`, continuing the
    /// jobs a crash or shutdown left. Nothing listens yet.
    public init(options: ServeOptions, logger: Logger) async throws {
        let registry = try ModelRegistry.load(pipelines: options.pipelines, threads: options.threads,
                                              precision: options.precision)
        try FileManager.default.createDirectory(atPath: options.dataDirectory, withIntermediateDirectories: true)
        let store = try JobStore(dataDirectory: options.dataDirectory, logger: logger)
        let metrics = ServiceMetrics()
        let runner = await JobRunner(store: store, registry: registry, options: options, metrics: metrics,
                                     logger: logger)
        state = ServerState(options: options, registry: registry, store: store, runner: runner, metrics: metrics,
                            uploads: UploadReceiver(limit: options.maxUploadBytes),
                            predictions: PredictionSlots(capacity: 2, maxWaiting: max(2, options.queueLimit)))
        self.logger = logger
        let temporary = state.temporaryFolder
        if FileManager.default.fileExists(atPath: temporary.path) { try FileManager.default.removeItem(at: temporary) }
    }

    /// The HTTP application over `buildRouter`; `onRunning` gets the bound port.
    public func buildApplication(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        Application(router: buildRouter(state),
                    configuration: .init(address: .hostname(state.options.host, port: state.options.port),
                                         serverName: "aerialseg"),
                    onServerRunning: { channel in onRunning(channel.localAddress?.port ?? state.options.port) },
                    logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then drains: new work gets 503, running jobs stop at their
    /// next row band and go back to the queue on disk, and the call returns (exit 0).
    ///
    /// The runner comes after the application in the service group, so it is shut down first,
    /// while the HTTP side still answers (503 for new work, status and files as usual).
    public func run(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let group = ServiceGroup(configuration: .init(
            services: [buildApplication(onRunning: onRunning), state.runner],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
