import Foundation
import SegCore
import Tiling

/// How confidence (the max softmax probability) is written.
public enum ConfidenceFormat: String, Sendable, Codable, CaseIterable {
    /// 0...255 = probability × 255, rounded (default: small files).
    case uint8
    /// The probability itself.
    case float32
    /// No confidence raster.
    case none
}

/// Everything `aerialseg run` needs besides the inputs.
public struct RunOptions: Sendable {
    public var pipeline: PipelineConfig
    /// Overrides the pipeline's `checkpoint:` (nil: the pipeline's).
    public var checkpoint: String?
    /// Random weights instead of a checkpoint: tests and benchmarks only; outputs are marked.
    public var randomWeights = false
    public var outputDirectory: String
    /// Overrides of the pipeline's tiling (nil: the pipeline's).
    public var crop: Int?
    public var stride: Int?
    public var blend: Blend?
    public var tta: TTAMode = .none
    public var confidence: ConfidenceFormat = .uint8
    /// Overrides the pipeline's input bands (1-based; as many as the model's input channels).
    public var bands: [Int]?
    /// `<stem>.preview.png`: the orthophoto with class colours over it (default), class colours
    /// alone, or none.
    public var preview = PreviewMode.overlay
    public var backend = ComputeBackend.onednn
    public var threads = 2
    /// Overrides the pipeline's `precision:` (default f32).
    public var precision: Precision?
    /// GDAL block cache while running: 32 MiB. Windows are read row band by row band, so the cache
    /// only needs the blocks of about one band of windows (16384 × 512 RGB pixels ≈ 25 MB); a small
    /// cache keeps peak memory low.
    public var blockCacheBytes: Int64 = 32 << 20
    /// Memory for the whole run, in MiB (`--memory-mb`, default 1024): what the model, the reader and
    /// the process leave of it is the stitchers' budget, which sets the automatic block width
    /// (`SegmentationJob.stitcherBytes`, `blocks`).
    public var memoryMB = 1024
    /// A fixed block size instead of the automatic one (`--block-size`).
    public var blockSize: BlockSize?
    /// Whether this job is one shard of several (`--shard`): a finished job then leaves an
    /// `assembled` marker in its work folder so that a shard run again does nothing.
    public var sharded = false

    /// The checkpoint behind `checkpoint`, already read (by `init(mmengineCheckpoint:)`).
    var preloadedCheckpoint: Checkpoint?

    /// `--precision`, else the pipeline's `precision:`, else f32.
    public var resolvedPrecision: Precision { precision ?? pipeline.precision ?? .f32 }

    public init(pipeline: PipelineConfig, outputDirectory: String) {
        self.pipeline = pipeline
        self.outputDirectory = outputDirectory
    }

    /// A job with no pipeline file: the pipeline is built from what an mmengine runner checkpoint
    /// carries (its config text and dataset classes); see `PipelineConfig.fromCheckpoint`.
    public init(mmengineCheckpoint path: String, outputDirectory: String) throws {
        let checkpoint = try Checkpoint.load(path: path)
        self.init(pipeline: try PipelineConfig.fromCheckpoint(checkpoint, path: path), outputDirectory: outputDirectory)
        self.checkpoint = path
        preloadedCheckpoint = checkpoint
    }

    public var resolvedCrop: Int { crop ?? pipeline.tiling?.crop ?? 512 }
    public var resolvedStride: Int { stride ?? pipeline.tiling?.stride ?? resolvedCrop * 2 / 3 }
    public var resolvedBlend: Blend { blend ?? pipeline.tiling?.blend.flatMap(Blend.init(rawValue:)) ?? .mean }
    public var resolvedBands: [Int] { bands ?? pipeline.input?.bands ?? [1, 2, 3] }
    /// Which weights the job runs with; throws when none are named.
    public func resolvedWeights() throws -> WeightsSource {
        try WeightsSource.resolve(pipeline: pipeline, checkpoint: checkpoint, randomWeights: randomWeights)
    }
    var resolvedScale: InputScale { pipeline.input?.scale ?? .none }
}

/// Progress of one input, for the CLI's progress bar or log lines.
public struct RunProgress: Sendable {
    public var input: String
    public var windowsDone: Int
    public var windowsTotal: Int
    public var elapsedSeconds: Double
    public var windowsPerSecond: Double { elapsedSeconds > 0 ? Double(windowsDone) / elapsedSeconds : 0 }
    public var etaSeconds: Double? {
        windowsPerSecond > 0 ? Double(windowsTotal - windowsDone) / windowsPerSecond : nil
    }
}

/// What one input produced.
public struct RunResult: Sendable {
    public var input: String
    public var outputs: [String]
    public var windowsRun: Int
    public var windowsSkipped: Int
    /// Row bands (pieces of blocks) taken over from an earlier or another run.
    public var resumedBands: Int
    /// How the image was cut into blocks, and what this run did of them.
    public var blocks: BlockReport?
    /// Whether the outputs were assembled by this run (`outputs` then lists them).
    public var assembly = Assembly.assembled
    public var seconds: Double
    /// Time spent in the model alone (for the overhead figure).
    public var modelSeconds: Double
    /// Where the rest went, in seconds: "read wait" (inference waiting for the reader thread),
    /// "stitch" (blending windows in), "bands" (merging views, writing finished row bands),
    /// "assemble" (COGs, preview, vectors).
    public var phaseSeconds: [(name: String, seconds: Double)] = []
    /// Notes about this input for the user (unscaled non-8-bit values, percentile bounds found).
    public var notices: [String] = []
}

/// The blocks of one input.
public struct BlockReport: Sendable {
    public var blockWidth: Int
    public var blockHeight: Int
    public var count: Int
    /// Blocks this run computed (some of their bands may have been done already).
    public var run: Int
    /// Windows of all blocks (border windows once per block they touch) and of the grid, per view.
    public var windowsInBlocks: Int
    public var windowsInGrid: Int
    /// The memory plan of a block: everything but the stitchers (`SegmentationJob.reservedBytes`) and
    /// the stitchers of a block this wide (`BlockGrid.stitcherBytes`), in bytes.
    public var reservedBytes = 0
    public var stitcherBytes = 0
    /// Extra inference for the blocks' border windows, as a fraction of the grid (0.03 = 3 %).
    public var recomputeOverhead: Double { Double(windowsInBlocks) / Double(max(windowsInGrid, 1)) - 1 }
}

/// What became of an input's assembly (mosaic → COGs, preview, vectors) at the end of a run.
public enum Assembly: Sendable, Equatable {
    /// This run assembled the outputs.
    case assembled
    /// Outputs were already assembled (a shard run again); nothing was done.
    case alreadyAssembled
    /// Blocks of other shards are missing; assembly is left to the shard finishing the last one.
    case waiting(missingBlocks: Int, of: Int)
    /// Another process holds the assembly claim ("host pid").
    case claimedBy(String)
}
