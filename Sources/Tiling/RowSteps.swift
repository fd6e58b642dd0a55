/// Steps: the grid rows a stitcher takes in together before the rows they finish are final.
///
/// mmseg shifts the last window row up to end at the image border, so the last two grid rows usually
/// overlap by more than crop − stride rows (768 of 896 rows for a 2048-row image at 896 / 512). Taken
/// one row after the other, those rows would be held across the whole width between the two rows.
/// Taken together as one step, column by column, each window of the lower row right after the last
/// window of the upper row that overlaps it, only the columns between the two rows' current windows
/// are held at that height. Every pixel still receives all the windows of the upper row that cover
/// it before any of the lower row, each row's left to right: mmseg's order, so the sums are
/// bit-identical either way.
extension WindowGrid {
    /// For each window column c, the last column whose window overlaps c's (c + 1 at 512 / 341 and
    /// 896 / 512, c + 2 before a shifted last column, c itself with one column). Never decreasing.
    static func lastOverlapping(_ origins: [Int], extent w: Int) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(origins.count)
        var k = 0
        for (c, x) in origins.enumerated() {
            k = max(k, c)
            while k + 1 < origins.count, origins[k + 1] < x + w { k += 1 }
            out.append(k)
        }
        return out
    }

    /// The most image columns held at a step's height while a two-row step passes (from a lower
    /// window's origin to the end of the last upper window overlapping it), and at least a window
    /// and a stride.
    public var stepSpan: Int {
        let last = lastOverlappingColumns
        let span = columnOrigins.indices.map { columnOrigins[last[$0]] + windowWidth - columnOrigins[$0] }.max() ?? 0
        return max(span, windowWidth + stride)
    }

    /// Whether the last two grid rows overlap by more than the others (crop − stride): mmseg shifted
    /// the last row up.
    public var lastRowsOverlapMore: Bool {
        let n = rowOrigins.count
        return n >= 2 && rowOrigins[n - 2] + windowHeight - rowOrigins[n - 1] > windowHeight - min(stride, windowHeight)
    }

    /// The steps covering `rows` (grid rows, default all): each row alone, except, with
    /// `interleavingLastRows` and where the last rows overlap more, the last two rows together.
    public func rowSteps(interleavingLastRows: Bool, within rows: Range<Int>? = nil) -> [Range<Int>] {
        let rows = rows ?? rowOrigins.indices
        let n = rowOrigins.count
        let pair = interleavingLastRows && lastRowsOverlapMore ? (n - 2)..<n : nil
        var steps: [Range<Int>] = []
        var row = rows.lowerBound
        while row < rows.upperBound {
            if let pair, pair.lowerBound == row, rows.upperBound >= pair.upperBound {
                steps.append(pair)
                row = pair.upperBound
            } else {
                steps.append(row..<(row + 1))
                row += 1
            }
        }
        return steps
    }

    /// The windows of `step` in visiting order: one row left to right; two rows column by column,
    /// each lower window right after the last upper window overlapping it (`lastOverlappingColumns`).
    public func tiles(inStep step: Range<Int>) -> [Tile] {
        precondition(step.count == 1 || step.count == 2, "a step is one grid row or two")
        guard step.count == 2 else { return tiles(inRow: step.lowerBound) }
        let (upper, lower) = (tiles(inRow: step.lowerBound), tiles(inRow: step.lowerBound + 1))
        let last = lastOverlappingColumns
        var out: [Tile] = []
        out.reserveCapacity(upper.count + lower.count)
        var next = 0  // first lower window not yet visited
        for s in upper.indices {
            out.append(upper[s])
            while next < lower.count, last[next] == s {
                out.append(lower[next])
                next += 1
            }
        }
        return out
    }

    /// The first grid column of any window visited after `tile` in `tiles(inStep: step)` order.
    public func firstColumn(after tile: Tile, inStep step: Range<Int>) -> Int {
        guard step.count == 2, tile.gridRow == step.lowerBound else { return tile.gridColumn + 1 }
        // The first lower window not visited yet: the first whose last overlapping upper window is
        // this one or a later one.
        return lastOverlappingColumns.firstIndex { $0 >= tile.gridColumn } ?? columnOrigins.count
    }

    /// Image rows that are final once the steps up to `step` have been added.
    public func finishedRows(afterStep step: Range<Int>) -> Range<Int> {
        let first = finishedRows(afterGridRow: step.lowerBound), last = finishedRows(afterGridRow: step.upperBound - 1)
        return first.lowerBound..<max(first.lowerBound, last.upperBound)
    }

    /// The most image rows that receive windows of two consecutive steps (0 with one step):
    /// crop − stride, or more between the last two rows when they are separate steps.
    public func carriedRows(interleavingLastRows: Bool) -> Int {
        let steps = rowSteps(interleavingLastRows: interleavingLastRows)
        return zip(steps, steps.dropFirst()).map { a, b in
            rowOrigins[a.upperBound - 1] + windowHeight - rowOrigins[b.lowerBound]
        }.max().map { max($0, 0) } ?? 0
    }

    /// The most image rows one step's windows span: the crop, or the two last rows together.
    public func stepHeight(interleavingLastRows: Bool) -> Int {
        rowSteps(interleavingLastRows: interleavingLastRows).map { s in
            rowOrigins[s.upperBound - 1] + windowHeight - rowOrigins[s.lowerBound]
        }.max() ?? windowHeight
    }
}
