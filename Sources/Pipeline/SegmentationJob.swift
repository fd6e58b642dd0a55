import Foundation
import GeoIO
import SegCore
import Tiling

/// `aerialseg run` for one pipeline: the model is loaded once, then each input raster is segmented
/// with sliding windows, stitched in row bands, and written as georeferenced outputs.
///
/// Memory does not grow with the image: windows are read one at a time through GDAL's block cache,
/// the stitcher holds only the rows still receiving windows, and each finished row band is written
/// at once to a small GeoTIFF in a work folder. When the last band is done, the bands are mosaicked
/// into Cloud-Optimized GeoTIFFs in a staging folder and moved into place. A killed job finds its
/// work folder (named after a hash of the input and every setting) and resumes after the last band
/// that was written completely; the result is byte-identical to an uninterrupted run.
public final class SegmentationJob {
    public let options: RunOptions
    public let loaded: LoadedModel
    private let preprocessing: (mean: [Float], std: [Float], scale: Float, reverse: Bool)

    /// Loads the model and validates the settings before any input is touched (nothing is written
    /// when this throws).
    public convenience init(options: RunOptions) throws {
        var options = options
        let preloaded = options.preloadedCheckpoint
        options.preloadedCheckpoint = nil  // the model holds the weights now; don't keep the file's bytes
        try Self.validate(options)
        let loaded = try ModelLoading.load(options.pipeline, weights: try options.resolvedWeights(),
                                           backend: options.backend, threads: options.threads,
                                           precision: options.resolvedPrecision, preloaded: preloaded)
        try self.init(options: options, loaded: loaded)
    }

    /// A job on a model already loaded from `options.pipeline` (`aerialseg serve` loads each model
    /// once and runs every request through a job of its own). Validates the settings like `init(options:)`.
    public init(options: RunOptions, loaded: LoadedModel) throws {
        try Self.validate(options)
        self.options = options
        self.loaded = loaded
        GDAL.setBlockCacheSize(options.blockCacheBytes)
        let bands = options.resolvedBands, channels = loaded.model.inputChannels
        guard bands.count == channels else {
            throw PipelineError(path: Self.bandsSource(options), reason: "the model takes \(channels) input channels "
                                + "(backbone in_channels) but \(bands.count) bands are read, \(bands)",
                                hint: "list \(channels) bands in input.bands or --bands, or change in_channels")
        }
        let pre = loaded.model.preprocessing
        // Raster bands are read in the listed order (three: R, G, B); a BGR-trained network gets three reversed.
        let reverse = pre.reverses(.rgb)
        var mean = pre.mean, std = pre.std
        if let m = options.pipeline.input?.mean { mean = m.map(Float.init) }
        if let s = options.pipeline.input?.std { std = s.map(Float.init) }
        preprocessing = (mean, std, pre.divideBy255 ? 1 / 255 : 1, reverse)
    }

    /// Tiling and band settings, checked before a model is loaded.
    private static func validate(_ options: RunOptions) throws {
        _ = try WindowGrid(imageWidth: 1, imageHeight: 1, crop: options.resolvedCrop, stride: options.resolvedStride)
        let bands = options.resolvedBands
        guard !bands.isEmpty, bands.allSatisfy({ $0 >= 1 }) else {
            throw PipelineError(path: bandsSource(options), reason: "bands \(bands) must be 1-based band numbers",
                                hint: "e.g. --bands 1,2,3")
        }
    }

    /// What the error lines about bands name: `--bands` when given there, else the pipeline.
    private static func bandsSource(_ options: RunOptions) -> String {
        options.bands != nil ? "--bands" : options.pipeline.name ?? "pipeline"
    }

    /// Notices for the user (random weights, widths from the checkpoint, ...).
    public var notices: [String] { loaded.notices }

    /// Output file names for an input.
    public func outputNames(for input: String) -> RunOutputNames { RunOutputNames(input: input) }

    /// Opens `input` with the bands the pipeline reads and its georeferencing, or throws naming it
    /// (`preflight(input:)` and `run(input:)` both open an input through this).
    func open(_ input: String) throws -> (dataset: Dataset, transform: GeoTransform, crs: SpatialReference) {
        let ds = try Dataset(path: input)
        let bands = options.resolvedBands
        guard bands.allSatisfy({ $0 <= ds.bandCount }) else {
            let hint = bands.count == 3 ? "e.g. --bands 1,1,1 for a single band" : "choose bands in 1...\(ds.bandCount)"
            throw PipelineError(path: input,
                                reason: "has \(ds.bandCount) band(s) but the pipeline reads bands \(bands)",
                                hint: "choose \(bands.count) bands with input.bands or --bands, \(hint)")
        }
        guard let transform = ds.geoTransform, let crs = ds.spatialReference else {
            throw PipelineError(path: input, reason: "has no georeferencing (geotransform and CRS)",
                                hint: "outputs would not be placed on Earth; add it with gdal_translate -a_srs -a_ullr")
        }
        return (ds, transform, crs)
    }

    /// Segments one raster, block by block (`blocks(_:)`), then assembles its outputs. Throws
    /// `GeoIOError` / `PipelineError` with a clear message for bad input.
    ///
    /// `blocks` limits the run to some blocks (a shard's, `Shard.blocks(ofInputs:)`); the outputs are
    /// assembled by the run that finds every block done, under an `AssemblyClaim`, and `assembly` in
    /// the result says what happened otherwise. `assembleOnly` computes nothing: it assembles, or
    /// throws naming how many blocks are missing, taking over any claim.
    ///
    /// `isCancelled` is asked after each row band (once the band is on disk): when it answers true the
    /// run throws `CancellationError`, leaving the work folder so that the same job run again resumes there.
    public func run(input: String, blocks selection: [Int]? = nil, assembleOnly: Bool = false,
                    progress: (RunProgress) -> Void = { _ in },
                    isCancelled: () -> Bool = { false }) throws -> RunResult {
        let start = ContinuousClock.now
        let (ds, transform, crs) = try open(input)
        let bands = options.resolvedBands
        let grid = try WindowGrid(imageWidth: ds.width, imageHeight: ds.height, crop: options.resolvedCrop,
                                  stride: options.resolvedStride)
        let (scaling, notices) = try InputScaling.resolve(options.resolvedScale,
                                                          fill: options.pipeline.input?.nodataFill, dataset: ds,
                                                          bands: bands)
        let names = outputNames(for: input)
        // Shards share the job by design (pieces' markers and the assembly claim); one process alone
        // holds the lock of the input's outputs.
        try StagedOutput.prepareDirectory(options.outputDirectory)
        let lock = options.sharded ? nil : try RunLock(directory: options.outputDirectory, input: input)
        defer { lock?.release() }
        if options.tta == .msFlip {
            guard scaling.isIdentity else {
                throw PipelineError(path: input, reason: "--tta ms-flip resizes 8-bit images as mmseg does, unscaled",
                                    hint: "use --tta flip with input.scale or input.nodata_fill")
            }
            let work = try WorkFolder(directory: options.outputDirectory,
                                      key: try resumeKey(input: input, dataset: ds, scaling: scaling))
            var result = try runMultiScale(ds, input: input, bands: bands, transform: transform, crs: crs,
                                           names: names, work: work, start: start, progress: progress)
            result.notices = notices + result.notices
            return result
        }
        let blocks = try self.blocks(grid)
        let work = try WorkFolder(directory: options.outputDirectory,
                                  key: try resumeKey(input: input, dataset: ds, scaling: scaling) + "-" + blocks.tag)
        var result = RunResult(input: input, outputs: [], windowsRun: 0, windowsSkipped: 0, resumedBands: 0,
                               seconds: 0, modelSeconds: 0)
        result.notices = notices
        let selected = assembleOnly ? [] : selection ?? Array(0..<blocks.count)
        result.blocks = BlockReport(blockWidth: blocks.blockWidth, blockHeight: blocks.blockHeight, count: blocks.count,
                                    run: 0, windowsInBlocks: blocks.windowsInBlocks * views,
                                    windowsInGrid: grid.count * views)
        result.blocks?.reservedBytes = try reservedBytes()
        result.blocks?.stitcherBytes = BlockGrid.stitcherBytes(width: blocks.blockWidth, windows: grid,
                                                               classes: loaded.model.numClasses, views: views)
        if options.sharded, isAssembled(work, names: names) {
            result.assembly = .alreadyAssembled
            result.seconds = (ContinuousClock.now - start).seconds
            return result
        }

        var run = BlockRun(total: selected.reduce(0) { $0 + blocks.block($1).windowCount * views })
        for index in selected {
            try runBlock(blocks.block(index), of: blocks, input: input, bands: bands, scaling: scaling,
                         transform: transform, crs: crs, work: work, run: &run, start: start, progress: progress,
                         isCancelled: isCancelled)
        }
        result.windowsRun = run.windows
        result.windowsSkipped = run.skipped
        result.resumedBands = run.resumedBands
        result.modelSeconds = run.modelSeconds
        result.blocks?.run = selected.count
        result.notices += run.notices

        let t3 = ContinuousClock.now
        let missing = blocks.blocks.filter { !work.isDone($0, of: blocks) }.count
        if missing > 0 {
            if assembleOnly {
                throw PipelineError(path: input, reason: "\(missing) of \(blocks.count) blocks are not done",
                                    hint: "run the shards that compute them first (the same command with --shard)")
            }
            result.assembly = .waiting(missingBlocks: missing, of: blocks.count)
        } else {
            switch try AssemblyClaim.take(in: work.url, force: assembleOnly) {
            case .heldBy(let owner):
                result.assembly = .claimedBy(owner)
            case .acquired(let claim):
                defer { claim.release() }
                if options.sharded, isAssembled(work, names: names) {  // another shard finished it meanwhile
                    result.assembly = .alreadyAssembled
                } else {
                    result.outputs = try finishOutputs(pieces: work.pieceFiles(blocks), input: input, names: names,
                                                       work: work)
                }
            }
        }
        result.seconds = (ContinuousClock.now - start).seconds
        result.phaseSeconds = [("read wait", run.readWait), ("stitch", run.stitch), ("bands", run.bands),
                               ("assemble", (ContinuousClock.now - t3).seconds)]
        return result
    }

    /// Counts and timings of the blocks of one run.
    struct BlockRun {
        let total: Int
        var done = 0, windows = 0, skipped = 0, resumedBands = 0
        var modelSeconds = 0.0, readWait = 0.0, stitch = 0.0, bands = 0.0
        /// Damaged pieces found on resume, one line each.
        var notices: [String] = []
    }

    /// Computes one block: its windows step by step (grid row by grid row, the last two rows together
    /// with one view: `WindowGrid.rowSteps`), clipped to the block by its stitchers, each finished row
    /// band written as a piece of the work folder. A block interrupted earlier resumes after its last
    /// complete band (replaying the grid rows that still feed open rows).
    private func runBlock(_ block: Block, of blocks: BlockGrid, input: String, bands: [Int], scaling: InputScaling,
                          transform: GeoTransform, crs: SpatialReference, work: WorkFolder, run: inout BlockRun,
                          start: ContinuousClock.Instant, progress: (RunProgress) -> Void,
                          isCancelled: () -> Bool) throws {
        let grid = blocks.windows
        let pieceSteps = blocks.pieceSteps(block)
        // Resume after the block's last verified band; a damaged one is computed again, with a note.
        var resumeRow = block.gridRows.upperBound
        for step in pieceSteps {
            let row = step.lowerBound
            let piece = blocks.piece(block, gridRow: row)
            switch work.state(of: WorkFolder.band(piece)) {
            case .done: continue
            case .pending: break
            case .damaged(let why):
                run.notices.append("row band \(WorkFolder.band(piece)) of the work folder \(work.url.path) is damaged "
                                   + "(\(why)); computing it again")
            }
            resumeRow = row
            break
        }
        run.resumedBands += pieceSteps.filter { $0.lowerBound < resumeRow }.count
        let replayRow = max(block.gridRows.lowerBound, grid.replayStart(forResumingAt: resumeRow))
        run.done += (replayRow - block.gridRows.lowerBound) * block.gridColumns.count * views
        guard resumeRow < block.gridRows.upperBound else {
            run.done += (block.gridRows.upperBound - replayRow) * block.gridColumns.count * views
            return
        }
        let stitchers = (0..<views).map { _ in
            StreamingStitcher(grid: grid, classes: loaded.model.numClasses, blend: options.resolvedBlend, block: block,
                              startGridRow: replayRow)
        }
        // Windows in processing order (mmseg's per pixel, restricted to those touching the block); a
        // reader thread fetches them ahead of the model. Steps of two rows come with one view only.
        func viewTiles(_ step: Range<Int>, _ view: Int) -> [Tile] {
            (view == 0 ? grid.tiles(inStep: step) : grid.mirroredTiles(inRow: step.lowerBound)).filter(block.touches)
        }
        let steps = grid.rowSteps(interleavingLastRows: blocks.interleavesLastRows,
                                  within: replayRow..<block.gridRows.upperBound)
        precondition(views == 1 || steps.allSatisfy { $0.count == 1 }, "two-row steps with several views")
        let order = steps.flatMap { step in (0..<views).flatMap { viewTiles(step, $0) } }
        let reader = TileReader(path: input, bands: bands, scaling: scaling, tiles: order)
        defer { reader.cancel() }
        for step in steps {
            let row = step.lowerBound
            // Labels and confidence of the rows this step finishes, filled chunk by chunk: with one
            // view, each column chunk as soon as no later window of the step reaches it.
            var piece = PieceBuffer(rows: blocks.finishedRows(of: block, afterStep: step), x: block.x,
                                    width: block.width, confidence: options.confidence)
            for view in 0..<views {
                for tile in viewTiles(step, view) {
                    let waited = ContinuousClock.now
                    let item = reader.next()
                    run.readWait += (ContinuousClock.now - waited).seconds
                    precondition(item.tile == tile, "reader out of order")
                    let (pixels, valid) = try item.result.get()
                    run.done += 1
                    defer {
                        if views == 1 {
                            let t = ContinuousClock.now
                            piece.fill(stitchers[0].finishColumns(afterTile: tile, inStep: step).map { [$0] })
                            run.bands += (ContinuousClock.now - t).seconds
                        }
                        progress(RunProgress(input: input, windowsDone: run.done, windowsTotal: run.total,
                                             elapsedSeconds: (ContinuousClock.now - start).seconds))
                    }
                    guard valid.contains(1) else {  // nothing to see here: no inference
                        run.skipped += 1
                        continue
                    }
                    let network = makeInput(pixels, height: tile.height, width: tile.width)
                    let t0 = ContinuousClock.now
                    var t1 = t0
                    try loaded.model.withLogits(network, flip: view == 1) { l in
                        t1 = ContinuousClock.now
                        valid.withUnsafeBufferPointer { v in stitchers[view].add(tile, logits: l, validity: v) }
                    }
                    run.modelSeconds += (t1 - t0).seconds
                    run.windows += 1
                    run.stitch += (ContinuousClock.now - t1).seconds
                }
            }
            let t2 = ContinuousClock.now
            let rest = stitchers.map { $0.finishStepInChunks(step) }
            piece.fill(rest[0].indices.map { k in rest.map { $0[k] } })
            if row >= resumeRow, !piece.rows.isEmpty {
                try writeBand(labels: piece.labels, confidence: piece.confidence, rows: piece.rows, x: block.x,
                              width: block.width, piece: blocks.piece(block, gridRow: row), transform: transform,
                              crs: crs, work: work)
            }
            run.bands += (ContinuousClock.now - t2).seconds
            if isCancelled() { throw CancellationError() }
        }
    }

    /// Labels and confidence of one piece of a block (the rows one grid row finishes, across the
    /// block), filled from column chunks as the stitchers hand them over; confidence already in the
    /// output's type (a byte per pixel for uint8).
    struct PieceBuffer {
        let rows: Range<Int>
        let x: Int
        let width: Int
        var labels: [UInt8]
        var confidence: BandConfidence

        init(rows: Range<Int>, x: Int, width: Int, confidence kind: ConfidenceFormat) {
            (self.rows, self.x, self.width) = (rows, x, width)
            labels = [UInt8](repeating: 255, count: rows.count * width)
            let n = kind == .none ? 0 : rows.count * width
            confidence = kind == .float32 ? .float32([Float](repeating: 0, count: n)) : .uint8([UInt8](repeating: 0, count: n))
        }

        /// Merges each chunk's views (`mergeViews`, per pixel: the same bytes as over whole rows)
        /// into its columns.
        mutating func fill(_ chunks: [[StitchedBand]]) {
            for views in chunks {
                let chunk = views[0]
                precondition(chunk.rows == rows, "chunk of rows \(chunk.rows) for a piece of rows \(rows)")
                let (l, c) = mergeViews(views)
                let offset = chunk.x - x
                for k in 0..<rows.count {
                    for i in 0..<chunk.width { labels[k * width + offset + i] = l[k * chunk.width + i] }
                }
                confidence.store(c, rows: rows.count, width: chunk.width, at: offset, in: width)
            }
        }
    }

    /// Whether a sharded job's outputs are in place (its work folder keeps only the marker).
    private func isAssembled(_ work: WorkFolder, names: RunOutputNames) -> Bool {
        FileManager.default.fileExists(atPath: work.assembledMarker.path)
            && FileManager.default.fileExists(atPath: (options.outputDirectory as NSString)
                .appendingPathComponent(names.labels))
    }

    /// The 12-view TTA path: one band covering the whole image (not resumable mid-image).
    private func runMultiScale(_ ds: Dataset, input: String, bands: [Int], transform: GeoTransform,
                               crs: SpatialReference, names: RunOutputNames,
                               work: WorkFolder, start: ContinuousClock.Instant,
                               progress: (RunProgress) -> Void) throws -> RunResult {
        let side = max(ds.width, ds.height, 32)
        let grid = try WindowGrid(imageWidth: ds.width, imageHeight: ds.height, crop: side, stride: side)
        var counts = (run: 0, skipped: 0, done: 0)
        var modelSeconds = 0.0
        let (completed, damage) = work.completedGridRows(grid)
        if completed == 0 {
            let band = try multiScaleFlip(ds, input: input, bands: bands, progress: progress, counts: &counts,
                                          modelSeconds: &modelSeconds)
            try writeBand([band], piece: 0, x: 0, transform: transform, crs: crs, work: work,
                          rereadValidity: (ds, bands))
        }
        let outputs = try finishOutputs(pieces: work.bandFiles(grid), input: input, names: names, work: work)
        var result = RunResult(input: input, outputs: outputs, windowsRun: counts.run, windowsSkipped: 0,
                               resumedBands: completed, seconds: (ContinuousClock.now - start).seconds,
                               modelSeconds: modelSeconds)
        result.notices = damage.map { [$0] } ?? []
        return result
    }

    /// Mosaics the pieces (row bands of blocks, georeferenced: GDAL's VRT places them) into COGs,
    /// then the preview, all staged; moves them into place; drops the work folder (a sharded job's
    /// keeps its `assembled` marker).
    private func finishOutputs(pieces: (labels: [String], confidence: [String]), input: String,
                               names: RunOutputNames, work: WorkFolder) throws -> [String] {
        let output = try StagedOutput(directory: options.outputDirectory)
        let provenance = ["AERIALSEG_WEIGHTS": loaded.weightsMetadata]
        let style = BandStyle(noDataValue: 255, colorTable: loaded.palette.map { RGBA(UInt8($0[0]), UInt8($0[1]), UInt8($0[2])) },
                              categoryNames: loaded.classes, description: "class", metadata: provenance)
        // One COG after the other: built side by side they finish ~7 s sooner on 16384² but raise the
        // peak memory by ~50 MiB (two COG drivers with their buffers on top of the loaded model).
        try writeCloudOptimizedGeoTIFF(mosaicOf: pieces.labels, to: output.stagingPath(names.labels), style: style,
                                       resampling: .mode)
        var primaries = [names.labels]
        if options.confidence != .none {
            try writeCloudOptimizedGeoTIFF(mosaicOf: pieces.confidence, to: output.stagingPath(names.confidence),
                                           style: BandStyle(description: "confidence", metadata: provenance),
                                           resampling: .average)
            primaries.append(names.confidence)
        }
        if options.preview != .none {
            let preview = Preview(palette: loaded.palette, classes: loaded.classes,
                                  uncoloured: Set(options.pipeline.vectors?.exclude ?? []))
            try preview.write(labels: output.stagingPath(names.labels), input: input, bands: options.resolvedBands,
                              mode: options.preview, to: output.stagingPath(names.preview))
            primaries.append(names.preview)
        }
        if let vectors = try writeRunVectors(names: names, output: output, pipeline: options.pipeline,
                                             classNames: loaded.classes) {
            primaries.append(vectors)
        }
        try output.commit(primaries: primaries)
        if options.sharded { try work.keepOnlyAssembledMarker() } else { work.remove() }
        return primaries.map(output.finalPath)
    }

    /// (C, h, w) scaled raster values → the network's normalised 1×C×h×w input (C = the model's
    /// input channels; three are reversed for a BGR-trained network).
    func makeInput(_ pixels: [Float], height: Int, width: Int) -> Tensor {
        let n = height * width
        let (mean, std, scale, reverse) = preprocessing
        let channels = mean.count
        var data = [Float](repeating: 0, count: channels * n)
        for c in 0..<channels {
            let source = reverse ? channels - 1 - c : c
            for i in 0..<n { data[c * n + i] = (pixels[source * n + i] * scale - mean[c]) / std[c] }
        }
        return Tensor(shape: [1, channels, height, width], data: data)
    }

    /// Labels and confidence of finished rows → two small GeoTIFFs in the work folder.
    /// Invalid input pixels (nodata, alpha, mask) get label 255 and confidence 0: the streamed path
    /// hands the validity of its windows to the stitcher; a band built otherwise (multi-scale TTA) has
    /// its validity read again from `rereadValidity`.
    private func writeBand(_ views: [StitchedBand], piece: Int, x: Int, transform: GeoTransform, crs: SpatialReference,
                           work: WorkFolder, rereadValidity: (Dataset, [Int])? = nil) throws {
        var (labels, confidence) = mergeViews(views)
        let band = views[0]
        if let (dataset, bands) = rereadValidity {
            try maskInvalid(band, dataset: dataset, bands: bands, labels: &labels, confidence: &confidence)
        }
        try writeBand(labels: labels, confidence: BandConfidence(confidence, as: options.confidence), rows: band.rows,
                      x: x, width: band.width, piece: piece, transform: transform, crs: crs, work: work)
    }

    /// Labels and confidence of image rows `rows`, columns `x..<x+width` → the piece's two GeoTIFFs.
    private func writeBand(labels: [UInt8], confidence: BandConfidence, rows: Range<Int>, x: Int, width: Int, piece: Int,
                           transform: GeoTransform, crs: SpatialReference, work: WorkFolder) throws {
        let region = PixelWindow(x: x, y: rows.lowerBound, width: width, height: rows.count)
        var spec = RasterSpec(width: width, height: rows.count)
        // Row bands are read back once, by the COG assembly: fast ZSTD, not the final DEFLATE.
        spec.compression = .zstd
        spec.compressionLevel = 1
        spec.geoTransform = transform.window(region)
        spec.crsWKT = crs.wkt
        spec.noDataValue = 255
        let whole = PixelWindow(x: 0, y: 0, width: width, height: rows.count)
        var files = [WorkFolder.bandFile(piece, "labels")]
        try work.write(files[0]) { path in
            let writer = try RasterWriter(path: path, spec: spec)
            try labels.withUnsafeBufferPointer { try writer.write(whole, bytes: $0) }
            try writer.close()
        }
        if options.confidence != .none {
            var confSpec = spec
            confSpec.noDataValue = nil
            confSpec.dataType = options.confidence == .float32 ? .float32 : .byte
            files.append(WorkFolder.bandFile(piece, "confidence"))
            try work.write(files[1]) { path in
                let writer = try RasterWriter(path: path, spec: confSpec)
                switch confidence {
                case .float32(let values): try values.withUnsafeBufferPointer { try writer.write(whole, values: $0) }
                case .uint8(let values): try values.withUnsafeBufferPointer { try writer.write(whole, bytes: $0) }
                }
                try writer.close()
            }
        }
        try work.markDone(WorkFolder.band(piece), files: files)
    }

    /// Label 255 and confidence 0 where the input pixels of `band`'s rows are invalid, read from the raster.
    private func maskInvalid(_ band: StitchedBand, dataset: Dataset, bands: [Int], labels: inout [UInt8],
                             confidence: inout [Float]) throws {
        let chunk = 1024
        var scratch = [Float](repeating: 0, count: bands.count * chunk * band.rows.count)
        var valid = [UInt8](repeating: 0, count: chunk * band.rows.count)
        for x0 in stride(from: 0, to: band.width, by: chunk) {
            let window = PixelWindow(x: x0, y: band.rows.lowerBound, width: min(chunk, band.width - x0),
                                     height: band.rows.count)
            try scratch.withUnsafeMutableBufferPointer { s in
                try valid.withUnsafeMutableBufferPointer { v in
                    try dataset.read(window, bands: bands, into: s, validity: v)
                }
            }
            for r in 0..<window.height {
                for i in 0..<window.width where valid[r * window.width + i] == 0 {
                    labels[r * band.width + x0 + i] = 255
                    confidence[r * band.width + x0 + i] = 0
                }
            }
        }
    }

    /// A stable key for the work folder: everything that can change the bytes of a row band, and
    /// nothing else (preview, vectors, class names and palette are applied at assembly). The input's
    /// pixels are known by its path and the stamps (size, modification time) of every file GDAL reads
    /// for it, a VRT's sources included; the weights by the checkpoint's SHA-256, not its path; then
    /// the model, its normalisation, tiling, blend, TTA, confidence type, bands, their scaling (the
    /// identity adds nothing), the backend and the thread count (oneDNN's results differ in the last
    /// bits between thread counts; README "How `run` works").
    private func resumeKey(input: String, dataset: Dataset, scaling: InputScaling) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // dictionary order is randomised per process
        let model: String
        do {
            model = String(decoding: try encoder.encode(options.pipeline.model), as: UTF8.self)
        } catch {
            throw PipelineError(path: options.pipeline.sourcePath ?? "pipeline",
                                reason: "the model cannot be keyed for resuming: \(error)", hint: "check the model's values")
        }
        let parts = [URL(fileURLWithPath: input).standardizedFileURL.path,
                     dataset.fileStamps.map(\.description).joined(separator: ","),
                     "\(dataset.width)x\(dataset.height)", model, loaded.checkpointSHA256 ?? "random",
                     "\(options.resolvedCrop)", "\(options.resolvedStride)", options.resolvedBlend.rawValue,
                     options.tta.rawValue, options.confidence.rawValue, "\(options.resolvedBands)", options.backend.rawValue,
                     "\(preprocessing.mean)\(preprocessing.std)\(preprocessing.scale)\(preprocessing.reverse)",
                     "threads \(options.backend == .onednn ? options.threads : 0)"]
            + (loaded.model.precision == .f32 ? [] : ["precision \(loaded.model.precision.rawValue)"])
            + (scaling.isIdentity ? [] : ["\(scaling)"])
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in parts.joined(separator: "\u{1F}").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return "\(RunOutputNames(input: input).stem)-\(String(hash, radix: 16))"
    }
}

/// The confidence of a piece in the output's type: max softmax probability as float32, or scaled
/// to 0–255 and rounded (a byte per pixel).
enum BandConfidence {
    case float32([Float])
    case uint8([UInt8])

    init(_ values: [Float], as kind: ConfidenceFormat) {
        self = kind == .float32 ? .float32(values) : .uint8(values.map(Self.byte))
    }

    /// p ∈ [0, 1] → round(p · 255), as the confidence COG always stored it.
    @inline(__always)
    static func byte(_ p: Float) -> UInt8 { UInt8((p * 255).rounded()) }

    /// `values` (rows × `width`) into columns `offset...` of rows `width` wide.
    mutating func store(_ values: [Float], rows: Int, width chunk: Int, at offset: Int, in width: Int) {
        switch self {
        case .float32(var out):
            guard !out.isEmpty else { return }
            self = .uint8([])  // drop the reference so `out` is not copied on write
            for k in 0..<rows { for i in 0..<chunk { out[k * width + offset + i] = values[k * chunk + i] } }
            self = .float32(out)
        case .uint8(var out):
            guard !out.isEmpty else { return }
            self = .uint8([])
            for k in 0..<rows { for i in 0..<chunk { out[k * width + offset + i] = Self.byte(values[k * chunk + i]) } }
            self = .uint8(out)
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
