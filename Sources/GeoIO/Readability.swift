import CGDAL

extension Dataset {
    /// Throws `.unsupportedGrid` naming the file unless its geotransform can be mosaicked into
    /// north-up outputs (see `GeoTransform.unsupportedReason`). A raster without a geotransform
    /// passes: whether that is allowed is the caller's rule.
    public func requireNorthUpGrid() throws {
        guard let transform = geoTransform, let reason = transform.unsupportedReason else { return }
        throw GeoIOError(.unsupportedGrid, path: path, message: reason,
                         hint: "warp it to a north-up grid first: gdalwarp \(path) north_up.tif")
    }

    /// Reads an 8 × 8 sample spread over the whole raster from every band (GDAL picks the blocks,
    /// or overviews, that hold the sample points), so a VRT with a missing, broken or
    /// self-referencing source, or a truncated file, fails here rather than after hours of work.
    /// The corresponding C function is `GDALDatasetRasterIOEx` (nearest neighbour).
    public func checkReadable() throws {
        let w = Int32(min(width, 8)), h = Int32(min(height, 8))
        var sample = [Float](repeating: 0, count: Int(w * h) * bandCount)
        var extra = GDALRasterIOExtraArg()
        extra.nVersion = 1
        extra.eResampleAlg = GRIORA_NearestNeighbour
        let err = sample.withUnsafeMutableBytes { buf in
            withQuietGDAL {
                GDALDatasetRasterIOEx(handle, GF_Read, 0, 0, Int32(width), Int32(height), buf.baseAddress, w, h,
                                      GDT_Float32, Int32(bandCount), nil, 0, 0, 0, &extra)
            }
        }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "cannot read its pixels",
                            hint: "is a source of the mosaic missing, truncated or the file itself? "
                                + "`gdalinfo -checksum` shows it")
        }
    }
}
