import GeoIO
import Limits
import SegCore
import Tiling

extension SegmentationJob {
    /// Throws `MemoryBudgetError` when one window (the crop) through the model would exceed the
    /// memory budget, or `PipelineError` when `--memory-mb` leaves no room for blocks beside the
    /// model: checked once, before any input is opened.
    public func checkModelMemory(budget: MemoryBudget = .current) throws {
        let crop = options.resolvedCrop
        try SegmentationModel.checkInferenceMemory(height: crop, width: crop, classes: loaded.model.numClasses,
                                                   path: options.crop != nil ? "--crop \(crop)" : pipelinePath,
                                                   budget: budget)
        // `--memory-mb` must leave room for blocks once the model and one window are counted (this
        // also counts the window's activations once, up front, for every input's layout).
        if options.blockSize == nil, options.tta != .msFlip { _ = try stitcherBytes() }
    }

    /// What can be known about an input before any inference, checked for every input before the
    /// first window runs: it opens, has the bands read, is georeferenced on a north-up grid, its
    /// pixels can be read (a sample over the whole raster), and the stitcher's open rows for its
    /// width fit the memory budget. Throws naming the input (`MemoryBudgetError` for the budget);
    /// returns its size. `aerialseg run` calls it for every input, `aerialseg serve` for every
    /// submitted raster before it answers.
    @discardableResult
    public func preflight(input: String, budget: MemoryBudget = .current) throws -> (width: Int, height: Int) {
        let ds = try open(input).dataset
        try ds.requireNorthUpGrid()
        try ds.checkReadable()
        if !options.sharded { try RunLock.check(directory: options.outputDirectory, input: input) }
        // A block's stitchers hold about (crop − stride) rows of the block's width: classes' sums, a
        // weight and a validity byte per pixel and view (README "Blocks and shards").
        guard options.tta != .msFlip else { return (ds.width, ds.height) }
        let grid = try WindowGrid(imageWidth: ds.width, imageHeight: ds.height, crop: options.resolvedCrop,
                                  stride: options.resolvedStride)
        let blocks = try self.blocks(grid)
        let bytes = BlockGrid.stitcherBytes(width: blocks.blockWidth, windows: grid, classes: loaded.model.numClasses,
                                            views: views)
        try budget.check(bytes, for: "the stitchers of a \(blocks.blockWidth)-pixel-wide block "
                         + "(\(loaded.model.numClasses) classes, crop \(grid.crop), stride \(grid.stride))", path: input,
                         hint: "use a narrower --block-size or a smaller --memory-mb")
        return (ds.width, ds.height)
    }

    private var pipelinePath: String { options.pipeline.sourcePath ?? "the pipeline's tiling.crop" }
}
