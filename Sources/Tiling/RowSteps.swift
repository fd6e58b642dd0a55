/// Steps: the grid rows a stitcher takes in together before the rows they finish are final.
///
/// mmseg shifts the last window row up to end at the image border, so the last two grid rows usually
/// overlap by more than crop − stride rows (768 of 896 rows for a 2048-row image at 896 / 512). Taken
/// one row after the other, those rows would be held across the whole width between the two rows.
/// Taken together as one step, column by column with the last row `columnOverlap` columns behind the
/// row above, only the columns between the two rows' current windows are held at that height. Every
/// pixel still receives all the windows of the upper row that cover it before any of the lower row,
/// each row's left to right: mmseg's order, so the sums are bit-identical either way.
extension WindowGrid {
    /// The most later window columns whose windows overlap one column's window (1 at 512 / 341 and
    /// 896 / 512; more where the crop spans several strides; 0 with one column).
    public var columnOverlap: Int {
        let w = windowWidth
        var most = 0
        for (c, x) in columnOrigins.enumerated() {
            var k = c + 1
            while k < columnOrigins.count, columnOrigins[k] < x + w { k += 1 }
            most = max(most, k - c - 1)
        }
        return most
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
    /// the lower row `columnOverlap` columns behind the upper one.
    public func tiles(inStep step: Range<Int>) -> [Tile] {
        precondition(step.count == 1 || step.count == 2, "a step is one grid row or two")
        guard step.count == 2 else { return tiles(inRow: step.lowerBound) }
        let (upper, lower) = (tiles(inRow: step.lowerBound), tiles(inRow: step.lowerBound + 1))
        let lag = columnOverlap
        var out: [Tile] = []
        out.reserveCapacity(upper.count + lower.count)
        for s in 0..<(upper.count + lag) {
            if s < upper.count { out.append(upper[s]) }
            if s >= lag { out.append(lower[s - lag]) }
        }
        return out
    }

    /// The first grid column of any window visited after `tile` in `tiles(inStep: step)` order.
    public func firstColumn(after tile: Tile, inStep step: Range<Int>) -> Int {
        guard step.count == 2, tile.gridRow == step.lowerBound else { return tile.gridColumn + 1 }
        return max(tile.gridColumn - columnOverlap, 0)  // the lower row's window that follows, or its first
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
