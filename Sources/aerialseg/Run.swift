import ArgumentParser
import Foundation
import GeoIO
import Pipeline
import Tiling

/// `aerialseg run [PIPELINE.yaml] --input PATH... --output DIR [--checkpoint FILE] [...]`
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment orthophotos of any size into georeferenced label and confidence COGs and a preview.",
        discussion: """
            The weights are the pipeline's checkpoint: key, or --checkpoint. Without a pipeline, an \
            mmengine checkpoint (iter_N.pth) is run from the config and dataset classes it carries. \
            Each input is independent: one failing does not stop the others. Exit code 0 when all \
            succeeded, 1 when some inputs failed, 2 for a usage or configuration error. An interrupted \
            run resumes where it stopped when the same command is run again.
            """)

    @Argument(help: "A pipeline file (Pipelines/*.yaml); optional with an mmengine --checkpoint.")
    var pipeline: String?

    @Option(name: .long, parsing: .upToNextOption, help: "Input rasters: files, folders or glob patterns.")
    var input: [String]

    @Option(help: "Output folder (created if needed).")
    var output: String

    @Option(help: "Checkpoint (.pth or .safetensors); overrides the pipeline's checkpoint: key.")
    var checkpoint: String?

    @Flag(help: "Random weights instead of a checkpoint: meaningless outputs, for tests and benchmarks only.")
    var randomWeights = false

    @Option(help: "Crop (window) size in pixels; default: the pipeline's.")
    var crop: Int?

    @Option(help: "Stride between windows; default: the pipeline's.")
    var stride: Int?

    @Option(help: "mean (mmseg's average) or hann (seam-free).")
    var blend: String?

    @Option(help: "Test-time augmentation: none, flip or ms-flip (12 views, images up to 4096² pixels).")
    var tta = "none"

    @Option(help: "Confidence raster: uint8, float32 or none.")
    var confidence = "uint8"

    @Option(help: "Raster bands read as the model's input channels, e.g. 1,2,3 (as R,G,B) or 1,2,3,4.")
    var bands: String?

    @Option(help: "Preview PNG: overlay (the orthophoto with class colours and a legend), labels or none.")
    var preview = PreviewMode.overlay

    @Option(help: "onednn (default) or reference.")
    var backend = ComputeBackend.onednn

    @Option(help: "Threads.")
    var threads = 2

    @Flag(help: "No progress output.")
    var quiet = false

    func validate() throws {
        if Blend(rawValue: blend ?? "mean") == nil { throw ValidationError("--blend must be mean or hann") }
        if TTAMode(rawValue: tta) == nil { throw ValidationError("--tta must be none, flip or ms-flip") }
        if ConfidenceFormat(rawValue: confidence) == nil {
            throw ValidationError("--confidence must be uint8, float32 or none")
        }
        if let bands, parseIntegers(bands) == nil { throw ValidationError("--bands takes 1-based numbers, e.g. 1,2,3") }
        if input.isEmpty { throw ValidationError("give at least one --input") }
        if pipeline == nil && checkpoint == nil {
            throw ValidationError("give a pipeline file, or an mmengine checkpoint with --checkpoint")
        }
        if randomWeights && checkpoint != nil { throw ValidationError("--checkpoint and --random-weights exclude each other") }
    }

    func run() async throws {
        let job: SegmentationJob
        let inputs: [String]
        do {
            try StagedOutput.checkDirectory(output)  // an unusable output folder is a usage error (exit 2)
            var options = if let pipeline {
                RunOptions(pipeline: try PipelineConfig.load(path: pipeline), outputDirectory: output)
            } else {
                try RunOptions(mmengineCheckpoint: checkpoint!, outputDirectory: output)
            }
            options.checkpoint = checkpoint
            options.randomWeights = randomWeights
            options.crop = crop
            options.stride = stride
            options.blend = blend.flatMap(Blend.init(rawValue:))
            options.tta = TTAMode(rawValue: tta) ?? .none
            options.confidence = ConfidenceFormat(rawValue: confidence) ?? .uint8
            options.bands = bands.flatMap(parseIntegers)
            options.preview = preview
            options.backend = backend
            options.threads = threads
            inputs = try InputExpansion.expand(input)
            job = try options.pipeline.namingModelErrors { try SegmentationJob(options: options) }
            try job.checkModelMemory()
        } catch {
            throw fail(error)
        }
        job.notices.forEach { printError("aerialseg: note: \($0)") }  // even with --quiet: they change the meaning
        // Every input's up-front problems are reported before the first window runs.
        var failures = 0
        let ready = inputs.filter { path in
            do {
                try job.preflight(input: path)
                return true
            } catch {
                printErrorLine(error)
                failures += 1
                return false
            }
        }
        for path in ready {
            let reporter = ProgressReporter(enabled: !quiet)
            do {
                let output = URL(fileURLWithPath: self.output)
                let hook = PauseHook.fromEnvironment(
                    pausedFile: output.appendingPathComponent(".aerialseg-test-paused"),
                    continueFile: output.appendingPathComponent(".aerialseg-test-continue"))
                var bands = 0
                let result = try job.run(input: path, progress: { reporter.update($0) }, isCancelled: {
                    bands += 1
                    hook?.bandFinished(bands)
                    return false
                })
                reporter.finish()
                let resumed = result.resumedGridRows > 0 ? ", resumed after \(result.resumedGridRows) row bands" : ""
                let phases = result.phaseSeconds.map { String(format: "%@ %.1f s", $0.name, $0.seconds) }
                let rest = phases.isEmpty ? "" : " (" + phases.joined(separator: ", ") + ")"
                print(String(format: "%@: %d windows (%d skipped, no valid pixels) in %.1f s, model %.1f s%@%@",
                             path, result.windowsRun, result.windowsSkipped, result.seconds, result.modelSeconds, rest,
                             resumed))
                if !quiet { result.notices.forEach { printError("aerialseg: note: \($0)") } }
                result.outputs.forEach { print("  \($0)") }
            } catch {
                reporter.finish()
                printErrorLine(error)
                failures += 1
            }
        }
        if inputs.count > 1 {
            print("\(inputs.count - failures) of \(inputs.count) inputs done, \(failures) failed")
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

/// Progress on stderr: a bar when stderr is a terminal, a log line every 10 s otherwise.
final class ProgressReporter {
    let enabled: Bool
    let isTerminal = isatty(STDERR_FILENO) != 0
    var lastLine = 0.0
    var drew = false

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: RunProgress) {
        guard enabled else { return }
        let eta = p.etaSeconds.map { String(format: "ETA %dm%02ds", Int($0) / 60, Int($0) % 60) } ?? "ETA --"
        if isTerminal {
            let width = 30
            let filled = p.windowsTotal > 0 ? width * p.windowsDone / p.windowsTotal : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data(String(format: "\r%@ %d/%d windows %.1f/s %@ ", bar, p.windowsDone,
                                                       p.windowsTotal, p.windowsPerSecond, eta).utf8))
            drew = true
        } else if p.elapsedSeconds - lastLine >= 10 || p.windowsDone == p.windowsTotal {
            lastLine = p.elapsedSeconds
            printError(String(format: "aerialseg: %@: %d/%d windows, %.1f windows/s, %@", p.input, p.windowsDone,
                              p.windowsTotal, p.windowsPerSecond, eta))
        }
    }

    func finish() {
        if drew { FileHandle.standardError.write(Data("\n".utf8)) }
        drew = false
    }
}
