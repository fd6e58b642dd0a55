import Limits

/// A rectangle of output pixels computed on its own: columns `x..<x+width`, rows `y..<y+height`, with
/// the window grid rows and columns whose windows touch it. The unit of memory, resume and
/// distribution of a job.
public struct Block: Hashable, Sendable, CustomStringConvertible {
    /// Row-major number of this block in its `BlockGrid`.
    public let index: Int
    public let row: Int
    public let column: Int
    public let x: Int
    public let y: Int
    public let width: Int
    public let height: Int
    /// Grid rows (`WindowGrid.rowOrigins` indices) and columns of the windows that touch this block.
    public let gridRows: Range<Int>
    public let gridColumns: Range<Int>

    public var columns: Range<Int> { x..<(x + width) }
    public var rows: Range<Int> { y..<(y + height) }
    /// Windows computed for this block, per view.
    public var windowCount: Int { gridRows.count * gridColumns.count }

    /// Whether `tile` covers any pixel of this block.
    public func touches(_ tile: Tile) -> Bool {
        tile.x < x + width && tile.x + tile.width > x && tile.y < y + height && tile.y + tile.height > y
    }

    public var description: String { "block \(index) (\(row),\(column) at x \(x), y \(y), \(width)×\(height))" }
}

/// An image cut into blocks of output pixels, each computed from exactly the windows that touch it,
/// in mmseg's window order (grid row, then column). Every pixel therefore receives the same windows
/// in the same order as a whole-image run: the blended logits are bit-identical whatever the block
/// size. A window on a block border is run once for each block it touches; with block edges on
/// window origins (sizes that are multiples of the stride) that is one extra window column per
/// vertical block edge and one extra window row per horizontal one (`recomputeOverhead`).
public struct BlockGrid: Sendable, Equatable {
    public let windows: WindowGrid
    /// Nominal block size; the last block of a row or column is cut at the image border.
    public let blockWidth: Int
    public let blockHeight: Int
    public let rows: Int
    public let columns: Int
    /// Whether each block takes in the last two grid rows as one step (`WindowGrid.rowSteps`): with
    /// one view (whose column chunks are handed over as the windows pass), where that holds fewer
    /// pixels at the block width (`interleavingHoldsLess`). The same bits either way.
    public let interleavesLastRows: Bool

    /// Validates the block size (at least 1 × 1 pixel; clipped to the image), for `views` views per
    /// window.
    public init(windows: WindowGrid, blockWidth: Int, blockHeight: Int, views: Int = 1) throws {
        guard blockWidth > 0, blockHeight > 0 else {
            throw TilingError(message: "block size \(blockWidth)×\(blockHeight) is not positive",
                              hint: "give a width and height in pixels, e.g. --block-size 4096x16384")
        }
        self.windows = windows
        self.blockWidth = min(blockWidth, windows.imageWidth)
        interleavesLastRows = views == 1 && Self.interleavingHoldsLess(width: self.blockWidth, windows: windows)
        self.blockHeight = min(blockHeight, windows.imageHeight)
        columns = (windows.imageWidth + self.blockWidth - 1) / self.blockWidth
        rows = (windows.imageHeight + self.blockHeight - 1) / self.blockHeight
    }

    /// Blocks whose stitcher fits in `stitcherBytes`: the widest multiple of the stride (at least one
    /// stride, at most the image, at most `maxStrides` strides) whose stitchers fit
    /// (`stitcherBytes(width:...)`), and four times as tall (memory does not depend on the height;
    /// tall blocks recompute fewer border windows). `maxStrides` (default `efficientStrides`) stops
    /// the blocks where wider ones would buy little: 32 strides recompute 3.1 % across and 0.8 %
    /// down, so memory stays flat beyond that width instead of filling the budget.
    public init(windows: WindowGrid, classes: Int, views: Int, stitcherBytes budget: Int,
                maxStrides: Int = BlockGrid.efficientStrides) throws {
        let step = windows.stride
        var (lo, hi) = (1, max(1, min(maxStrides, (windows.imageWidth + step - 1) / step)))  // strides
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if Self.stitcherBytes(width: mid * step, windows: windows, classes: classes, views: views) <= budget {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        try self.init(windows: windows, blockWidth: lo * step, blockHeight: 4 * lo * step, views: views)
    }

    /// Block width, in strides, beyond which the automatic size does not go (3.1 % recompute across).
    public static let efficientStrides = 32

    /// Peak bytes of the stitchers of a block `width` pixels wide and of its piece being filled, per
    /// pixel Σ weight × logits (classes floats), Σ weight (a float) and validity (a byte), per view:
    /// - one view (`heldPixels`): the rows that continue from one step into the next, across the
    ///   width, and the chunks under the current windows, since finished column chunks are handed
    ///   over as they become final (`StreamingStitcher.finishColumns`);
    /// - several views: crop rows of the whole width, merged only when the grid row ends;
    /// plus the piece's labels and float confidence (the step's finished rows × width × 5 bytes).
    public static func stitcherBytes(width: Int, windows: WindowGrid, classes: Int, views: Int) -> Int {
        let crop = windows.windowHeight
        let perPixel = MemoryBudget.sum(MemoryBudget.product(classes + 1, MemoryLayout<Float>.size), 1)
        let interleaved = views == 1 && interleavingHoldsLess(width: width, windows: windows)
        let pixels = views == 1 ? heldPixels(width: width, windows: windows, interleavingLastRows: interleaved)
            : MemoryBudget.product(crop, width, views)
        let pieceRows = windows.rowSteps(interleavingLastRows: interleaved).map { windows.finishedRows(afterStep: $0).count }
            .max() ?? 0
        let pieceBytes = MemoryBudget.product(pieceRows, width, 5)
        return MemoryBudget.sum(MemoryBudget.product(pixels, perPixel), pieceBytes)
    }

    /// The most pixels one view's stitcher holds for a block `width` pixels wide, handing column
    /// chunks over as they become final: the rows carried from one step into the next across the
    /// width (`carriedRows`: crop − stride; more between the last two rows unless they are one
    /// step), and the chunks under the current windows at the step's height (the crop, or both last
    /// rows), `stepSpan` wide (`StreamingStitcher.peakHeldPixels` stays within it).
    /// Whether taking the last two grid rows as one step holds fewer pixels at `width`: it saves
    /// their extra overlap across the width and costs the step's extra height under its windows.
    public static func interleavingHoldsLess(width: Int, windows: WindowGrid) -> Bool {
        windows.lastRowsOverlapMore
            && heldPixels(width: width, windows: windows, interleavingLastRows: true)
                < heldPixels(width: width, windows: windows, interleavingLastRows: false)
    }

    public static func heldPixels(width: Int, windows: WindowGrid, interleavingLastRows: Bool) -> Int {
        let across = windows.stepSpan
        return MemoryBudget.sum(MemoryBudget.product(windows.carriedRows(interleavingLastRows: interleavingLastRows), width),
                                MemoryBudget.product(min(width, across), windows.stepHeight(interleavingLastRows: interleavingLastRows)))
    }

    /// Number of blocks.
    public var count: Int { rows * columns }

    /// Block `index` (row-major).
    public func block(_ index: Int) -> Block {
        precondition(index >= 0 && index < count, "block \(index) of \(count)")
        let (row, column) = (index / columns, index % columns)
        let x = column * blockWidth, y = row * blockHeight
        let width = min(blockWidth, windows.imageWidth - x), height = min(blockHeight, windows.imageHeight - y)
        return Block(index: index, row: row, column: column, x: x, y: y, width: width, height: height,
                     gridRows: Self.touching(windows.rowOrigins, y..<(y + height), extent: windows.windowHeight),
                     gridColumns: Self.touching(windows.columnOrigins, x..<(x + width), extent: windows.windowWidth))
    }

    /// All blocks, row-major.
    public var blocks: [Block] { (0..<count).map(block) }

    /// Windows run over all blocks, per view (border windows counted once per block they touch).
    public var windowsInBlocks: Int { blocks.reduce(0) { $0 + $1.windowCount } }

    /// Extra windows run because of the blocks, as a fraction of the windows in the grid
    /// (0.05 = 5 % more inference than a whole-image run).
    public var recomputeOverhead: Double { Double(windowsInBlocks) / Double(windows.count) - 1 }

    /// The steps of `block` (`WindowGrid.rowSteps` over its grid rows), in order.
    public func steps(of block: Block) -> [Range<Int>] {
        windows.rowSteps(interleavingLastRows: interleavesLastRows, within: block.gridRows)
    }

    /// Image rows of `block` that are final once the steps up to `step` have been added (may be empty).
    public func finishedRows(of block: Block, afterStep step: Range<Int>) -> Range<Int> {
        let all = windows.finishedRows(afterStep: step)
        let start = max(all.lowerBound, block.y), end = min(all.upperBound, block.y + block.height)
        return start..<max(start, end)
    }

    /// Indices of the windows (origins along one axis, increasing) that cover part of `span`.
    static func touching(_ origins: [Int], _ span: Range<Int>, extent: Int) -> Range<Int> {
        let first = origins.firstIndex { $0 + extent > span.lowerBound } ?? origins.count
        let end = origins.firstIndex { $0 >= span.upperBound } ?? origins.count
        return first..<max(first, end)
    }
}

extension WindowGrid {
    /// Width and height of every window (the crop, or the image side when the image is smaller).
    public var windowWidth: Int { min(crop, imageWidth) }
    public var windowHeight: Int { min(crop, imageHeight) }
}
