/// A plain, Codable summary of what GeoIO reads from a raster (what `aerialseg info` prints).
public struct RasterInfo: Codable, Sendable, Equatable {
    public struct Band: Codable, Sendable, Equatable {
        public var band: Int
        public var dataType: String
        public var blockSize: [Int]
        public var colorInterpretation: String
        public var noDataValue: Double?
        /// "all-valid", "nodata", "alpha", "per-dataset" (GDAL mask flags, comma-separated).
        public var mask: String
        public var description: String?
        public var overviews: Int
    }

    public struct CRS: Codable, Sendable, Equatable {
        public var name: String
        public var epsg: Int?
        public var wkt: String
        public var isGeographic: Bool
    }

    public var path: String
    public var driver: String
    public var width: Int
    public var height: Int
    public var bandCount: Int
    public var bands: [Band]
    /// GDAL geotransform, or nil when the raster has none.
    public var geoTransform: [Double]?
    /// Pixel width and height in CRS units (height negative for north-up rasters).
    public var pixelSize: [Double]?
    public var crs: CRS?
    public var hasAlphaBand: Bool
    public var hasDatasetMask: Bool
}

extension Dataset {
    /// Everything `aerialseg info` reports (GDAL's own messages are silenced; errors come as
    /// `GeoIOError`s from `Dataset.init` and `checkReadable`).
    public var info: RasterInfo { withQuietGDAL { quietInfo } }

    private var quietInfo: RasterInfo {
        let bandInfos = bands.map { b -> RasterInfo.Band in
            let flags = b.maskFlags
            var mask: [String] = []
            if flags.contains(.allValid) { mask.append("all-valid") }
            if flags.contains(.perDataset) { mask.append("per-dataset") }
            if flags.contains(.alpha) { mask.append("alpha") }
            if flags.contains(.nodata) { mask.append("nodata") }
            let block = b.blockSize
            let description = b.bandDescription
            return RasterInfo.Band(
                band: b.index, dataType: b.dataType.rawValue, blockSize: [block.width, block.height],
                colorInterpretation: b.colorInterpretation.name, noDataValue: b.noDataValue,
                mask: mask.joined(separator: ","), description: description.isEmpty ? nil : description,
                overviews: b.overviewCount)
        }
        let gt = geoTransform
        let crs = spatialReference.map {
            RasterInfo.CRS(name: $0.name, epsg: $0.epsg, wkt: $0.wkt, isGeographic: $0.isGeographic)
        }
        return RasterInfo(
            path: path, driver: driverName, width: width, height: height, bandCount: bandCount, bands: bandInfos,
            geoTransform: gt?.coefficients, pixelSize: gt.map { [$0.pixelWidth, $0.pixelHeight] }, crs: crs,
            hasAlphaBand: hasAlphaBand, hasDatasetMask: hasDatasetMask)
    }
}
