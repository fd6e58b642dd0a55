import ArgumentParser
import Foundation
import Logging
import Pipeline
import Service

/// `aerialseg serve PIPELINE.yaml... --data DIR [...]`: the HTTP API (see Sources/Service/openapi.yaml).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the pipelines' models over HTTP: jobs on rasters of any size, and quick predictions.",
        discussion: """
            Each pipeline is a model named by its file stem, with the weights its checkpoint: key names \
            (loaded once, at start). Jobs and their files live in --data and survive restarts; a job \
            interrupted by a crash or SIGTERM resumes from its last finished row band when the server is \
            started again on the same --data. Binds to loopback unless --host says otherwise.
            """)

    @Argument(help: "Pipeline files (Pipelines/*.yaml); each names its weights with checkpoint:.")
    var pipelines: [String]

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to bind (0: any free port; the port is printed).")
    var port = 8080

    @Option(help: "Folder for jobs, uploads and outputs (created if needed).")
    var data: String

    @Option(help: "Largest request body, in MiB.")
    var maxUploadMb = 2048

    @Option(help: "Largest image (width × height) for POST /v1/models/{name}/predict.")
    var maxSyncPixels = 16_777_216

    @Option(help: "Folder whose rasters jobs may name with {\"input\": \"relative/path.tif\"}.")
    var inputsRoot: String?

    @Option(help: "Jobs run at once.")
    var workers = 1

    @Option(help: "Jobs that may wait; more get 429.")
    var queue = 64

    @Option(help: "Environment variable holding the bearer token /v1 requests must send.")
    var tokenEnv: String?

    @Option(help: "Hours after which finished jobs and their files are removed.")
    var jobTtlHours = 168.0

    @Option(help: "Compute threads per model.")
    var threads = 2

    @Option(help: "Convolution arithmetic for every model: f32 or bf16 (default: each pipeline's precision:, else f32).")
    var precision: Precision?

    func validate() throws {
        if pipelines.isEmpty { throw ValidationError("give at least one pipeline file") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0...65535") }
        if maxUploadMb < 1 { throw ValidationError("--max-upload-mb must be at least 1") }
        if maxSyncPixels < 1 { throw ValidationError("--max-sync-pixels must be at least 1") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if queue < 0 { throw ValidationError("--queue must be 0 or more") }
        if !(jobTtlHours > 0) { throw ValidationError("--job-ttl-hours must be positive") }
        if let tokenEnv, (ProcessInfo.processInfo.environment[tokenEnv] ?? "").isEmpty {
            throw ValidationError("--token-env \(tokenEnv): the variable is not set or empty")
        }
        if let inputsRoot {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: inputsRoot, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--inputs-root \(inputsRoot) is not a folder")
            }
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var options = ServeOptions(pipelines: pipelines, dataDirectory: data)
        options.host = host
        options.port = port
        options.maxUploadBytes = Int64(maxUploadMb) << 20
        options.maxSyncPixels = maxSyncPixels
        options.inputsRoot = inputsRoot
        options.workers = workers
        options.queueLimit = queue
        options.token = tokenEnv.flatMap { ProcessInfo.processInfo.environment[$0] }
        options.jobTTL = .seconds(jobTtlHours * 3600)
        options.threads = threads
        options.precision = precision
        let server: Server
        do {
            server = try await Server(options: options, logger: Logger(label: "aerialseg.serve"))
        } catch {
            throw fail(error)
        }
        let line = "aerialseg: serving \(pipelines.count) model(s) on http://\(host):"
        try await server.run { port in
            FileHandle.standardOutput.write(Data("\(line)\(port)\n".utf8))  // unbuffered: tests read the port
        }
    }
}
