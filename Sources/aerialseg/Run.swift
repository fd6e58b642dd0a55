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
            run resumes where it stopped when the same command is run again. Each input is cut into \
            blocks (sized from --memory-mb, or --block-size); --shard I/N runs one of N processes \
            sharing the job and the output folder (0-based; auto: from Slurm's or Kubernetes' \
            environment); the process that finishes the last block assembles the outputs.
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

    @Option(help: "Convolution arithmetic: f32 (default, mmseg parity) or bf16 (faster where the CPU has AVX512-BF16); overrides the pipeline's precision:.")
    var precision: Precision?

    @Flag(help: "No progress output.")
    var quiet = false

    @Option(name: .customLong("memory-mb"),
            help: "Memory for one block's work in MiB; a quarter of it sets the block width.")
    var memoryMB = 1024

    @Option(name: .customLong("block-size"), help: "Fixed block size WIDTHxHEIGHT (or N) instead of the automatic one.")
    var blockSize: String?

    @Option(help: """
        Run shard I of N (0-based, e.g. 0/4), or auto: SLURM_ARRAY_TASK_ID/COUNT or \
        JOB_COMPLETION_INDEX + AERIALSEG_SHARD_COUNT.
        """)
    var shard: String?

    @Flag(help: "Compute nothing: assemble the outputs from the finished blocks (error if some are missing).")
    var assembleOnly = false

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
        if memoryMB < 16 { throw ValidationError("--memory-mb must be at least 16") }
        if tta == TTAMode.msFlip.rawValue && (shard != nil || assembleOnly) {
            throw ValidationError("--tta ms-flip holds the whole image as one piece: run it without --shard or --assemble-only")
        }
        if shard != nil && assembleOnly { throw ValidationError("--assemble-only runs alone, without --shard") }
    }

    func run() async throws {
        let job: SegmentationJob
        let inputs: [String]
        let shard: Shard?
        do {
            shard = try self.shard.map { try Shard(parsing: $0, environment: ProcessInfo.processInfo.environment) }
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
            options.precision = precision
            options.memoryMB = memoryMB
            options.blockSize = try blockSize.map(BlockSize.init(parsing:))
            options.sharded = shard != nil || assembleOnly
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
        // A shard's blocks: all blocks of all inputs, numbered in input order then row-major.
        var plan: [[Int]?] = ready.map { _ in nil }
        if let shard {
            do {
                plan = shard.blocks(ofInputs: try ready.map { try job.blocks(of: $0).count })
            } catch {
                throw fail(error)
            }
            let mine = plan.reduce(0) { $0 + ($1?.count ?? 0) }
            if !quiet { printError("aerialseg: shard \(shard): \(mine) blocks of \(ready.count) input(s)") }
        }
        // Test hook: pause after the N-th row band of this process (over all inputs and blocks).
        let outputURL = URL(fileURLWithPath: output)
        let pause = PauseHook.fromEnvironment(pausedFile: outputURL.appendingPathComponent(".aerialseg-test-paused"),
                                              continueFile: outputURL.appendingPathComponent(".aerialseg-test-continue"))
        var bandsDone = 0
        for (path, blocks) in zip(ready, plan) {
            let reporter = ProgressReporter(enabled: !quiet)
            do {
                let result = try job.run(input: path, blocks: blocks, assembleOnly: assembleOnly,
                                         progress: { reporter.update($0) }, isCancelled: {
                                             bandsDone += 1
                                             pause?.bandFinished(bandsDone)
                                             return false
                                         })
                reporter.finish()
                let resumed = result.resumedBands > 0 ? ", resumed after \(result.resumedBands) row bands" : ""
                let phases = result.phaseSeconds.map { String(format: "%@ %.1f s", $0.name, $0.seconds) }
                let rest = phases.isEmpty ? "" : " (" + phases.joined(separator: ", ") + ")"
                print(String(format: "%@: %d windows (%d skipped, no valid pixels) in %.1f s, model %.1f s%@%@",
                             path, result.windowsRun, result.windowsSkipped, result.seconds, result.modelSeconds, rest,
                             resumed))
                if let b = result.blocks {
                    print(String(format: "  blocks: %d of %d × %d pixels, %d computed by this run; recompute overhead "
                                 + "%.1f %% (%d windows in blocks for %d in the grid)", b.count, b.blockWidth,
                                 b.blockHeight, b.run, 100 * b.recomputeOverhead, b.windowsInBlocks, b.windowsInGrid))
                    print("  memory plan: model, reader and process ≈ \(b.reservedBytes >> 20) MiB + a block's stitchers "
                          + "≈ \(b.stitcherBytes >> 20) MiB (--memory-mb \(memoryMB))")
                }
                if !quiet { result.notices.forEach { printError("aerialseg: note: \($0)") } }
                switch result.assembly {
                case .assembled: result.outputs.forEach { print("  \($0)") }
                case .alreadyAssembled: print("  assembly: already done (outputs in place)")
                case .waiting(let missing, let total):
                    print("  assembly: left to the shard that finishes the last block "
                          + "(\(missing) of \(total) blocks not done)")
                case .claimedBy(let owner): print("  assembly: being done by \(owner)")
                }
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
