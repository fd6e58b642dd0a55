import CGDAL
import Foundation

extension RasterBand {
    /// Writes a copy of this band to a new GeoTIFF at `path` in which every connected region of fewer
    /// than `minimumPixels` pixels has been merged into its largest neighbouring region, so the
    /// coverage keeps no holes. Pixels invalid in the band's mask are neither merged nor merged into
    /// (a small region surrounded only by them stays). Streams lines; memory grows with the number of
    /// regions, not with the image. The copy keeps type, size, georeferencing and nodata, but not an
    /// alpha band or mask band: take validity from this band when reading the copy.
    /// The corresponding C function is `GDALSieveFilter`.
    public func sieve(to path: String, minimumPixels: Int, connectivity: Connectivity) throws {
        guard minimumPixels >= 1, minimumPixels <= Int(Int32.max) else {
            throw GeoIOError(.invalidArgument, path: dataset.path, message: "sieve threshold \(minimumPixels) pixels",
                             hint: "the minimum area must be between one pixel and 2³¹ pixels")
        }
        guard let driver = GDALGetDriverByName("GTiff") else {
            throw GeoIOError(.unsupportedFormat, path: path, message: "GDAL has no GTiff driver",
                             hint: "reinstall GDAL")
        }
        let options: [(String, String)] = [("COMPRESS", "DEFLATE"), ("BIGTIFF", "IF_SAFER")]
        let created: GDALDatasetH? = withCStringList(options) { list in
            withQuietGDAL {
                GDALCreate(driver, path, Int32(dataset.width), Int32(dataset.height), 1, dataType.gdal, list)
            }
        }
        guard let created else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot create the sieved copy",
                            hint: "check free space in the output folder")
        }
        var closed = false
        defer { if !closed { withQuietGDAL { GDALClose(created) } } }
        var gt = [Double](repeating: 0, count: 6)
        let out = GDALGetRasterBand(created, 1)
        let georeferenced = withQuietGDAL { () -> Bool in
            if GDALGetGeoTransform(dataset.handle, &gt) == CE_None, GDALSetGeoTransform(created, &gt) != CE_None {
                return false
            }
            CPLErrorReset()  // a source without a geotransform is not an error
            if let srs = GDALGetSpatialRef(dataset.handle), GDALSetSpatialRef(created, srs) != CE_None { return false }
            if let nd = noDataValue, GDALSetRasterNoDataValue(out, nd) != CE_None { return false }
            return true
        }
        guard georeferenced else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot copy the georeferencing and nodata",
                            hint: "check free space in the output folder")
        }
        let mask: GDALRasterBandH? = maskFlags.contains(.allValid) ? nil : GDALGetMaskBand(handle)
        let err = withQuietGDAL {
            GDALSieveFilter(handle, mask, out, Int32(minimumPixels), Int32(connectivity.rawValue), nil, nil, nil)
        }
        guard err == CE_None else {
            throw gdalError(.writeFailed, path: path, fallback: "sieving \(dataset.path) failed",
                            hint: "check free space and the label raster (`gdalinfo -checksum`)")
        }
        closed = true
        try closeWritten(created, path: path)
    }
}
