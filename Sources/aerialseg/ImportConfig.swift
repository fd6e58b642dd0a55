import ArgumentParser
import Foundation
import Pipeline

/// `aerialseg import-config CONFIG.py --output PIPELINE.yaml [--checkpoint FILE]`
struct ImportConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-config",
        abstract: "Write a pipeline file from an mmsegmentation config (.py, with its _base_ files).",
        discussion: """
            The config is read, never run: only the Python literal subset mmseg configs use is \
            accepted, and anything else is an error naming the line. The model, data_preprocessor, \
            test_cfg (tiling) and the dataset's classes and palette become the pipeline.
            """)

    @Argument(help: "An mmseg config file, e.g. configs/fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py.")
    var config: String

    @Option(help: "The pipeline file to write (.yaml).")
    var output: String

    @Option(help: "A checkpoint to record in the pipeline (relative to the pipeline's folder where possible).")
    var checkpoint: String?

    func run() async throws {
        do {
            var pipeline = try PipelineConfig.importing(configFile: config)
            if let checkpoint {
                pipeline.checkpoint = relativePath(checkpoint, from: URL(fileURLWithPath: output).deletingLastPathComponent())
            }
            try pipeline.write(to: output, header: ["Imported by aerialseg import-config from \(config)"])
            print(output)
        } catch {
            throw fail(error)
        }
    }
}

/// `path` relative to `folder` when both lie under a common folder other than `/`, else absolute.
func relativePath(_ path: String, from folder: URL) -> String {
    let target = URL(fileURLWithPath: path).standardizedFileURL.pathComponents
    let base = folder.standardizedFileURL.pathComponents
    let common = zip(target, base).prefix { $0 == $1 }.count
    guard common > 1 else { return URL(fileURLWithPath: path).standardizedFileURL.path }
    return (Array(repeating: "..", count: base.count - common) + target[common...]).joined(separator: "/")
}
