import Foundation
import Testing
import TestSupport

/// `aerialseg run` on the small fixture model over a real orthophoto crop, with the test hook that
/// pauses a run after its N-th row band (`AERIALSEG_TEST_PAUSE_AFTER_BANDS`), for resume, damage
/// and lock tests at a known point instead of after a timer.
struct RunFixture {
    let dir: URL
    let pipeline: String
    let input: String
    let checkpoint: String
    /// The output stem of `input`.
    var stem: String { ((input as NSString).lastPathComponent as NSString).deletingPathExtension }

    /// A 512² crop of the tree-canopy orthophoto, tiled 64/48 (11 grid rows, 121 windows).
    init(_ label: String, size: Int = 512, checkpoint: String? = nil, extra: [String] = []) throws {
        dir = Fixtures.temporaryDirectory(label)
        let oracle = try OracleFixture.small()
        self.checkpoint = checkpoint ?? oracle.checkpoint
        pipeline = try oracle.writePipeline(in: dir, crop: 64, stride: 48, extra: extra)
        input = try Self.orthoCrop(size, in: dir).path
    }

    /// A `size`² crop of the tree-canopy orthophoto (a real georeferenced GeoTIFF).
    static func orthoCrop(_ size: Int, in dir: URL, name: String? = nil) throws -> URL {
        let source = Fixtures.packageRoot.appendingPathComponent("Examples/tree-canopy/data/ortho_10cm.tif").path
        let out = dir.appendingPathComponent(name ?? "ortho_\(size).tif")
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        let r = try Tool.run("gdal_translate", ["-q", "-srcwin", "0", "0", "\(size)", "\(size)", source, out.path])
        guard r.status == 0 else { throw ToolError(message: r.stderr) }
        return out
    }

    func arguments(_ out: String, inputs: [String]? = nil) -> [String] {
        ["run", pipeline, "--input"] + (inputs ?? [input]) + ["--output", out, "--checkpoint", checkpoint]
    }

    /// Runs to the end.
    func run(_ out: String, inputs: [String]? = nil, extra: [String] = ["--quiet"]) throws -> ToolResult {
        try Tool.run(Tool.aerialseg, arguments(out, inputs: inputs) + extra)
    }

    /// Starts a run that pauses after `bands` row bands; returns once it is paused (holding its
    /// lock, its work folder on disk).
    func startPaused(_ out: String, afterBands bands: Int) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Tool.aerialseg)
        process.arguments = arguments(out) + ["--quiet"]
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["AERIALSEG_TEST_PAUSE_AFTER_BANDS": "\(bands)"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let paused = "\(out)/.aerialseg-test-paused"
        let deadline = Date().addingTimeInterval(300)
        while !FileManager.default.fileExists(atPath: paused) {
            guard process.isRunning, Date() < deadline else {
                throw ToolError(message: "the run never paused (exit \(process.isRunning ? -1 : process.terminationStatus))")
            }
            usleep(20_000)
        }
        return process
    }

    /// A run killed with SIGKILL after `bands` row bands (deterministically, while paused).
    func killedRun(_ out: String, afterBands bands: Int) throws {
        let process = try startPaused(out, afterBands: bands)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: "\(out)/.aerialseg-test-paused")
    }

    /// The work folder of `out` (there is one after a killed run).
    func workFolder(_ out: String) throws -> URL {
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: out)
            .first { $0.hasPrefix(".aerialseg-work-") }, "no work folder in \(out)")
        return URL(fileURLWithPath: out).appendingPathComponent(name)
    }

    /// The bytes of each output that must not depend on how the run got there.
    func outputs(_ out: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for suffix in ["labels.tif", "labels.tif.aux.xml", "confidence.tif", "preview.png"] {
            let path = "\(out)/\(stem).\(suffix)"
            if FileManager.default.fileExists(atPath: path) { files[suffix] = try Data(contentsOf: URL(fileURLWithPath: path)) }
        }
        return files
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }
}
