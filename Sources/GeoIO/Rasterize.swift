import CGDAL

/// Polygons of a vector file burned onto a raster grid window by window, e.g. vector training labels
/// for `aerialseg tile`.
///
/// The features of one layer are read once, reprojected to the raster's CRS and converted to the
/// raster's pixel coordinates with the inverse geotransform — the same arithmetic `gdal_rasterize`
/// does — so a window burned here equals the same window of a whole-raster `gdal_rasterize` (pixel
/// centres inside a polygon are burned; later features overwrite earlier ones). Memory holds the
/// geometries, not a raster. The C function is `GDALRasterizeGeometries`.
public final class VectorLabels {
    public let path: String
    public let field: String
    /// Pixel-space geometries (owned) with their burn values and pixel-space bounding boxes.
    private var geometries: [OGRGeometryH] = []
    private var burns: [Double] = []
    private var boxes: [(x0: Double, y0: Double, x1: Double, y1: Double)] = []

    /// Reads `layer` (default: the first) of `path`; each feature's burn value is `value(fieldText)`,
    /// which may throw for values it cannot map. Features without geometry are skipped.
    public init(path: String, layer layerName: String? = nil, field: String, grid: GeoTransform,
                crs: SpatialReference, value: (String) throws -> UInt8) throws {
        GDAL.initialize()
        self.path = path
        self.field = field
        let ds: GDALDatasetH? = withQuietGDAL { GDALOpenEx(path, UInt32(GDAL_OF_VECTOR | GDAL_OF_READONLY), nil, nil, nil) }
        guard let ds else {
            throw gdalError(.notARaster, path: path, fallback: "not a vector file GDAL can open",
                            hint: "give a GeoPackage, Shapefile or GeoJSON with polygons")
        }
        defer { GDALClose(ds) }
        let layer: OGRLayerH? = layerName.map { GDALDatasetGetLayerByName(ds, $0) } ?? GDALDatasetGetLayer(ds, 0)
        guard let layer else {
            throw GeoIOError(.invalidArgument, path: path, message: "has no layer \(layerName ?? "")",
                             hint: "list the layers with `ogrinfo \(path)`")
        }
        let definition = OGR_L_GetLayerDefn(layer)
        let fieldIndex = OGR_FD_GetFieldIndex(definition, field)
        guard fieldIndex >= 0 else {
            let names = (0..<OGR_FD_GetFieldCount(definition)).map {
                String(cString: OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(definition, $0)))
            }
            throw GeoIOError(.invalidArgument, path: path, message: "has no field '\(field)'",
                             hint: "its fields are: \(names.joined(separator: ", "))")
        }
        // Reproject when the layer's CRS differs from the raster's.
        var transform: OGRCoordinateTransformationH?
        if let source = OGR_L_GetSpatialRef(layer), OSRIsSame(source, crs.handle) == 0 {
            let src = OSRClone(source)
            defer { OSRDestroySpatialReference(src) }
            OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER)
            transform = withQuietGDAL { OCTNewCoordinateTransformation(src, crs.handle) }
            guard transform != nil else {
                throw gdalError(.invalidArgument, path: path, fallback: "cannot reproject the labels to the raster's CRS",
                                hint: "reproject them with ogr2ogr -t_srs")
            }
        }
        defer { if let transform { OCTDestroyCoordinateTransformation(transform) } }
        var inverse = [Double](repeating: 0, count: 6)
        var forward = grid.coefficients
        guard GDALInvGeoTransform(&forward, &inverse) != 0 else {
            throw GeoIOError(.invalidArgument, path: path, message: "the raster's geotransform is not invertible", hint: "")
        }
        OGR_L_ResetReading(layer)
        while let feature = OGR_L_GetNextFeature(layer) {
            defer { OGR_F_Destroy(feature) }
            guard let g = OGR_F_GetGeometryRef(feature), OGR_G_IsEmpty(g) == 0 else { continue }
            let text = OGR_F_IsFieldSetAndNotNull(feature, fieldIndex) != 0
                ? String(cString: OGR_F_GetFieldAsString(feature, fieldIndex)) : ""
            let burn = try value(text)
            guard let copy = OGR_G_Clone(g) else { continue }
            if let transform, withQuietGDAL({ OGR_G_Transform(copy, transform) }) != OGRERR_NONE {
                OGR_G_DestroyGeometry(copy)
                throw GeoIOError(.invalidArgument, path: path, message: "feature \(OGR_F_GetFID(feature)) cannot be "
                                 + "reprojected to the raster's CRS", hint: "check the layer's CRS")
            }
            Self.applyAffine(copy, inverse)
            var envelope = OGREnvelope()
            OGR_G_GetEnvelope(copy, &envelope)
            geometries.append(copy)
            burns.append(Double(burn))
            boxes.append((envelope.MinX, envelope.MinY, envelope.MaxX, envelope.MaxY))
        }
    }

    deinit { for g in geometries { OGR_G_DestroyGeometry(g) } }

    /// Number of features read.
    public var featureCount: Int { geometries.count }

    /// Burns the features onto `window` of the raster grid: (window.height, window.width) bytes,
    /// `background` where no feature covers a pixel centre.
    public func rasterize(_ window: PixelWindow, background: UInt8) throws -> [UInt8] {
        var out = [UInt8](repeating: background, count: window.pixelCount)
        let wx0 = Double(window.x), wy0 = Double(window.y)
        let wx1 = wx0 + Double(window.width), wy1 = wy0 + Double(window.height)
        var picked: [OGRGeometryH?] = []
        var values: [Double] = []
        for (i, b) in boxes.enumerated() where b.x1 >= wx0 && b.x0 <= wx1 && b.y1 >= wy0 && b.y0 <= wy1 {
            picked.append(geometries[i])
            values.append(burns[i])
        }
        guard !picked.isEmpty else { return out }
        guard let mem = GDALGetDriverByName("MEM"),
              let ds = GDALCreate(mem, "", Int32(window.width), Int32(window.height), 1, GDT_Byte, nil)
        else {
            throw GeoIOError(.writeFailed, path: path, message: "cannot create a raster in memory", hint: "")
        }
        defer { GDALClose(ds) }
        // Pixel space shifted to the window: x' = x - window.x exactly (see the type's comment).
        var gt = [wx0, 1, 0, wy0, 0, 1]
        let band = GDALGetRasterBand(ds, 1)
        guard withQuietGDAL({ GDALSetGeoTransform(ds, &gt) }) == CE_None,
              withQuietGDAL({ GDALFillRaster(band, Double(background), 0) }) == CE_None else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot set up the raster in memory", hint: "")
        }
        var bandList: [Int32] = [1]
        let err = withQuietGDAL {
            GDALRasterizeGeometries(ds, 1, &bandList, Int32(picked.count), &picked, nil, nil, &values, nil, nil, nil)
        }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "rasterizing the labels failed", hint: "")
        }
        let readErr = out.withUnsafeMutableBufferPointer { buf in
            GDALRasterIOEx(band, GF_Read, 0, 0, Int32(window.width), Int32(window.height), buf.baseAddress,
                           Int32(window.width), Int32(window.height), GDT_Byte, 1, Int64(window.width), nil)
        }
        guard readErr == CE_None else {
            throw GeoIOError(.readFailed, path: path, message: "cannot read the rasterized labels back", hint: "")
        }
        return out
    }

    /// Applies a geotransform-style affine map to every vertex of `g` (recursively).
    private static func applyAffine(_ g: OGRGeometryH, _ t: [Double]) {
        let parts = OGR_G_GetGeometryCount(g)
        if parts > 0 {
            for i in 0..<parts { applyAffine(OGR_G_GetGeometryRef(g, i), t) }
            return
        }
        for i in 0..<OGR_G_GetPointCount(g) {
            let x = OGR_G_GetX(g, i), y = OGR_G_GetY(g, i)
            OGR_G_SetPoint_2D(g, i, t[0] + x * t[1] + y * t[2], t[3] + x * t[4] + y * t[5])
        }
    }
}

/// Writes a small raster in one go (a training crop): PNG or GeoTIFF through GDAL's MEM driver and
/// `GDALCreateCopy`. `planes` is band-sequential (bands, height, width) Float32, converted to
/// `dataType` by GDAL. GeoTIFFs carry `geoTransform` and `crsWKT`; PNGs carry neither (no sidecar).
public func writeSmallRaster(
    path: String, png: Bool, width: Int, height: Int, bands: Int, dataType: RasterDataType,
    planes: [Float], geoTransform: GeoTransform? = nil, crsWKT: String? = nil, colorTable: [RGBA]? = nil
) throws {
    GDAL.initialize()
    precondition(planes.count == bands * width * height, "planes must hold bands × height × width values")
    guard let mem = GDALGetDriverByName("MEM"), let driver = GDALGetDriverByName(png ? "PNG" : "GTiff") else {
        throw GeoIOError(.unsupportedFormat, path: path, message: "GDAL lacks the MEM, PNG or GTiff driver", hint: "")
    }
    let message: String? = withQuietGDAL {
        guard let ds = GDALCreate(mem, "", Int32(width), Int32(height), Int32(bands), dataType.gdal, nil) else {
            return takeLastGDALError() ?? "cannot create the image in memory"
        }
        defer { GDALClose(ds) }
        var copy = planes
        let err = copy.withUnsafeMutableBytes { buf in
            GDALDatasetRasterIOEx(ds, GF_Write, 0, 0, Int32(width), Int32(height), buf.baseAddress, Int32(width),
                                  Int32(height), GDT_Float32, Int32(bands), nil, 4, Int64(4 * width),
                                  Int64(4 * width * height), nil)
        }
        guard err == CE_None else { return takeLastGDALError() ?? "cannot fill the image" }
        if !png {
            if var gt = geoTransform?.coefficients, GDALSetGeoTransform(ds, &gt) != CE_None {
                return takeLastGDALError() ?? "cannot set the geotransform"
            }
            if let crsWKT, GDALSetProjection(ds, crsWKT) != CE_None {
                return takeLastGDALError() ?? "cannot set the CRS"
            }
        }
        if let colorTable, let problem = applyBandStyle(ds, BandStyle(colorTable: colorTable)) { return problem }
        let integer = dataType != .float32 && dataType != .float64
        let options: [(String, String)] = png ? [] : [("COMPRESS", "DEFLATE"), ("PREDICTOR", integer ? "2" : "3")]
        let out: GDALDatasetH? = withCStringList(options) { GDALCreateCopy(driver, path, ds, 0, $0, nil, nil) }
        guard let out else { return takeLastGDALError() ?? "the \(png ? "PNG" : "GTiff") driver failed" }
        GDALClose(out)
        return takeLastGDALError()
    }
    if let message { throw GeoIOError(.writeFailed, path: path, message: message, hint: "check free disk space") }
}
