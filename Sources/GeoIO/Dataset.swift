import CGDAL
import Foundation

/// A raster opened for reading through GDAL: any format and size GDAL can open.
///
/// Owns a `GDALDatasetH`, closed in `deinit`. Bands are numbered from 1, as in GDAL. A `Dataset` is
/// not `Sendable`: GDAL handles must stay on one thread, so each worker opens its own.
/// The corresponding C function is `GDALOpenEx`.
public final class Dataset {
    let handle: GDALDatasetH
    /// The path it was opened from.
    public let path: String

    /// Opens a raster read-only.
    ///
    /// Throws `GeoIOError` with `.fileNotFound` or `.notARaster` (and GDAL's reason) instead of
    /// returning nil.
    public init(path: String) throws {
        GDAL.initialize()
        self.path = path
        let isVirtual = path.hasPrefix("/vsi")
        if !isVirtual && !FileManager.default.fileExists(atPath: path) {
            throw GeoIOError(.fileNotFound, path: path, message: "no such file", hint: "check the path")
        }
        let opened: GDALDatasetH? = withQuietGDAL {
            GDALOpenEx(path, UInt32(GDAL_OF_RASTER | GDAL_OF_READONLY), nil, nil, nil)
        }
        guard let opened else {
            throw gdalError(.notARaster, path: path, fallback: "not a raster GDAL can read",
                            hint: "is it an image file, complete and not truncated? `gdalinfo` shows what GDAL sees")
        }
        // GDAL 3.6's GTiff driver loads the .aux.xml sidecar (class names, descriptions) lazily, on the
        // first georeferencing query; without this, category names read as absent.
        var coefficients = [Double](repeating: 0, count: 6)
        withQuietGDAL { _ = GDALGetGeoTransform(opened, &coefficients) }
        CPLErrorReset()
        handle = opened
        if GDALGetRasterCount(handle) < 1 {
            GDALClose(handle)
            throw GeoIOError(.notARaster, path: path, message: "the file has no raster bands",
                             hint: "a vector-only or empty file cannot be segmented")
        }
    }

    deinit { withQuietGDAL { GDALClose(handle) } }  // a VRT may report on its sources while closing

    /// Raster width in pixels.
    public var width: Int { Int(GDALGetRasterXSize(handle)) }
    /// Raster height in pixels.
    public var height: Int { Int(GDALGetRasterYSize(handle)) }
    /// Number of bands.
    public var bandCount: Int { Int(GDALGetRasterCount(handle)) }
    /// The driver's short name, e.g. "GTiff", "VRT", "PNG".
    public var driverName: String {
        guard let driver = GDALGetDatasetDriver(handle) else { return "" }
        return String(cString: GDALGetDriverShortName(driver))
    }

    /// Band `index` (1-based).
    public func band(_ index: Int) -> RasterBand {
        precondition(index >= 1 && index <= bandCount, "band \(index) out of 1...\(bandCount)")
        return RasterBand(dataset: self, handle: GDALGetRasterBand(handle, Int32(index)), index: index)
    }

    /// All bands, 1...bandCount.
    public var bands: [RasterBand] { (1...bandCount).map(band) }

    /// The affine geotransform, or nil when the file has none (GDAL then assumes pixel coordinates).
    /// The corresponding C function is `GDALGetGeoTransform`.
    public var geoTransform: GeoTransform? {
        var c = [Double](repeating: 0, count: 6)
        let err = withQuietGDAL { GDALGetGeoTransform(handle, &c) }
        CPLErrorReset()
        return err == CE_None ? GeoTransform(c) : nil
    }

    /// The coordinate reference system, or nil when the file has none.
    public var spatialReference: SpatialReference? {
        guard let srs = GDALGetSpatialRef(handle), let clone = OSRClone(srs) else { return nil }
        return SpatialReference(owning: clone)
    }

    /// Whether one band is an alpha band.
    public var hasAlphaBand: Bool { bands.contains { $0.colorInterpretation == .alpha } }

    /// Whether validity comes from a per-dataset mask (alpha band or internal/external mask).
    public var hasDatasetMask: Bool { band(1).maskFlags.contains(.perDataset) }

    /// Metadata items of a domain ("" is the default domain), e.g. `["AREA_OR_POINT": "Area"]`.
    public func metadata(domain: String = "") -> [String: String] {
        readMetadata(GDALGetMetadata(handle, domain))
    }
}

/// One band of a `Dataset`; keeps its dataset alive.
public struct RasterBand {
    public let dataset: Dataset
    let handle: GDALRasterBandH
    /// 1-based band number.
    public let index: Int

    /// Pixel type on disk.
    public var dataType: RasterDataType { RasterDataType(GDALGetRasterDataType(handle)) }

    /// Natural block size (width, height): a tile, or a strip of rows.
    public var blockSize: (width: Int, height: Int) {
        var x: Int32 = 0, y: Int32 = 0
        GDALGetBlockSize(handle, &x, &y)
        return (Int(x), Int(y))
    }

    public var colorInterpretation: ColorInterpretation {
        ColorInterpretation(raw: GDALGetRasterColorInterpretation(handle))
    }

    /// The nodata value, if one is set.
    public var noDataValue: Double? {
        var has: Int32 = 0
        let value = GDALGetRasterNoDataValue(handle, &has)
        return has != 0 ? value : nil
    }

    /// How validity of this band's pixels is decided.
    public var maskFlags: MaskFlags { MaskFlags(rawValue: GDALGetMaskFlags(handle)) }

    /// The band's description (often empty).
    public var bandDescription: String { String(cString: GDALGetDescription(handle)) }

    /// Colour table entries (palette rasters), or nil.
    public var colorTable: [RGBA]? {
        guard let table = GDALGetRasterColorTable(handle) else { return nil }
        return (0..<GDALGetColorEntryCount(table)).map { i in
            var e = GDALColorEntry()
            GDALGetColorEntryAsRGB(table, i, &e)
            return RGBA(UInt8(clamping: e.c1), UInt8(clamping: e.c2), UInt8(clamping: e.c3), UInt8(clamping: e.c4))
        }
    }

    /// Category (class) names, or nil. The C function is `GDALGetRasterCategoryNames`.
    public var categoryNames: [String]? {
        guard let list = GDALGetRasterCategoryNames(handle) else { return nil }
        var names: [String] = []
        var i = 0
        while let item = list[i] {
            names.append(String(cString: item))
            i += 1
        }
        return names.isEmpty ? nil : names
    }

    /// Number of overview levels.
    public var overviewCount: Int { Int(GDALGetOverviewCount(handle)) }

    /// Metadata items of a domain.
    public func metadata(domain: String = "") -> [String: String] {
        readMetadata(GDALGetMetadata(handle, domain))
    }
}

func readMetadata(_ list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String: String] {
    guard let list else { return [:] }
    var result: [String: String] = [:]
    var i = 0
    while let item = list[i] {
        let entry = String(cString: item)
        if let eq = entry.firstIndex(of: "=") {
            result[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
        }
        i += 1
    }
    return result
}
