import Foundation
import GeoIO
import Limits
import Tiling

/// A block size given by the user (`--block-size 4096x16384`, or `4096` for a square): tests,
/// benchmarks and many-shard jobs on small inputs. Without it the size comes from `--memory-mb`.
public struct BlockSize: Sendable, Equatable, CustomStringConvertible {
    public let width: Int
    public let height: Int

    /// Throws unless both sides are positive.
    public init(width: Int, height: Int) throws {
        guard width > 0, height > 0 else {
            throw PipelineError(path: "--block-size", reason: "\(width)x\(height) is not a positive size",
                                hint: "give WIDTHxHEIGHT in pixels, e.g. 4096x16384, or one number for a square")
        }
        self.width = width
        self.height = height
    }

    /// `WxH` or `N`.
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard (parts.count == 1 || parts.count == 2), let w = parts[0], let h = parts.last ?? nil else {
            throw PipelineError(path: "--block-size", reason: "'\(text)' is not a size",
                                hint: "give WIDTHxHEIGHT in pixels, e.g. 4096x16384, or one number for a square")
        }
        try self.init(width: w, height: h)
    }

    public var description: String { "\(width)x\(height)" }
}

extension SegmentationJob {
    /// Bytes of everything but the stitchers while blocks are computed, within `--memory-mb`:
    /// - the process with its libraries and GDAL's block cache (`processBaseBytes` + the cache);
    /// - the weights as loaded and oneDNN's packed copies: ≤ 5 × 4 bytes per parameter (Winograd's
    ///   F(4×4, 3×3) weights take 4 × their size, and the loaded copy stays);
    /// - one window through the model, counted once per crop size (`activationFootprint`; views run
    ///   one after the other, so one window's worth whatever the TTA);
    /// - the reader's windows (`TileReader.windowsHeld()`: bands as floats and a validity byte).
    /// Deterministic (the network and the settings, not the CPU, threads or load), so every shard and
    /// every resume of a job cuts the same blocks.
    func reservedBytes() throws -> Int {
        let crop = options.resolvedCrop, model = loaded.model
        let activations = try model.activationFootprint(height: crop, width: crop)
        let reader = MemoryBudget.product(TileReader.windowsHeld(), crop, crop, MemoryBudget.sum(MemoryBudget.product(options.resolvedBands.count, 4), 1))
        return MemoryBudget.sum(Self.processBaseBytes, Int(options.blockCacheBytes), MemoryBudget.product(model.parameterCount, 20),
                                activations, reader)
    }

    /// The process before any model or image (binary, Foundation, GDAL, oneDNN and their data):
    /// 78 MiB peak RSS for `aerialseg info` on a small GeoTIFF, rounded up.
    static let processBaseBytes = 96 << 20

    /// What the stitchers of one block may hold: `--memory-mb` less `reservedBytes()` and an eighth
    /// of the budget for what the plan does not itemise (the allocator's slack, oneDNN's buffers,
    /// libraries, the band being written): measured peaks stay within 30 MiB of the itemised plan at
    /// 512 MiB and 1 GiB (README "Blocks and shards"). Throws when the model alone leaves nothing.
    public func stitcherBytes() throws -> Int {
        let budget = MemoryBudget.product(options.memoryMB, 1 << 20)
        let reserved = MemoryBudget.sum(try reservedBytes(), budget / 8)
        guard budget > reserved else {
            throw PipelineError(path: "--memory-mb \(options.memoryMB)",
                                reason: "the model and one \(options.resolvedCrop)² window need about "
                                    + "\((reserved + (1 << 20) - 1) >> 20) MiB before any block",
                                hint: "give --memory-mb \(((reserved >> 20) / 64 + 2) * 64) or more, or a smaller crop")
        }
        return budget - reserved
    }
}

extension SegmentationJob {
    /// The blocks an image of `grid` is cut into: `--block-size` when given, else the widest blocks
    /// (a multiple of the stride) whose stitchers fit `stitcherBytes()`, four times as tall.
    public func blocks(_ grid: WindowGrid) throws -> BlockGrid {
        do {
            if let size = options.blockSize {
                return try BlockGrid(windows: grid, blockWidth: size.width, blockHeight: size.height, views: views)
            }
            return try BlockGrid(windows: grid, classes: loaded.model.numClasses, views: views,
                                 stitcherBytes: try stitcherBytes())
        } catch let error as TilingError {
            throw PipelineError(path: "--block-size", reason: error.message, hint: error.hint)
        }
    }

    /// The blocks of `input` (opens it to read its size).
    public func blocks(of input: String) throws -> BlockGrid {
        let ds = try Dataset(path: input)
        if options.tta == .msFlip {  // one window of the whole image, one block
            let side = max(ds.width, ds.height, 32)
            let grid = try WindowGrid(imageWidth: ds.width, imageHeight: ds.height, crop: side, stride: side)
            return try BlockGrid(windows: grid, blockWidth: ds.width, blockHeight: ds.height)
        }
        return try blocks(WindowGrid(imageWidth: ds.width, imageHeight: ds.height, crop: options.resolvedCrop,
                                     stride: options.resolvedStride))
    }

    /// Views of each window: 2 with flip TTA.
    var views: Int { options.tta == .flip ? 2 : 1 }
}

extension BlockGrid {
    /// The work-folder piece holding the rows of `block` finished by the step starting at grid row
    /// `row`: numbered so that a single whole-image block numbers its pieces by grid row, as row
    /// bands always were.
    func piece(_ block: Block, gridRow row: Int) -> Int { block.index * windows.rowOrigins.count + row }

    /// The steps of `block` that finish some of its rows (each one piece in the work folder).
    func pieceSteps(_ block: Block) -> [Range<Int>] {
        steps(of: block).filter { !finishedRows(of: block, afterStep: $0).isEmpty }
    }

    /// Short tag of the layout for the work folder's name: a different block size, or the last grid
    /// rows taken as one step (their piece holds both rows' finished rows), is a different job.
    var tag: String { "b\(blockWidth)x\(blockHeight)" + (interleavesLastRows ? "s" : "") }
}

extension WorkFolder {
    /// Whether every piece of `block` is done.
    func isDone(_ block: Block, of blocks: BlockGrid) -> Bool {
        blocks.pieceSteps(block).allSatisfy { isDone(piece: blocks.piece(block, gridRow: $0.lowerBound)) }
    }

    /// The files of every block's pieces, in block then row order (labels, confidence).
    func pieceFiles(_ blocks: BlockGrid) -> (labels: [String], confidence: [String]) {
        let pieces = blocks.blocks.flatMap { b in blocks.pieceSteps(b).map { blocks.piece(b, gridRow: $0.lowerBound) } }
        return (pieces.map { file(piece: $0, kind: "labels") }, pieces.map { file(piece: $0, kind: "confidence") })
    }

    /// Marker left in the work folder of a sharded job once its outputs are in place, so that a shard
    /// run again (or late) does nothing.
    var assembledMarker: URL { url.appendingPathComponent("assembled") }

    /// After a sharded job's assembly: everything but the marker goes, the marker first, and the
    /// assembly claim is left for its holder to release, so that a shard that gets the claim next sees
    /// the marker.
    func keepOnlyAssembledMarker() throws {
        let temporary = assembledMarker.path + ".\(WorkFolder.processTag).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data()),
              rename(temporary, assembledMarker.path) == 0 else {
            throw GeoIOError(.writeFailed, path: assembledMarker.path, message: "cannot record the assembly",
                             hint: "check the disk")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        for name in names where name != "assembled" && name != "assembly.claim" {
            try? FileManager.default.removeItem(at: url.appendingPathComponent(name))
        }
    }
}
