import Foundation

/// Runs a command-line tool (GDAL's own utilities, our built binary) and captures its output.
public struct ToolResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public enum Tool {
    /// Runs `executable` (a path, or a name looked up on PATH) with `arguments`.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil)
        throws -> ToolResult
    {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes concurrently with the process so large outputs do not block it.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter()
        DispatchQueue.global().async {
            outData = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ToolResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                          stderr: String(decoding: errData, as: UTF8.self))
    }

    /// `gdalinfo -json [extra] path`, parsed.
    public static func gdalinfoJSON(_ path: String, _ extra: [String] = []) throws -> [String: Any] {
        let result = try run("gdalinfo", ["-json"] + extra + [path])
        guard result.status == 0,
              let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        else {
            throw ToolError(message: "gdalinfo failed on \(path): \(result.stderr)")
        }
        return object
    }

    /// The built `aerialseg` binary next to the test bundle.
    public static var aerialseg: String {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [bundleDir, Fixtures.packageRoot.appendingPathComponent(".build/debug"),
                          Fixtures.packageRoot.appendingPathComponent(".build/release")]
        for dir in candidates {
            let path = dir.appendingPathComponent("aerialseg").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return bundleDir.appendingPathComponent("aerialseg").path
    }
}

public struct ToolError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
