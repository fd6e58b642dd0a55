import Foundation
import TestSupport

/// A real `aerialseg serve` child process on a free loopback port (`--port 0`; the port is read
/// from the line it prints), so tests can signal and `kill -9` it.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let data: URL
    let log: URL
    private(set) var port = 0

    /// Starts the server and waits (bounded) until it listens.
    init(_ arguments: [String], data: URL, environment: [String: String] = [:]) throws {
        self.data = data
        log = data.deletingLastPathComponent().appendingPathComponent("server-\(UUID().uuidString.prefix(6)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Tool.aerialseg)
        process.arguments = ["serve"] + arguments + ["--data", data.path, "--port", "0"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        var text = ""
        while Date() < deadline, process.isRunning {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.contains("http://127.0.0.1:") }),
               let p = Int(line.split(separator: ":").last ?? "") {
                port = p
                break
            }
        }
        guard port > 0 else {
            if process.isRunning { process.terminate() }
            throw RawHTTP.Failure(message: "server did not start: \(text) \(serverLog)")
        }
    }

    var serverLog: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: Data? = nil) throws -> HTTPReply {
        try RawHTTP.request(port: port, method, path, headers: headers, body: body)
    }

    /// Sends `signal` and waits (bounded) for the exit; returns the exit status, nil on time-out.
    func stop(_ signal: Int32, within seconds: Double = 60) -> Int32? {
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { return nil }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Polls `GET /v1/jobs/{id}` (with `headers`, e.g. the bearer token) until the job is finished
    /// (bounded); returns its JSON. An answer other than 200 fails at once: a 401 or 404 never
    /// turns into a job.
    func waitForJob(_ id: String, headers: [(String, String)] = [], seconds: Double = 300) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let reply = try request("GET", "/v1/jobs/\(id)", headers: headers)
            guard reply.status == 200 else {
                throw RawHTTP.Failure(message: "GET /v1/jobs/\(id): \(reply.status) \(reply.text.prefix(300))")
            }
            let job = try reply.json()
            if let status = job["status"] as? String, ["succeeded", "failed", "cancelled"].contains(status) { return job }
            usleep(100_000)
        }
        throw RawHTTP.Failure(message: "job \(id) did not finish in \(seconds) s")
    }

    /// Waits (bounded) until `path` exists.
    func waitForFile(_ path: URL, seconds: Double = 120) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !FileManager.default.fileExists(atPath: path.path) {
            guard Date() < deadline, process.isRunning else {
                throw RawHTTP.Failure(message: "\(path.lastPathComponent) never appeared; \(serverLog.suffix(2000))")
            }
            usleep(20_000)
        }
    }
}

/// Test material shared by the service suites.
enum ServiceFixtures {
    static let small = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")

    /// The small fixture model (1/16 widths) as a pipeline with its `checkpoint:`.
    static func smallPipeline(in dir: URL, name: String = "small", crop: Int = 128, stride: Int = 96) throws -> String {
        let oracle = try OracleFixture.small()
        return try oracle.writePipeline(in: dir, name: name, crop: crop, stride: stride, checkpoint: oracle.checkpoint)
    }

    static var treeCanopy: String { Fixtures.packageRoot.appendingPathComponent("Pipelines/tree-canopy.yaml").path }

    /// A `size`² crop of the tree-canopy orthophoto (a real georeferenced GeoTIFF).
    static func orthoCrop(_ size: Int, in dir: URL) throws -> URL {
        let source = Fixtures.packageRoot.appendingPathComponent("Examples/tree-canopy/data/ortho_10cm.tif").path
        let out = dir.appendingPathComponent("ortho_\(size).tif")
        let r = try Tool.run("gdal_translate", ["-q", "-srcwin", "0", "0", "\(size)", "\(size)", source, out.path])
        guard r.status == 0 else { throw RawHTTP.Failure(message: r.stderr) }
        return out
    }

    /// `aerialseg run`'s labels for `input` (the reference the server must match byte for byte).
    static func cliLabels(pipeline: String, input: URL, in dir: URL) throws -> Data {
        let out = dir.appendingPathComponent("cli-\(UUID().uuidString.prefix(6))")
        let r = try Tool.run(Tool.aerialseg, ["run", pipeline, "--input", input.path, "--output", out.path, "--quiet"])
        guard r.status == 0 else { throw RawHTTP.Failure(message: r.stderr) }
        let stem = input.deletingPathExtension().lastPathComponent
        return try Data(contentsOf: out.appendingPathComponent("\(stem).labels.tif"))
    }
}
