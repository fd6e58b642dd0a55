import CGDAL

/// Pixel connectivity for polygonizing: 4 (edges) or 8 (edges and corners).
public enum Connectivity: Int, Sendable, Codable {
    case four = 4, eight = 8
}

extension VectorLayer {
    /// Polygonizes a label band into this layer: one polygon per connected region of equal value,
    /// the value stored in integer field `field` (which must be one of the layer's fields).
    /// Pixels invalid in the band's mask (nodata, alpha) never become polygons when `useMask` is true.
    /// The corresponding C function is `GDALPolygonize`.
    public func polygonize(_ band: RasterBand, field: String, connectivity: Connectivity = .four,
                           useMask: Bool = true) throws {
        let index = fieldIndex(field)
        guard index >= 0 else {
            throw GeoIOError(.invalidArgument, path: writer.path, message: "layer has no field \(field)", hint: "")
        }
        let mask: GDALRasterBandH? = useMask && !band.maskFlags.contains(.allValid) ? GDALGetMaskBand(band.handle) : nil
        let options: [(String, String)] = connectivity == .eight ? [("8CONNECTED", "8")] : []
        let err = withCStringList(options) { list in
            withQuietGDAL { GDALPolygonize(band.handle, mask, handle, index, list, nil, nil) }
        }
        guard err == CE_None else {
            throw gdalError(.writeFailed, path: writer.path, fallback: "polygonizing \(band.dataset.path) failed",
                            hint: "check the label raster with `gdalinfo -checksum`")
        }
    }
}
