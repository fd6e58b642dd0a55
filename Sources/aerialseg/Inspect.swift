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
        try reportEach(files, json: json, CheckpointInspection.report(path:), describe: CheckpointInspection.describe)
    }
}
