/// A crop of the image: columns `x..<x+width`, rows `y..<y+height`. Plain pixel indices: Tiling
/// knows nothing of GDAL or models.
public struct Tile: Hashable, Sendable, CustomStringConvertible {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    /// Row and column of this tile in its grid.
    public var gridRow: Int
    public var gridColumn: Int

    public var description: String { "tile(\(gridRow),\(gridColumn) at x \(x), y \(y), \(width)×\(height))" }
}

/// Why tiling parameters were rejected (before any work starts, like MONAI's checks).
public struct TilingError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public let hint: String
    public var description: String { "\(message) (\(hint))" }
}

/// Sliding windows over an image with mmsegmentation's slide semantics exactly
/// (`EncoderDecoder.slide_inference`): `grids = max(H - crop + stride - 1, 0) // stride + 1` per axis,
/// the last window shifted inward to end at the border, never padded; an image smaller than the crop
/// gets one window of the image's size.
public struct WindowGrid: Sendable, Equatable {
    public let imageWidth: Int
    public let imageHeight: Int
    public let crop: Int
    public let stride: Int
    /// Window origins along each axis (rows: y, columns: x), in order.
    public let rowOrigins: [Int]
    public let columnOrigins: [Int]
    /// For each window column, the last column whose window overlaps it (`RowSteps.swift`).
    public let lastOverlappingColumns: [Int]

    /// Validates the parameters and lays out the windows.
    public init(imageWidth: Int, imageHeight: Int, crop: Int, stride: Int) throws {
        guard imageWidth > 0, imageHeight > 0 else {
            throw TilingError(message: "image of \(imageWidth)×\(imageHeight) pixels", hint: "the image is empty")
        }
        guard crop >= 32 else {
            throw TilingError(message: "crop \(crop) is smaller than 32 pixels", hint: "use 512 or 896, or at least 32")
        }
        guard stride > 0, stride <= crop else {
            throw TilingError(message: "stride \(stride) must be in 1...\(crop)",
                              hint: "a stride larger than the crop would leave gaps between windows")
        }
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        self.crop = crop
        self.stride = stride
        rowOrigins = Self.origins(length: imageHeight, crop: crop, stride: stride)
        columnOrigins = Self.origins(length: imageWidth, crop: crop, stride: stride)
        lastOverlappingColumns = Self.lastOverlapping(columnOrigins, extent: min(crop, imageWidth))
    }

    /// mmseg's per-axis window starts: `y1 = i·stride; y2 = min(y1 + crop, L); y1 = max(y2 - crop, 0)`.
    static func origins(length: Int, crop: Int, stride: Int) -> [Int] {
        let grids = max(length - crop + stride - 1, 0) / stride + 1
        return (0..<grids).map { i in max(min(i * stride + crop, length) - crop, 0) }
    }

    /// Window extent along an axis of `length` starting at `origin`.
    func extent(_ origin: Int, _ length: Int) -> Int { min(origin + crop, length) - origin }

    /// Number of windows.
    public var count: Int { rowOrigins.count * columnOrigins.count }

    /// The windows of grid row `row`, left to right.
    public func tiles(inRow row: Int) -> [Tile] {
        let y = rowOrigins[row]
        return columnOrigins.enumerated().map { column, x in
            Tile(x: x, y: y, width: extent(x, imageWidth), height: extent(y, imageHeight), gridRow: row,
                 gridColumn: column)
        }
    }

    /// All windows, row by row (mmseg's order).
    public var tiles: [Tile] { rowOrigins.indices.flatMap(tiles(inRow:)) }

    /// The first grid row whose windows reach image row `rowOrigins[row]`: to resume at grid row
    /// `row`, replay grid rows `replayStart(forResumingAt: row)..<row` (their finished rows are
    /// already written) so the stitcher holds what it held before the interruption.
    public func replayStart(forResumingAt row: Int) -> Int {
        guard row > 0, row < rowOrigins.count else { return row }
        let top = rowOrigins[row]
        return rowOrigins.firstIndex { $0 + min(crop, imageHeight) > top } ?? row
    }

    /// Image rows that are final once grid rows `0...row` have been added: no later window reaches
    /// above `rowOrigins[row + 1]`.
    public func finishedRows(afterGridRow row: Int) -> Range<Int> {
        let start = row == 0 ? 0 : rowOrigins[row]
        let end = row + 1 < rowOrigins.count ? rowOrigins[row + 1] : imageHeight
        return start..<max(start, end)
    }
}
