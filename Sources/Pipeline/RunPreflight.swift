import GeoIO
import Limits
import SegCore

extension SegmentationJob {
    /// Throws `MemoryBudgetError` when one window (the crop) through the model would exceed the
    /// memory budget: checked once, before any input is opened.
    public func checkModelMemory(budget: MemoryBudget = .current) throws {
        let crop = options.resolvedCrop
        try SegmentationModel.checkInferenceMemory(height: crop, width: crop, classes: loaded.model.numClasses,
                                                   path: options.crop != nil ? "--crop \(crop)" : pipelinePath,
                                                   budget: budget)
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
        // The stitcher holds full-width rows for (crop + stride) rows: classes' sums and a weight per
        // pixel and view (README "Memory does not grow with the image").
        let views = options.tta == .flip ? 2 : 1
        let rows = min(ds.height, options.resolvedCrop + options.resolvedStride)
        let bytes = MemoryBudget.product(ds.width, rows, loaded.model.numClasses + 1, MemoryLayout<Float>.size, views)
        try budget.check(bytes, for: "the open rows of a \(ds.width)-pixel-wide raster (\(rows) rows × "
                         + "\(loaded.model.numClasses) classes)", path: input,
                         hint: "cut it into narrower pieces, e.g. gdal_translate -srcwin, or use a smaller --crop")
        return (ds.width, ds.height)
    }

    private var pipelinePath: String { options.pipeline.sourcePath ?? "the pipeline's tiling.crop" }
}
