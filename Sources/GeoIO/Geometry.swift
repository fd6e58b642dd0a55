/// A rectangle of pixels: column `x`, row `y`, `width` × `height`. May extend past the raster.
public struct PixelWindow: Hashable, Sendable, CustomStringConvertible {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    public var pixelCount: Int { width * height }

    /// The part of this window inside a `width` × `height` raster, or nil if none.
    public func clipped(toWidth rasterWidth: Int, height rasterHeight: Int) -> PixelWindow? {
        let x0 = max(x, 0), y0 = max(y, 0)
        let x1 = min(x + width, rasterWidth), y1 = min(y + height, rasterHeight)
        guard x1 > x0, y1 > y0 else { return nil }
        return PixelWindow(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
    }

    public var description: String { "window(x: \(x), y: \(y), \(width)×\(height))" }
}

/// GDAL's affine geotransform: `X = c0 + col·c1 + row·c2`, `Y = c3 + col·c4 + row·c5`
/// (pixel corners; (0, 0) is the top-left corner of the top-left pixel).
public struct GeoTransform: Hashable, Sendable, CustomStringConvertible {
    public var coefficients: [Double]

    public init(_ coefficients: [Double]) {
        precondition(coefficients.count == 6, "a geotransform has 6 coefficients")
        self.coefficients = coefficients
    }

    /// The identity transform GDAL reports for rasters without georeferencing.
    public static let identity = GeoTransform([0, 1, 0, 0, 0, 1])

    public var originX: Double { coefficients[0] }
    public var originY: Double { coefficients[3] }
    /// Pixel width and height in map units (height is usually negative: north up).
    public var pixelWidth: Double { coefficients[1] }
    public var pixelHeight: Double { coefficients[5] }
    public var isNorthUp: Bool { coefficients[2] == 0 && coefficients[4] == 0 }

    /// Why pixels on this grid cannot be mosaicked into north-up outputs, or nil when they can:
    /// non-finite terms, a zero pixel size, rotation or shear, rows running south to north, or
    /// columns running east to west. (rasterio refuses rotated transforms for windows too.)
    public var unsupportedReason: String? {
        let c = coefficients
        if !c.allSatisfy(\.isFinite) { return "its geotransform \(self) has non-finite terms" }
        if c[1] == 0 || c[5] == 0 { return "its geotransform \(self) has a zero pixel size" }
        if !isNorthUp { return "its geotransform \(self) is rotated or sheared (terms 2 and 4 are not 0)" }
        if c[5] > 0 { return "its geotransform \(self) is south-up (pixel height \(c[5]) > 0)" }
        if c[1] < 0 { return "its geotransform \(self) runs east to west (pixel width \(c[1]) < 0)" }
        return nil
    }

    /// Map coordinates of a pixel-space point (column, row).
    public func apply(column: Double, row: Double) -> (x: Double, y: Double) {
        (coefficients[0] + column * coefficients[1] + row * coefficients[2],
         coefficients[3] + column * coefficients[4] + row * coefficients[5])
    }

    /// The geotransform of a window, so each crop knows where it is on Earth
    /// (rasterio's `window_transform`).
    public func window(_ window: PixelWindow) -> GeoTransform {
        let (x, y) = apply(column: Double(window.x), row: Double(window.y))
        var c = coefficients
        c[0] = x
        c[3] = y
        return GeoTransform(c)
    }

    public var description: String { "(" + coefficients.map { "\($0)" }.joined(separator: ", ") + ")" }
}
