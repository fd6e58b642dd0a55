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

    /// Validates the block size (at least 1 × 1 pixel; clipped to the image).
    public init(windows: WindowGrid, blockWidth: Int, blockHeight: Int) throws {
        guard blockWidth > 0, blockHeight > 0 else {
            throw TilingError(message: "block size \(blockWidth)×\(blockHeight) is not positive",
                              hint: "give a width and height in pixels, e.g. --block-size 4096x16384")
        }
        self.windows = windows
        self.blockWidth = min(blockWidth, windows.imageWidth)
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
        try self.init(windows: windows, blockWidth: lo * step, blockHeight: 4 * lo * step)
    }

    /// Block width, in strides, beyond which the automatic size does not go (3.1 % recompute across).
    public static let efficientStrides = 32

    /// Peak bytes of the stitchers of a block `width` pixels wide and of its piece being filled, per
    /// pixel Σ weight × logits (classes floats), Σ weight (a float) and validity (a byte), per view:
    /// - one view: the rows that continue from one grid row into the next, across the width
    ///   (`carriedRows`: crop − stride, more where mmseg shifted the last window row up), and the
    ///   chunks under the current window (crop + stride columns of crop rows), since finished
    ///   column chunks are handed over as they become final (`StreamingStitcher.finishColumns`);
    /// - several views: crop rows of the whole width, merged only when the grid row ends;
    /// plus the piece's labels and float confidence (stride rows × width × 5 bytes).
    public static func stitcherBytes(width: Int, windows: WindowGrid, classes: Int, views: Int) -> Int {
        let crop = windows.windowHeight, stride = min(windows.stride, crop)
        let perPixel = MemoryBudget.sum(MemoryBudget.product(classes + 1, MemoryLayout<Float>.size), 1)
        let pixels = views == 1
            ? MemoryBudget.sum(MemoryBudget.product(windows.carriedRows, width),
                               MemoryBudget.product(min(width, windows.windowWidth + windows.stride), crop))
            : MemoryBudget.product(crop, width, views)
        return MemoryBudget.sum(MemoryBudget.product(pixels, perPixel), MemoryBudget.product(stride, width, 5))
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

    /// Image rows of `block` that are final once grid rows up to `row` have been added (may be empty).
    public func finishedRows(of block: Block, afterGridRow row: Int) -> Range<Int> {
        let all = windows.finishedRows(afterGridRow: row)
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
    /// The most image rows that receive windows of two consecutive grid rows (0 with one row):
    /// crop − stride, or more between the last two rows when the last was shifted up to the border.
    public var carriedRows: Int {
        zip(rowOrigins, rowOrigins.dropFirst()).map { $0 + windowHeight - $1 }.max().map { max($0, 0) } ?? 0
    }

    /// Width and height of every window (the crop, or the image side when the image is smaller).
    public var windowWidth: Int { min(crop, imageWidth) }
    public var windowHeight: Int { min(crop, imageHeight) }
}
