/// Blends window logits into results row band by row band, holding only the rows that can still
/// receive windows (about width × (crop + stride) × classes floats), whatever the image's height.
///
/// A stitcher covers the whole image or one `Block` (then only the block's columns are held, and
/// windows are clipped to it: memory is bounded by the block's width, not the image's).
/// Add every window of grid row r (`add`), then call `finishGridRow(r)`: the image rows no later
/// window touches are divided by their accumulated weight, returned, and freed.
/// Rows no window covered (all windows skipped, e.g. nodata) come out with weight 0.
public final class StreamingStitcher {
    public let grid: WindowGrid
    public let classes: Int
    public let blend: Blend
    /// Image columns and rows this stitcher blends (the whole image, or a block).
    public let columns: Range<Int>
    public let rows: Range<Int>
    /// Accumulated weight × logits for image rows `firstRow...`, each (classes, columns.count) row-major.
    private var sums: [[Float]] = []
    /// Accumulated weights for the same rows, each (columns.count).
    private var weights: [[Float]] = []
    /// Per row (columns.count): 1 where the input pixel is valid (from `add`'s validity), else 0.
    private var validity: [[UInt8]] = []
    private var firstRow = 0
    private var finishedGridRows = 0
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
        finishedGridRows = startGridRow
        let top = startGridRow == 0 ? 0 : grid.rowOrigins[min(startGridRow, grid.rowOrigins.count - 1)]
        firstRow = max(rows.lowerBound, top)
    }

    /// Rows currently held (for memory accounting).
    public var heldRows: Int { sums.count }

    /// Adds one window's logits, (classes, tile.height, tile.width) row-major, and optionally the
    /// validity of its input pixels, (tile.height, tile.width), 0 = nodata; without it the window's
    /// pixels count as valid. Invalid pixels come out of `mergeViews` as the invalid label.
    public func add(_ tile: Tile, logits: UnsafeBufferPointer<Float>, validity valid: UnsafeBufferPointer<UInt8>? = nil) {
        precondition(logits.count >= classes * tile.width * tile.height, "logits too small for \(tile)")
        precondition(valid == nil || valid!.count >= tile.width * tile.height, "validity too small for \(tile)")
        precondition(tile.gridRow == finishedGridRows, "windows must arrive grid row by grid row")
        // The part of the window inside this stitcher's columns and rows, in window coordinates.
        let left = max(tile.x, columns.lowerBound) - tile.x
        let right = min(tile.x + tile.width, columns.upperBound) - tile.x
        let top = max(tile.y, rows.lowerBound) - tile.y
        let bottom = min(tile.y + tile.height, rows.upperBound) - tile.y
        guard left < right, top < bottom else { return }
        precondition(tile.y + top >= firstRow, "\(tile) reaches rows already finished")
        let width = columns.count
        while firstRow + sums.count < tile.y + bottom { appendRow() }
        let plane = tile.width * tile.height
        let offset = tile.x - columns.lowerBound  // column of the window's left edge in a held row
        blendWeights(tile).withUnsafeBufferPointer { w in
            for r in top..<bottom {
                let row = tile.y + r - firstRow
                let wr = w.baseAddress! + r * tile.width
                sums[row].withUnsafeMutableBufferPointer { sum in
                    for c in 0..<classes {
                        let src = logits.baseAddress! + c * plane + r * tile.width
                        let dst = sum.baseAddress! + c * width + offset
                        for i in left..<right { dst[i] += wr[i] * src[i] }
                    }
                }
                weights[row].withUnsafeMutableBufferPointer { acc in
                    let dst = acc.baseAddress! + offset
                    for i in left..<right { dst[i] += wr[i] }
                }
                validity[row].withUnsafeMutableBufferPointer { v in
                    let dst = v.baseAddress! + offset
                    if let valid {
                        let src = valid.baseAddress! + r * tile.width
                        for i in left..<right { dst[i] = src[i] != 0 ? 1 : 0 }
                    } else {
                        for i in left..<right { dst[i] = 1 }
                    }
                }
            }
        }
    }

    private func appendRow() {
        sums.append([Float](repeating: 0, count: classes * columns.count))
        weights.append([Float](repeating: 0, count: columns.count))
        validity.append([UInt8](repeating: 0, count: columns.count))
    }

    /// Completes grid row `row` (rows must be finished in order) and returns the image rows that are final.
    public func finishGridRow(_ row: Int) -> StitchedBand {
        precondition(row == finishedGridRows, "grid rows must be finished in order")
        finishedGridRows += 1
        let all = grid.finishedRows(afterGridRow: row)
        let start = max(all.lowerBound, firstRow), end = min(all.upperBound, rows.upperBound)
        let range = start..<max(start, end)
        let width = columns.count
        while firstRow + sums.count < range.upperBound { appendRow() }  // rows no window reached
        // The finished rows move into the band as they are (no copy); division happens on access.
        let drop = range.upperBound - firstRow
        let skip = range.lowerBound - firstRow
        let band = StitchedBand(rows: range, width: width, classes: classes,
                                sums: Array(sums[skip..<drop]), weights: Array(weights[skip..<drop]),
                                validity: Array(validity[skip..<drop]))
        sums.removeFirst(drop)
        weights.removeFirst(drop)
        validity.removeFirst(drop)
        firstRow = range.upperBound
        return band
    }
}

/// Final blended logits of some image rows: accumulated weight × logits and weights, divided on access.
public struct StitchedBand: Sendable {
    /// Image rows covered.
    public let rows: Range<Int>
    public let width: Int
    public let classes: Int
    /// Per row: Σ weight × logits, (classes, width).
    let sums: [[Float]]
    /// Per row: Σ weight, (width); 0 where no window was run.
    let weights: [[Float]]
    /// Per row: 1 where the input pixel is valid; nil when every pixel counts as valid.
    let validity: [[UInt8]]?

    init(rows: Range<Int>, width: Int, classes: Int, sums: [[Float]], weights: [[Float]], validity: [[UInt8]]? = nil) {
        self.rows = rows
        self.width = width
        self.classes = classes
        self.sums = sums
        self.weights = weights
        self.validity = validity
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
