import CGDAL
import Foundation

extension Dataset {
    /// How this raster's pixel grid differs from `other`'s, in words, or nil when they match.
    ///
    /// Grids match when sizes are equal, geotransforms agree within `tolerance` pixels (origin and
    /// pixel size, measured in `other`'s pixels) and the CRSs are the same (`OSRIsSame`). What only one
    /// raster has is not compared: a raster without a geotransform or CRS (a PNG label map, say) is
    /// taken to be on the other's grid when the sizes match, as mmsegmentation's datasets assume.
    public func gridMismatch(with other: Dataset, tolerance: Double = 1e-3) -> String? {
        if width != other.width || height != other.height {
            return "size \(width)×\(height) px vs \(other.width)×\(other.height) px"
        }
        if let a = geoTransform, let b = other.geoTransform {
            // Where each transform puts the top-left and bottom-right corners, in `other`'s pixels.
            let pixelX = max(abs(b.pixelWidth), abs(b.coefficients[2]), 1e-12)
            let pixelY = max(abs(b.pixelHeight), abs(b.coefficients[4]), 1e-12)
            let farA = a.apply(column: Double(width), row: Double(height))
            let farB = b.apply(column: Double(width), row: Double(height))
            let origin = (abs(a.originX - b.originX) / pixelX, abs(a.originY - b.originY) / pixelY)
            let far = (abs(farA.x - farB.x) / pixelX, abs(farA.y - farB.y) / pixelY)
            if origin.0 > tolerance || origin.1 > tolerance {
                return String(format: "origin differs by (%.3f, %.3f) pixels: geotransform %@ vs %@",
                              origin.0, origin.1, "\(a)", "\(b)")
            }
            if far.0 > tolerance || far.1 > tolerance {
                return "pixel size or rotation differs: geotransform \(a) vs \(b)"
            }
        }
        if let a = spatialReference, let b = other.spatialReference, !a.isSame(as: b) {
            return "CRS \(a.epsg.map { "EPSG:\($0)" } ?? a.name) vs \(b.epsg.map { "EPSG:\($0)" } ?? b.name)"
        }
        return nil
    }

    /// This raster resampled onto `grid`'s pixel grid (size, geotransform, CRS) with nearest
    /// neighbour, lazily: a warped VRT that GDAL computes block by block as it is read, so a huge
    /// raster is never held in memory.
    ///
    /// The result has the source's bands plus an alpha band (`-dstalpha`), so pixels outside this
    /// raster's footprint, or nodata in it, read as invalid. Coordinates are transformed exactly for
    /// every pixel (`-et 0`): GDAL's default approximation (0.125 px) depends on how the output is cut
    /// into chunks, so a lazily read VRT and a `gdalwarp` GeoTIFF would differ in a few pixels; with it
    /// off, the result equals `gdalwarp -r near -et 0 -te … -ts … -t_srs …` pixel for pixel.
    /// Both rasters need a CRS and a geotransform, and `grid` must be north-up.
    /// The corresponding C function is `GDALWarp` (gdal_utils.h) with `-of VRT`.
    public func warped(onto grid: Dataset) throws -> Dataset {
        guard let gt = grid.geoTransform, gt.isNorthUp, gt.pixelWidth > 0, gt.pixelHeight < 0 else {
            throw GeoIOError(.noGeoreferencing, path: grid.path, message: "has no north-up geotransform",
                             hint: "warping onto a grid needs a georeferenced, north-up target raster")
        }
        guard let targetCRS = grid.spatialReference else {
            throw GeoIOError(.noGeoreferencing, path: grid.path, message: "has no coordinate reference system",
                             hint: "warping onto a grid needs the target's CRS")
        }
        guard geoTransform != nil, spatialReference != nil else {
            throw GeoIOError(.noGeoreferencing, path: path, message: "has no georeferencing (geotransform and CRS)",
                             hint: "a raster without georeferencing cannot be warped; it must already share the grid")
        }
        // The VRT names its source by path; an absolute one resolves from /vsimem as from anywhere.
        let sourcePath = path.hasPrefix("/") ? path : URL(fileURLWithPath: path).standardizedFileURL.path
        let xmax = gt.originX + Double(grid.width) * gt.pixelWidth
        let ymin = gt.originY + Double(grid.height) * gt.pixelHeight
        let arguments = [
            "-of", "VRT", "-r", "near", "-et", "0", "-dstalpha",
            "-t_srs", targetCRS.wkt,
            "-te", "\(gt.originX)", "\(ymin)", "\(xmax)", "\(gt.originY)",
            "-ts", "\(grid.width)", "\(grid.height)",
        ]
        let vrtPath = "/vsimem/aerialseg-warp/\(UUID().uuidString).vrt"
        try withQuietGDAL {
            guard let source = GDALOpenEx(sourcePath, UInt32(GDAL_OF_RASTER | GDAL_OF_READONLY), nil, nil, nil) else {
                throw gdalError(.notARaster, path: path, fallback: "cannot reopen for warping", hint: "check the file")
            }
            defer { GDALClose(source) }
            let options = withCStringArray(arguments) { GDALWarpAppOptionsNew($0, nil) }
            guard let options else {
                throw gdalError(.invalidArgument, path: path, fallback: "invalid warp options",
                                hint: "report this as a bug")
            }
            defer { GDALWarpAppOptionsFree(options) }
            var sources: [GDALDatasetH?] = [source]
            var usageError: Int32 = 0
            let warped = GDALWarp(vrtPath, nil, 1, &sources, options, &usageError)
            guard let warped else {
                throw gdalError(.readFailed, path: path, fallback: "cannot warp onto the grid of \(grid.path)",
                                hint: "are both rasters georeferenced in CRSs GDAL can transform between?")
            }
            try closeWritten(warped, path: vrtPath)
        }
        defer { VSIUnlink(vrtPath) }
        // Opening parses the VRT into memory; the /vsimem file is no longer needed afterwards.
        return try Dataset(path: vrtPath)
    }
}
