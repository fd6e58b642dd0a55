import CGDAL
import Foundation

/// How a written GeoTIFF is compressed. DEFLATE is the most widely readable; ZSTD is faster.
public enum Compression: String, Sendable, Codable, CaseIterable {
    case deflate = "DEFLATE", zstd = "ZSTD", lzw = "LZW", none = "NONE"
}

/// Overview resampling for the finished COG: `mode`/`nearest` for labels, `average` for continuous bands.
public enum OverviewResampling: String, Sendable, Codable, CaseIterable {
    case nearest = "NEAREST", mode = "MODE", average = "AVERAGE"
}

/// What a new raster looks like.
public struct RasterSpec: Sendable {
    public var width: Int
    public var height: Int
    public var bandCount: Int = 1
    public var dataType: RasterDataType = .byte
    /// Geotransform and CRS, usually copied from the input raster.
    public var geoTransform: GeoTransform?
    public var crsWKT: String?
    public var noDataValue: Double?
    /// Colour table for band 1 (label rasters), index = class id.
    public var colorTable: [RGBA]?
    /// Class names for band 1 (GDAL category names, shown by QGIS/ArcGIS), index = class id.
    public var categoryNames: [String]?
    /// One description per band (optional).
    public var bandDescriptions: [String] = []
    public var compression: Compression = .deflate
    /// Compression effort (DEFLATE 1–9, ZSTD 1–22); nil: GDAL's default (6 and 9). Low levels suit
    /// intermediate files that are read back once.
    public var compressionLevel: Int?
    /// Internal tile size (default 512).
    public var blockSize: Int = 512

    public init(width: Int, height: Int, bandCount: Int = 1, dataType: RasterDataType = .byte) {
        self.width = width
        self.height = height
        self.bandCount = bandCount
        self.dataType = dataType
    }
}

/// A GeoTIFF written incrementally by windows: tiled, compressed with a predictor, BIGTIFF=IF_SAFER.
///
/// Owns a `GDALDatasetH`. Call `close()` to flush and learn whether writing succeeded; `deinit`
/// closes silently. Bands are 1-based. The corresponding C function is `GDALCreate`.
public final class RasterWriter {
    private var handle: GDALDatasetH?
    public let path: String
    public let spec: RasterSpec

    public init(path: String, spec: RasterSpec) throws {
        GDAL.initialize()
        self.path = path
        self.spec = spec
        guard spec.width > 0, spec.height > 0, spec.bandCount > 0 else {
            throw GeoIOError(.invalidArgument, path: path, message: "cannot create a \(spec.width)×\(spec.height) raster",
                             hint: "size and band count must be positive")
        }
        guard let driver = GDALGetDriverByName("GTiff") else {
            throw GeoIOError(.unsupportedFormat, path: path, message: "GDAL has no GTiff driver", hint: "reinstall GDAL")
        }
        let isFloat = spec.dataType == .float32 || spec.dataType == .float64
        var options: [(String, String)] = [
            ("TILED", "YES"), ("BLOCKXSIZE", "\(spec.blockSize)"), ("BLOCKYSIZE", "\(spec.blockSize)"),
            ("COMPRESS", spec.compression.rawValue), ("BIGTIFF", "IF_SAFER"),
        ]
        if spec.compression != .none { options.append(("PREDICTOR", isFloat ? "3" : "2")) }
        if let level = spec.compressionLevel {
            if spec.compression == .deflate { options.append(("ZLEVEL", "\(level)")) }
            if spec.compression == .zstd { options.append(("ZSTD_LEVEL", "\(level)")) }
        }
        if spec.bandCount > 1 { options.append(("INTERLEAVE", "PIXEL")) }
        let created: GDALDatasetH? = withCStringList(options) { list in
            withQuietGDAL {
                GDALCreate(driver, path, Int32(spec.width), Int32(spec.height), Int32(spec.bandCount),
                           spec.dataType.gdal, list)
            }
        }
        guard let created else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot create the GeoTIFF",
                            hint: "check that the folder exists, is writable and has free space")
        }
        handle = created
        try configure(created)
    }

    deinit { if let handle { withQuietGDAL { GDALClose(handle) } } }

    private func configure(_ ds: GDALDatasetH) throws {
        try withQuietGDAL {
            if let gt = spec.geoTransform {
                var c = gt.coefficients
                guard GDALSetGeoTransform(ds, &c) == CE_None else { throw failure("cannot set the geotransform") }
            }
            if let wkt = spec.crsWKT, !wkt.isEmpty {
                guard GDALSetProjection(ds, wkt) == CE_None else { throw failure("cannot set the CRS") }
            }
            let style = BandStyle(noDataValue: spec.noDataValue, colorTable: spec.colorTable,
                                  categoryNames: spec.categoryNames, description: nil)
            if let problem = applyBandStyle(ds, style) { throw failure(problem) }
            for (b, d) in spec.bandDescriptions.prefix(spec.bandCount).enumerated() {
                GDALSetDescription(GDALGetRasterBand(ds, Int32(b + 1)), d)  // returns void: cannot fail
            }
        }
    }

    private func failure(_ what: String) -> GeoIOError {
        gdalError(.writeFailed, path: path, fallback: what, hint: "GDAL refused the raster's metadata")
    }

    /// Writes `window` of all bands from `values` (band-sequential Float32: bands × height × width),
    /// converted to the raster's type by GDAL (rounded and clamped for integer types).
    public func write(_ window: PixelWindow, values: UnsafeBufferPointer<Float>) throws {
        try write(window, pointer: UnsafeMutableRawPointer(mutating: values.baseAddress!), count: values.count,
                  type: GDT_Float32, size: 4)
    }

    /// Writes `window` of all bands from bytes (band-sequential: bands × height × width).
    public func write(_ window: PixelWindow, bytes: UnsafeBufferPointer<UInt8>) throws {
        try write(window, pointer: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), count: bytes.count,
                  type: GDT_Byte, size: 1)
    }

    private func write(_ window: PixelWindow, pointer: UnsafeMutableRawPointer, count: Int, type: GDALDataType,
                       size: Int) throws {
        guard let handle else {
            throw GeoIOError(.writeFailed, path: path, message: "write after close", hint: "")
        }
        guard window.x >= 0, window.y >= 0, window.x + window.width <= spec.width,
              window.y + window.height <= spec.height else {
            throw GeoIOError(.invalidArgument, path: path, message: "\(window) is outside the \(spec.width)×\(spec.height) raster",
                             hint: "")
        }
        precondition(count >= window.pixelCount * spec.bandCount, "buffer too small for \(window)")
        let err = withQuietGDAL {
            GDALDatasetRasterIOEx(handle, GF_Write, Int32(window.x), Int32(window.y), Int32(window.width),
                                  Int32(window.height), pointer, Int32(window.width), Int32(window.height), type,
                                  Int32(spec.bandCount), nil, Int64(size), Int64(size * window.width),
                                  Int64(size * window.pixelCount), nil)
        }
        guard err == CE_None else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot write \(window)", hint: "is the disk full?")
        }
    }

    /// Flushes and closes the file; throws if GDAL reported an error doing so (e.g. disk full).
    public func close() throws {
        guard let h = handle else { return }
        handle = nil
        try closeWritten(h, path: path)
    }
}

/// Converts a finished GeoTIFF into a Cloud-Optimized GeoTIFF with internal overviews, through GDAL's
/// COG driver (so `gdalinfo` reports `LAYOUT=COG`). Colour table and class names carry over
/// (class names in a `.aux.xml` sidecar, which QGIS and ArcGIS read).
/// The corresponding C function is `GDALCreateCopy`.
public func writeCloudOptimizedGeoTIFF(
    from source: String, to destination: String, resampling: OverviewResampling,
    compression: Compression = .deflate, blockSize: Int = 512
) throws {
    let src = try Dataset(path: source)
    try createCOG(from: src.handle, to: destination, resampling: resampling, compression: compression,
                  blockSize: blockSize)
}

func createCOG(from src: GDALDatasetH, to destination: String, resampling: OverviewResampling,
               compression: Compression, blockSize: Int) throws {
    guard let driver = GDALGetDriverByName("COG") else {
        throw GeoIOError(.unsupportedFormat, path: destination, message: "GDAL has no COG driver",
                         hint: "GDAL 3.1 or newer is needed")
    }
    let options: [(String, String)] = [
        ("COMPRESS", compression.rawValue), ("PREDICTOR", "YES"), ("BLOCKSIZE", "\(blockSize)"),
        ("OVERVIEW_RESAMPLING", resampling.rawValue), ("BIGTIFF", "IF_SAFER"),
        ("NUM_THREADS", "ALL_CPUS"),  // compresses tiles in parallel; tiles are still written in order
    ]
    let message: String? = withCStringList(options) { list in
        withQuietGDAL {
            guard let out = GDALCreateCopy(driver, destination, src, 0, list, nil, nil) else {
                return takeLastGDALError() ?? "the COG driver failed"
            }
            GDALClose(out)
            return takeLastGDALError()
        }
    }
    if let message {
        throw GeoIOError(.writeFailed, path: destination, message: message, hint: "check free disk space")
    }
}

/// Band metadata applied to a mosaic before it becomes a COG.
public struct BandStyle: Sendable {
    public var noDataValue: Double?
    public var colorTable: [RGBA]?
    public var categoryNames: [String]?
    public var description: String?
    /// Dataset metadata items (default domain), e.g. provenance; GTiff keeps them in its
    /// GDAL_METADATA tag, so `gdalinfo` shows them.
    public var metadata: [String: String]
    public init(noDataValue: Double? = nil, colorTable: [RGBA]? = nil, categoryNames: [String]? = nil,
                description: String? = nil, metadata: [String: String] = [:]) {
        self.noDataValue = noDataValue
        self.colorTable = colorTable
        self.categoryNames = categoryNames
        self.description = description
        self.metadata = metadata
    }
}

/// Mosaics georeferenced pieces (e.g. row bands written as they were finished) into one COG:
/// an in-memory VRT over the pieces (`GDALBuildVRT`), band 1 styled with `style`, copied by the
/// COG driver. Pieces must share CRS, resolution and band layout.
public func writeCloudOptimizedGeoTIFF(
    mosaicOf pieces: [String], to destination: String, style: BandStyle, resampling: OverviewResampling,
    compression: Compression = .deflate, blockSize: Int = 512
) throws {
    GDAL.initialize()
    guard !pieces.isEmpty else {
        throw GeoIOError(.invalidArgument, path: destination, message: "nothing to mosaic", hint: "")
    }
    let vrt: GDALDatasetH? = withCStringArray(pieces) { names in
        withQuietGDAL {
            var usageError: Int32 = 0
            // The pieces' own pixel size, not their average: averaging equal sizes can be an ulp off, and
            // then the output's geotransform would depend on how the image was cut.
            let opts = withCStringArray(["-resolution", "highest"]) { GDALBuildVRTOptionsNew($0, nil) }
            defer { GDALBuildVRTOptionsFree(opts) }
            return GDALBuildVRT("", Int32(pieces.count), nil, constList(names), opts, &usageError)
        }
    }
    guard let vrt else {
        throw gdalError(.writeFailed, path: destination, fallback: "cannot mosaic the pieces", hint: "")
    }
    defer { GDALClose(vrt) }
    if let problem = withQuietGDAL({ applyBandStyle(vrt, style) }) {
        CPLErrorReset()
        throw GeoIOError(.writeFailed, path: destination, message: problem, hint: "GDAL refused the raster's metadata")
    }
    CPLErrorReset()
    let levels = try writeOverviewLevels(of: vrt, next: destination, resampling: resampling, compression: compression,
                                         blockSize: blockSize)
    defer { removeOverviewLevels(levels) }
    let source = levels.isEmpty ? vrt : try attachOverviews(levels, to: vrt, destination: destination)
    defer { if source != vrt { GDALClose(source) } }
    try createCOG(from: source, to: destination, resampling: resampling, compression: compression, blockSize: blockSize)
}

/// The mosaic `vrt` again, with `levels` as its overviews (VRT `<Overview>` elements), which the COG
/// driver copies instead of computing its own.
func attachOverviews(_ levels: [String], to vrt: GDALDatasetH, destination: String) throws -> GDALDatasetH {
    let withOverviews: GDALDatasetH? = withQuietGDAL {
        guard let xml = GDALGetMetadata(vrt, "xml:VRT")?.pointee.map({ String(cString: $0) }) else { return nil }
        let overviews = levels.map { "<Overview><SourceFilename relativeToVRT=\"0\">\(xmlEscaped($0))</SourceFilename>"
            + "<SourceBand>1</SourceBand></Overview>" }.joined()
        return GDALOpen(xml.replacingOccurrences(of: "</VRTRasterBand>", with: overviews + "</VRTRasterBand>"), GA_ReadOnly)
    }
    guard let withOverviews else {
        throw gdalError(.writeFailed, path: destination, fallback: "cannot attach the overviews to the mosaic", hint: "")
    }
    return withOverviews
}

/// The overview levels the COG driver would make (halving until both sides are at most
/// `blockSize`), each a tiled GeoTIFF next to `destination` resampled from the level before
/// (`GDALTranslate -outsize -r`), so that memory stays within GDAL's block cache and a few tiles
/// whatever the raster's width: GDAL's own overview builder reads strips of the whole width (at
/// 65536 × 2048 it took 229 MiB where the copy alone takes 93). Returns the files, largest first.
func writeOverviewLevels(of base: GDALDatasetH, next destination: String, resampling: OverviewResampling,
                         compression: Compression, blockSize: Int) throws -> [String] {
    var (w, h) = (Int(GDALGetRasterXSize(base)), Int(GDALGetRasterYSize(base)))
    var levels: [String] = []
    var source = base
    defer { if source != base { GDALClose(source) } }
    do {
        while w > blockSize || h > blockSize {
            (w, h) = ((w + 1) / 2, (h + 1) / 2)
            let path = destination + ".level\(levels.count + 1).tif"
            let args = ["-outsize", "\(w)", "\(h)", "-r", resampling.rawValue.lowercased(), "-co", "TILED=YES",
                        "-co", "BLOCKXSIZE=\(blockSize)", "-co", "BLOCKYSIZE=\(blockSize)",
                        "-co", "COMPRESS=\(compression.rawValue)", "-co", "BIGTIFF=IF_SAFER"]
            let level: GDALDatasetH? = withQuietGDAL {
                let options = withCStringArray(args) { GDALTranslateOptionsNew($0, nil) }
                defer { GDALTranslateOptionsFree(options) }
                var usageError: Int32 = 0
                return GDALTranslate(path, source, options, &usageError)
            }
            guard let level else {
                throw gdalError(.writeFailed, path: destination, fallback: "cannot write overview level \(levels.count + 1)",
                                hint: "check free disk space")
            }
            levels.append(path)
            if source != base { GDALClose(source) }
            source = level
        }
    } catch {
        removeOverviewLevels(levels)
        throw error
    }
    return levels
}

/// Deletes the level files and the `.aux.xml` GDAL writes beside them (class names, which GeoTIFF
/// cannot hold).
func removeOverviewLevels(_ levels: [String]) {
    for level in levels {
        unlink(level)
        unlink(level + ".aux.xml")
    }
}

/// `text` with XML's five special characters escaped.
func xmlEscaped(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        .replacingOccurrences(of: "'", with: "&apos;")
}

/// Sets nodata and description on every band, colour table and class names on band 1.
/// Returns GDAL's error message, or nil.
func applyBandStyle(_ ds: GDALDatasetH, _ style: BandStyle) -> String? {
    for b in 1...GDALGetRasterCount(ds) {
        let band = GDALGetRasterBand(ds, b)
        if let nd = style.noDataValue, GDALSetRasterNoDataValue(band, nd) != CE_None { return "cannot set nodata" }
        if let d = style.description { GDALSetDescription(band, d) }
    }
    let band1 = GDALGetRasterBand(ds, 1)
    if let colors = style.colorTable, !colors.isEmpty {
        let table = GDALCreateColorTable(GPI_RGB)
        defer { GDALDestroyColorTable(table) }
        for (i, c) in colors.enumerated() {
            var entry = GDALColorEntry(c1: Int16(c.r), c2: Int16(c.g), c3: Int16(c.b), c4: Int16(c.a))
            GDALSetColorEntry(table, Int32(i), &entry)
        }
        guard GDALSetRasterColorTable(band1, table) == CE_None else { return "cannot set the colour table" }
        guard GDALSetRasterColorInterpretation(band1, GCI_PaletteIndex) == CE_None else {
            return "cannot mark band 1 as palette indices"
        }
    }
    if let names = style.categoryNames, !names.isEmpty {
        guard withCStringArray(names, { GDALSetRasterCategoryNames(band1, $0) }) == CE_None else {
            return "cannot set the class names"
        }
    }
    for (key, value) in style.metadata.sorted(by: { $0.key < $1.key }) {
        guard GDALSetMetadataItem(ds, key, value, nil) == CE_None else { return "cannot set metadata \(key)" }
    }
    return nil
}

/// Writes an 8-bit RGB image as PNG (a quick-look), through GDAL's MEM and PNG drivers.
/// `rgb` is band-sequential (3, height, width).
public func writePNG(path: String, width: Int, height: Int, rgb: [UInt8]) throws {
    try writePNG(path: path, width: width, height: height, bands: 3, pixels: rgb)
}

/// Writes an 8-bit RGB (`bands` 3) or RGBA (`bands` 4, alpha last) image as PNG, through GDAL's MEM
/// and PNG drivers. `pixels` is band-sequential (bands, height, width).
public func writePNG(path: String, width: Int, height: Int, bands: Int, pixels rgb: [UInt8]) throws {
    GDAL.initialize()
    precondition(bands == 3 || bands == 4, "a PNG here is RGB or RGBA")
    precondition(rgb.count == bands * width * height, "pixels must hold bands × width × height bytes")
    guard let mem = GDALGetDriverByName("MEM"), let png = GDALGetDriverByName("PNG") else {
        throw GeoIOError(.unsupportedFormat, path: path, message: "GDAL lacks the MEM or PNG driver", hint: "")
    }
    let message: String? = withQuietGDAL {
        guard let ds = GDALCreate(mem, "", Int32(width), Int32(height), Int32(bands), GDT_Byte, nil) else {
            return takeLastGDALError() ?? "cannot create the image in memory"
        }
        defer { GDALClose(ds) }
        var copy = rgb
        let err = copy.withUnsafeMutableBytes { buf in
            GDALDatasetRasterIOEx(ds, GF_Write, 0, 0, Int32(width), Int32(height), buf.baseAddress, Int32(width),
                                  Int32(height), GDT_Byte, Int32(bands), nil, 1, Int64(width), Int64(width * height),
                                  nil)
        }
        guard err == CE_None else { return takeLastGDALError() ?? "cannot fill the image" }
        guard let out = GDALCreateCopy(png, path, ds, 0, nil, nil, nil) else {
            return takeLastGDALError() ?? "the PNG driver failed"
        }
        GDALClose(out)
        return takeLastGDALError()
    }
    if let message { throw GeoIOError(.writeFailed, path: path, message: message, hint: "check free disk space") }
}

/// Deletes a raster and its sidecars (`.aux.xml`, `.ovr`, ...). The C function is `GDALDeleteDataset`.
public func deleteRaster(_ path: String) throws {
    GDAL.initialize()
    let message: String? = withQuietGDAL {
        guard let driver = GDALIdentifyDriver(path, nil) else { return "not a raster GDAL recognises" }
        return GDALDeleteDataset(driver, path) == CE_None ? nil : takeLastGDALError() ?? "cannot delete"
    }
    if let message { throw GeoIOError(.writeFailed, path: path, message: message, hint: "check permissions") }
}
