/// Blends window logits into results row band by row band, holding only what can still receive
/// windows, whatever the image's height.
///
/// A stitcher covers the whole image or one `Block` (then only the block's columns are held, and
/// windows are clipped to it: memory is bounded by the block's width, not the image's).
/// Add every window of grid row r (`add`), then call `finishGridRow(r)`: the image rows no later
/// window touches are returned (Σ weight × logits and Σ weight; division on access) and freed.
///
/// Held rows are cut into **column chunks** at the windows' column origins. Calling
/// `finishColumns(afterTile:inStep:)` after each window of a row (in `tiles(inRow:)` order) hands over the
/// chunks of the finishing rows that no later window reaches, as they become final, so a stitcher
/// holds only the rows that continue into the next grid row ((crop − stride) × width) plus the few
/// chunks under the current window: about half of what whole rows would take at 896 / 512. Each
/// pixel still sums the same windows in the same order, so the results are bit-identical either way.
/// The last two grid rows can also be taken in as one step (`WindowGrid.rowSteps`, windows in
/// `tiles(inStep:)` order, then `finishColumns` and `finishStepInChunks`), so
/// that the rows they share are not held across the width in between; again the same bits.
/// Rows no window covered (all windows skipped, e.g. nodata) come out with weight 0.
public final class StreamingStitcher {
    public let grid: WindowGrid
    public let classes: Int
    public let blend: Blend
    /// Image columns and rows this stitcher blends (the whole image, or a block).
    public let columns: Range<Int>
    public let rows: Range<Int>
    /// Column chunk k is `chunkBounds[k]..<chunkBounds[k + 1]`: `columns` cut at the window column origins.
    public let chunkBounds: [Int]

    /// Σ weight × logits (classes, width) row-major, Σ weight (width) and validity (width: 1 where the
    /// input pixel is valid, from `add`'s validity) of one row's chunk.
    private final class Cell {
        var sums: [Float]
        var weights: [Float]
        var validity: [UInt8]
        init(classes: Int, width: Int) {
            sums = [Float](repeating: 0, count: classes * width)
            weights = [Float](repeating: 0, count: width)
            validity = [UInt8](repeating: 0, count: width)
        }
    }
    /// Held image rows `firstRow...`, each its chunks (nil: not reached yet, or handed over).
    private var held: [[Cell?]] = []
    private var firstRow = 0
    /// Grid rows before this one are finished; windows of this row and later ones may arrive.
    private var finishedGridRows = 0
    /// Chunks of the finishing rows of the current step already handed over (from the left), and
    /// that step.
    private var releasedChunks = 0
    private var releasingStep = 0..<1
    /// Pixels (rows × columns) of the cells held now, and the most ever held.
    public private(set) var heldPixels = 0
    public private(set) var peakHeldPixels = 0
    /// Blend weights depend only on a tile's size and which image borders it touches.
    private struct WeightKey: Hashable { let width, height: Int, left, right, top, bottom: Bool }
    private var weightCache: [WeightKey: [Float]] = [:]

    private func blendWeights(_ tile: Tile) -> [Float] {
        let key = WeightKey(width: tile.width, height: tile.height, left: tile.x == 0,
                            right: tile.x + tile.width == grid.imageWidth, top: tile.y == 0,
                            bottom: tile.y + tile.height == grid.imageHeight)
        if let cached = weightCache[key] { return cached }
        let w = blend.weights(for: tile, imageWidth: grid.imageWidth, imageHeight: grid.imageHeight)
        weightCache[key] = w
        return w
    }

    /// A whole-image stitcher whose grid rows before `startGridRow` are already done (resuming a
    /// job): it accepts windows from `startGridRow` on, and the image rows above
    /// `grid.rowOrigins[startGridRow]` are considered final. To rebuild the rows still open at the
    /// restart point, start from `grid.replayStart(forResumingAt:)` and discard the bands finished
    /// before the resume row.
    public convenience init(grid: WindowGrid, classes: Int, blend: Blend, startGridRow: Int = 0) {
        self.init(grid: grid, classes: classes, blend: blend, columns: 0..<grid.imageWidth,
                  rows: 0..<grid.imageHeight, startGridRow: startGridRow)
    }

    /// A stitcher of `block` only, accepting windows from grid row `startGridRow` on (default: the
    /// block's first; a later one resumes like the whole-image stitcher, from `replayStart`).
    public convenience init(grid: WindowGrid, classes: Int, blend: Blend, block: Block, startGridRow: Int? = nil) {
        self.init(grid: grid, classes: classes, blend: blend, columns: block.columns, rows: block.rows,
                  startGridRow: startGridRow ?? block.gridRows.lowerBound)
    }

    private init(grid: WindowGrid, classes: Int, blend: Blend, columns: Range<Int>, rows: Range<Int>,
                 startGridRow: Int) {
        precondition(classes > 0)
        precondition(startGridRow >= 0 && startGridRow <= grid.rowOrigins.count)
        precondition(columns.lowerBound >= 0 && columns.upperBound <= grid.imageWidth && !columns.isEmpty)
        precondition(rows.lowerBound >= 0 && rows.upperBound <= grid.imageHeight && !rows.isEmpty)
        self.grid = grid
        self.classes = classes
        self.blend = blend
        self.columns = columns
        self.rows = rows
        chunkBounds = [columns.lowerBound] + grid.columnOrigins.filter { columns.contains($0) && $0 > columns.lowerBound }
            + [columns.upperBound]
        finishedGridRows = startGridRow
        let top = startGridRow == 0 ? 0 : grid.rowOrigins[min(startGridRow, grid.rowOrigins.count - 1)]
        firstRow = max(rows.lowerBound, top)
    }

    /// Rows currently held, in part or whole (for memory accounting).
    public var heldRows: Int { held.count }

    /// The chunk holding image column `x` (in `columns`).
    private func chunk(containing x: Int) -> Int {
        var (lo, hi) = (0, chunkBounds.count - 1)  // chunkBounds[lo] <= x < chunkBounds[hi]
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if chunkBounds[mid] <= x { lo = mid } else { hi = mid }
        }
        return lo
    }

    /// Adds one window's logits, (classes, tile.height, tile.width) row-major, and optionally the
    /// validity of its input pixels, (tile.height, tile.width), 0 = nodata; without it the window's
    /// pixels count as valid. Invalid pixels come out of `mergeViews` as the invalid label.
    public func add(_ tile: Tile, logits: UnsafeBufferPointer<Float>, validity valid: UnsafeBufferPointer<UInt8>? = nil) {
        precondition(logits.count >= classes * tile.width * tile.height, "logits too small for \(tile)")
        precondition(valid == nil || valid!.count >= tile.width * tile.height, "validity too small for \(tile)")
        precondition(tile.gridRow >= finishedGridRows, "\(tile) arrives after its grid row was finished")
        // The part of the window inside this stitcher's columns and rows, in window coordinates.
        let left = max(tile.x, columns.lowerBound) - tile.x
        let right = min(tile.x + tile.width, columns.upperBound) - tile.x
        let top = max(tile.y, rows.lowerBound) - tile.y
        let bottom = min(tile.y + tile.height, rows.upperBound) - tile.y
        guard left < right, top < bottom else { return }
        precondition(tile.y + top >= firstRow, "\(tile) reaches rows already finished")
        while firstRow + held.count < tile.y + bottom { held.append([Cell?](repeating: nil, count: chunkBounds.count - 1)) }
        let finishing = releasedChunks > 0 ? finishingRows(releasingStep) : 0..<0
        let plane = tile.width * tile.height
        let firstChunk = chunk(containing: tile.x + left)
        blendWeights(tile).withUnsafeBufferPointer { w in
            for r in top..<bottom {
                let row = tile.y + r - firstRow
                let wr = w.baseAddress! + r * tile.width
                var k = firstChunk
                while k < chunkBounds.count - 1, chunkBounds[k] < tile.x + right {
                    let lo = max(chunkBounds[k], tile.x + left) - tile.x   // window columns lo..<hi
                    let hi = min(chunkBounds[k + 1], tile.x + right) - tile.x
                    precondition(!(finishing.contains(tile.y + r) && k < releasedChunks),
                                 "\(tile) reaches columns already handed over")
                    let cellWidth = chunkBounds[k + 1] - chunkBounds[k]
                    let cell: Cell
                    if let existing = held[row][k] {
                        cell = existing
                    } else {
                        cell = Cell(classes: classes, width: cellWidth)
                        held[row][k] = cell
                        heldPixels += cellWidth
                        peakHeldPixels = max(peakHeldPixels, heldPixels)
                    }
                    let offset = tile.x - chunkBounds[k]  // cell column of the window's left edge
                    cell.sums.withUnsafeMutableBufferPointer { sum in
                        for c in 0..<classes {
                            let src = logits.baseAddress! + c * plane + r * tile.width
                            let dst = sum.baseAddress! + c * cellWidth + offset
                            for i in lo..<hi { dst[i] += wr[i] * src[i] }
                        }
                    }
                    cell.weights.withUnsafeMutableBufferPointer { acc in
                        let dst = acc.baseAddress! + offset
                        for i in lo..<hi { dst[i] += wr[i] }
                    }
                    cell.validity.withUnsafeMutableBufferPointer { v in
                        let dst = v.baseAddress! + offset
                        if let valid {
                            let src = valid.baseAddress! + r * tile.width
                            for i in lo..<hi { dst[i] = src[i] != 0 ? 1 : 0 }
                        } else {
                            for i in lo..<hi { dst[i] = 1 }
                        }
                    }
                    k += 1
                }
            }
        }
    }

    /// Image rows (of this stitcher) that become final with `step`.
    private func finishingRows(_ step: Range<Int>) -> Range<Int> {
        let all = grid.finishedRows(afterStep: step)
        let start = max(all.lowerBound, firstRow), end = min(all.upperBound, rows.upperBound)
        return start..<max(start, end)
    }

    /// After window `tile` of the current step (`WindowGrid.rowSteps`: one grid row, or the last
    /// two; added, or skipped), the windows coming in `tiles(inStep:)` order: the chunks of the rows
    /// the step finishes that no later window of the step reaches, one band per chunk, left to
    /// right; often none. `finishStepInChunks(step)` ends the step.
    public func finishColumns(afterTile tile: Tile, inStep step: Range<Int>) -> [StitchedBand] {
        precondition(step.lowerBound == finishedGridRows && step.contains(tile.gridRow),
                     "\(tile) is not in the current step \(step)")
        precondition(releasedChunks == 0 || releasingStep == step, "step \(step) while \(releasingStep) is open")
        releasingStep = step
        let column = grid.firstColumn(after: tile, inStep: step)
        let next = column < grid.columnOrigins.count ? grid.columnOrigins[column] : grid.imageWidth
        var bands: [StitchedBand] = []
        let range = finishingRows(step)
        while releasedChunks < chunkBounds.count - 1, chunkBounds[releasedChunks + 1] <= next {
            if !range.isEmpty { bands.append(release(chunk: releasedChunks, rows: range)) }
            releasedChunks += 1
        }
        return bands
    }

    /// Chunk `k` of image rows `range` as a band; its cells leave the stitcher.
    private func release(chunk k: Int, rows range: Range<Int>) -> StitchedBand {
        while firstRow + held.count < range.upperBound { held.append([Cell?](repeating: nil, count: chunkBounds.count - 1)) }
        let width = chunkBounds[k + 1] - chunkBounds[k]
        var sums: [[Float]] = [], weights: [[Float]] = [], validity: [[UInt8]] = []
        for y in range {
            let cell = held[y - firstRow][k] ?? Cell(classes: classes, width: width)  // no window reached it
            if held[y - firstRow][k] != nil { heldPixels -= width }
            held[y - firstRow][k] = nil
            sums.append(cell.sums)
            weights.append(cell.weights)
            validity.append(cell.validity)
        }
        return StitchedBand(rows: range, x: chunkBounds[k], width: width, classes: classes, sums: sums,
                            weights: weights, validity: validity)
    }

    /// Completes `step` (one grid row or several, `WindowGrid.rowSteps`; steps must be finished in
    /// order): the chunks of the rows that are now final not handed over by `finishColumns`, one
    /// band per chunk, left to right.
    public func finishStepInChunks(_ step: Range<Int>) -> [StitchedBand] {
        precondition(step.lowerBound == finishedGridRows && !step.isEmpty, "grid rows must be finished in order")
        precondition(releasedChunks == 0 || releasingStep == step, "step \(step) while \(releasingStep) is open")
        let range = finishingRows(step)
        var bands: [StitchedBand] = []
        if !range.isEmpty {
            for k in releasedChunks..<(chunkBounds.count - 1) { bands.append(release(chunk: k, rows: range)) }
        }
        let drop = min(held.count, range.upperBound - firstRow)
        if drop > 0 { held.removeFirst(drop) }
        firstRow = max(firstRow, range.upperBound)
        finishedGridRows = step.upperBound
        releasedChunks = 0
        return bands
    }

    /// Completes grid row `row` and returns the image rows that are final, across all of this
    /// stitcher's columns (for a stitcher whose columns were not handed over by `finishColumns`).
    public func finishGridRow(_ row: Int) -> StitchedBand {
        precondition(releasedChunks == 0, "finishGridRow after finishColumns: use finishStepInChunks")
        let chunks = finishStepInChunks(row..<(row + 1))
        if chunks.count == 1 { return chunks[0] }
        let range = finishingRows(row..<(row + 1))
        return StitchedBand(joining: chunks, rows: chunks.first?.rows ?? range, x: columns.lowerBound,
                            width: columns.count, classes: classes)
    }
}

/// Final blended logits of some image rows: accumulated weight × logits and weights, divided on access.
public struct StitchedBand: Sendable {
    /// Image rows covered.
    public let rows: Range<Int>
    /// First image column and number of columns covered.
    public let x: Int
    public let width: Int
    public let classes: Int
    /// Per row: Σ weight × logits, (classes, width).
    let sums: [[Float]]
    /// Per row: Σ weight, (width); 0 where no window was run.
    let weights: [[Float]]
    /// Per row: 1 where the input pixel is valid; nil when every pixel counts as valid.
    let validity: [[UInt8]]?

    init(rows: Range<Int>, x: Int = 0, width: Int, classes: Int, sums: [[Float]], weights: [[Float]],
         validity: [[UInt8]]? = nil) {
        self.rows = rows
        self.x = x
        self.width = width
        self.classes = classes
        self.sums = sums
        self.weights = weights
        self.validity = validity
    }

    /// Column chunks side by side (`StreamingStitcher.finishGridRow`): rows `rows`, columns `x..<x+width`.
    init(joining chunks: [StitchedBand], rows: Range<Int>, x: Int, width: Int, classes: Int) {
        var sums: [[Float]] = [], weights: [[Float]] = [], validity: [[UInt8]] = []
        for k in 0..<rows.count {
            var s = [Float](repeating: 0, count: classes * width), w = [Float](repeating: 0, count: width)
            var v = [UInt8](repeating: 0, count: width)
            for chunk in chunks {
                let offset = chunk.x - x
                for c in 0..<classes {
                    for i in 0..<chunk.width { s[c * width + offset + i] = chunk.sums[k][c * chunk.width + i] }
                }
                for i in 0..<chunk.width {
                    w[offset + i] = chunk.weights[k][i]
                    v[offset + i] = chunk.validity?[k][i] ?? 1
                }
            }
            sums.append(s)
            weights.append(w)
            validity.append(v)
        }
        self.init(rows: rows, x: x, width: width, classes: classes, sums: sums, weights: weights, validity: validity)
    }

    /// Whether the input pixel at band row `k`, column `x` was valid in the windows that covered it
    /// (true where no validity was given).
    @inline(__always)
    public func isValid(row k: Int, column x: Int) -> Bool { validity.map { $0[k][x] != 0 } ?? true }

    /// Calls `body` with row `k`'s Σ weight × logits, (classes, width), and Σ weight, (width).
    @inline(__always)
    func withRow<T>(_ k: Int, _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        try sums[k].withUnsafeBufferPointer { s in try weights[k].withUnsafeBufferPointer { w in try body(s, w) } }
    }

    /// A band from flat blended logits (classes, rows, width) and weights (rows, width).
    public init(rows: Range<Int>, width: Int, classes: Int, logits: [Float], weight: [Float]) {
        let n = rows.count * width
        precondition(logits.count == classes * n && weight.count == n)
        self.init(rows: rows, width: width, classes: classes,
                  sums: (0..<rows.count).map { k in
                      (0..<(classes * width)).map { j in
                          let (c, x) = (j / width, j % width)
                          return logits[c * n + k * width + x] * weight[k * width + x]
                      }
                  },
                  weights: (0..<rows.count).map { k in Array(weight[(k * width)..<((k + 1) * width)]) })
    }

    /// Blended logit of class `c` at band row `k`, column `x` (0 where no window was run).
    @inline(__always)
    public func logit(_ c: Int, row k: Int, column x: Int) -> Float {
        let w = weights[k][x]
        return w > 0 ? sums[k][c * width + x] / w : 0
    }

    /// Total blending weight at band row `k`, column `x`.
    @inline(__always)
    public func weight(row k: Int, column x: Int) -> Float { weights[k][x] }

    /// All blended logits, (classes, rows.count, width) row-major.
    public var logits: [Float] {
        var out = [Float](repeating: 0, count: classes * rows.count * width)
        for c in 0..<classes {
            for k in 0..<rows.count {
                for x in 0..<width { out[(c * rows.count + k) * width + x] = logit(c, row: k, column: x) }
            }
        }
        return out
    }

    /// Per pixel: argmax class (first index on ties) and its softmax probability; pixels with no
    /// window get `invalidLabel` and confidence 0.
    public func labelsAndConfidence(invalidLabel: UInt8 = 255) -> (labels: [UInt8], confidence: [Float]) {
        mergeViews([self], invalidLabel: invalidLabel)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
