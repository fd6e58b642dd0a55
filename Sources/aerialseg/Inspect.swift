import ArgumentParser
import Foundation
import Pipeline

/// `aerialseg inspect CHECKPOINT... [--json]`
struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a checkpoint (.pth or .safetensors): format, tensors, parameters, architecture, classes.")

    @Argument(help: "Checkpoint files (mmsegmentation .pth, legacy .pth, or .safetensors).")
    var files: [String]

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        var reports: [CheckpointReport] = []
        var failed = false
        for file in files {
            do {
                let report = try CheckpointInspection.report(path: file)
                if json { reports.append(report) } else { print(CheckpointInspection.describe(report)) }
            } catch {
                printError("aerialseg: error: \(error)")
                failed = true
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
        }
        if failed { throw ExitCode(2) }
    }
}
