import GeoIO
import Foundation

/// Reads rasters and reports what GeoIO sees (`aerialseg info`).
public enum RasterInspection {

    /// Opens `path` and summarises it; throws `GeoIOError` with a clear message for bad input,
    /// including a raster whose pixels cannot be read (a VRT with a missing source).
    public static func info(path: String) throws -> RasterInfo {
        let dataset = try Dataset(path: path)
        try dataset.checkReadable()
        return dataset.info
    }
}

extension RasterInspection {
    /// A human-readable table of `info`.
    public static func describe(_ info: RasterInfo) -> String {
        var lines = [info.path]
        func row(_ key: String, _ value: String) {
            lines.append("  " + key.padding(toLength: 12, withPad: " ", startingAt: 0) + value)
        }
        row("driver", info.driver)
        row("size", "\(info.width) × \(info.height) px, \(info.bandCount) band\(info.bandCount == 1 ? "" : "s")")
        if let crs = info.crs {
            row("crs", (crs.epsg.map { "EPSG:\($0) " } ?? "") + crs.name)
        } else {
            row("crs", "none (no georeferencing)")
        }
        if let gt = info.geoTransform, let px = info.pixelSize {
            row("origin", "\(gt[0]), \(gt[3])")
            row("pixel size", "\(px[0]) × \(px[1])" + (gt[2] != 0 || gt[4] != 0 ? " (rotated)" : ""))
        } else {
            row("transform", "none")
        }
        let mask = info.hasAlphaBand ? "alpha band" : info.hasDatasetMask ? "per-dataset mask"
            : info.bands.contains { $0.noDataValue != nil } ? "nodata" : "none (all pixels valid)"
        row("validity", mask)
        for band in info.bands {
            var parts = [band.dataType, "block \(band.blockSize[0])×\(band.blockSize[1])", band.colorInterpretation]
            if let nd = band.noDataValue { parts.append("nodata \(nd)") }
            if band.overviews > 0 { parts.append("\(band.overviews) overviews") }
            if let d = band.description { parts.append("\"\(d)\"") }
            row("band \(band.band)", parts.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
