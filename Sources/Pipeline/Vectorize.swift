import Foundation
import GeoIO

/// Settings of `aerialseg vectorize` and of a pipeline file's `vectors:` block.
public struct VectorizeOptions: Sendable {
    /// 4 (pixels joined by edges, GDAL's default) or 8 (edges and corners). Default 4.
    public var connectivity: Connectivity = .four
    /// Regions smaller than this (map units²) are first merged into their largest neighbour
    /// (`GDALSieveFilter`), so the coverage keeps no holes. Default: none.
    public var minimumArea: Double?
    /// Topology-preserving simplification tolerance in map units (per polygon). Default: none.
    public var simplifyTolerance: Double?
    /// Class ids never written (nodata / mask-invalid pixels never are). Default: none.
    public var excludedValues: [Int] = []
    /// Class names by class id; nil: the raster's category names, else `class_<id>`.
    public var classNames: [String]?
    /// Rows per polygonized strip; nil: automatic (tests force small strips).
    public var stripHeight: Int?

    public init() {}

    /// Rejects bad values before any work starts.
    public func validate(path: String) throws {
        if let a = minimumArea, !(a > 0 && a.isFinite) {
            throw PipelineError(path: path, reason: "minimum area \(a) must be positive",
                                hint: "give an area in map units², e.g. 10")
        }
        if let t = simplifyTolerance, !(t >= 0 && t.isFinite) {
            throw PipelineError(path: path, reason: "simplify tolerance \(t) must be zero or positive",
                                hint: "give a distance in map units, e.g. 0.5")
        }
    }
}

/// What vectorizing wrote.
public struct VectorizeResult: Sendable {
    /// The vector file (for a Shapefile, the .shp; its .shx/.dbf/.prj/.cpg are beside it).
    public var path: String
    /// Every file written.
    public var files: [String]
    /// Polygons written.
    public var features: Int
    /// The sieve threshold used (regions of fewer pixels were merged), or nil.
    public var sievePixels: Int?
    public var seconds: Double
}

/// `aerialseg vectorize`: a label raster → one polygon per connected region of equal class, with its
/// class id and name, planar area in map units² and ground area in m².
///
/// The raster is streamed in strips (`StripPolygonizer`), with exactly the polygons of one
/// whole-image `GDALPolygonize`. Output goes through OGR into a staging folder and is moved into place
/// when complete.
public enum Vectorizer {
    /// Vectorizes `labels` into `output` (.gpkg, .shp or .geojson), atomically.
    public static func vectorize(labels: String, output: String, options: VectorizeOptions) throws
        -> VectorizeResult
    {
        let start = ContinuousClock.now
        guard let format = VectorFormat(path: output) else {
            throw PipelineError(path: output, reason: "unknown vector format '.\((output as NSString).pathExtension)'",
                                hint: "name the output .gpkg, .shp or .geojson")
        }
        try options.validate(path: labels)
        let dataset = try openLabels(labels)
        let name = (output as NSString).lastPathComponent
        let folder = (output as NSString).deletingLastPathComponent
        let staged = try StagedOutput(directory: folder.isEmpty ? "." : folder)
        let written = try write(dataset, to: staged.stagingPath(name), format: format,
                                scratch: staged.stagingPath(".sieved.tif"), options: options)
        let files = format.files(forPrimary: name)
        try staged.commit(primaries: [name])
        return VectorizeResult(path: staged.finalPath(name), files: files.map(staged.finalPath),
                               features: written.features, sievePixels: written.sievePixels,
                               seconds: (ContinuousClock.now - start).seconds)
    }

    /// Class names from a text file: one per line, line 1 = class 0. Blank lines keep their id
    /// (the class gets the default `class_<id>` name).
    public static func classNames(file: String) throws -> [String] {
        let data = try readConfigFile(file, limit: PipelineConfig.maxFileBytes, kind: "class names file")
        guard let text = String(data: data, encoding: .utf8) else {
            throw PipelineError(path: file, reason: "the class names file is not UTF-8 text",
                                hint: "one class name per line, line 1 = class 0")
        }
        var lines = text.components(separatedBy: "\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard !lines.isEmpty else {
            throw PipelineError(path: file, reason: "the class names file is empty",
                                hint: "one class name per line, line 1 = class 0")
        }
        return lines
    }

    /// Opens a label raster: one band (an alpha band besides it is allowed) of integer class ids.
    static func openLabels(_ path: String) throws -> Dataset {
        let dataset = try Dataset(path: path)
        let extra = dataset.bands.dropFirst().filter { $0.colorInterpretation != .alpha }
        guard extra.isEmpty else {
            throw PipelineError(path: path, reason: "has \(dataset.bandCount) bands; a label raster has one",
                                hint: "extract the class band with gdal_translate -b 1")
        }
        let type = dataset.band(1).dataType
        guard StripPolygonizer.supportedTypes.contains(type) else {
            throw PipelineError(path: path, reason: "pixel type \(type.rawValue) is not integer class ids",
                                hint: "vectorize takes Byte/Int16/UInt16/Int32 labels; convert whole-valued "
                                    + "rasters with gdal_translate -ot Int32")
        }
        return dataset
    }

    /// Writes the vector file at `path` (not staged), sieving first into `scratch` (removed after).
    static func write(_ dataset: Dataset, to path: String, format: VectorFormat, scratch: String,
                      options: VectorizeOptions) throws -> (features: Int, sievePixels: Int?) {
        let band = dataset.band(1)
        let transform = dataset.geoTransform ?? .identity
        let c = transform.coefficients
        let pixelArea = abs(c[1] * c[5] - c[2] * c[4])
        let names = options.classNames ?? band.categoryNames ?? []

        // Sieve: regions of fewer than ⌈A / pixel area⌉ pixels (area < A) merge into a neighbour.
        var source = band
        var sievePixels: Int?
        defer {
            if sievePixels != nil {
                for file in [scratch, scratch + ".aux.xml"] where FileManager.default.fileExists(atPath: file) {
                    try? FileManager.default.removeItem(atPath: file)
                }
            }
        }
        if let area = options.minimumArea, pixelArea > 0 {
            let ratio = area / pixelArea
            let threshold = Int(min((ratio * (1 - 1e-12)).rounded(.up), Double(Int32.max)))
            if threshold > 1 {
                sievePixels = threshold
                try band.sieve(to: scratch, minimumPixels: threshold, connectivity: options.connectivity)
                source = try Dataset(path: scratch).band(1)  // the band keeps its dataset open
            }
        }

        let ground = try groundArea(dataset, transform: transform)
        let writer = try VectorWriter(path: path, format: format)
        let multi = options.connectivity == .eight && format != .shapefile
        let layerName = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let layer = try writer.createLayer(
            name: layerName, spatialReference: dataset.spatialReference, geometry: multi ? .multiPolygon : .polygon,
            fields: [VectorField("class", .integer), VectorField("class_name", .string),
                     VectorField("area", .real), VectorField("area_m2", .real)])
        writer.beginTransaction()
        let polygonizer = StripPolygonizer(connectivity: options.connectivity,
                                           excludedValues: options.excludedValues, stripHeight: options.stripHeight)
        let count = try polygonizer.polygonize(source, validity: band) { region in
            let name = region.value >= 0 && region.value < names.count && !names[region.value].isEmpty
                ? names[region.value] : "class_\(region.value)"
            let squareMetres = try ground.map { FieldValue.real(try $0.squareMetres(region.geometry)) } ?? .null
            var geometry = region.geometry
            if let t = options.simplifyTolerance, t > 0 { geometry = try geometry.simplified(tolerance: t) }
            if multi { geometry = geometry.asMultiPolygon() }
            try layer.add(geometry, values: [.integer(region.value), .string(name),
                                             .real(Double(region.pixelCount) * pixelArea), squareMetres])
        }
        try writer.commitTransaction()
        try writer.close()
        return (count, sievePixels)
    }

    /// Ground areas through a local equal-area projection centred on the raster, or nil without a CRS.
    static func groundArea(_ dataset: Dataset, transform: GeoTransform) throws -> GroundArea? {
        guard let crs = dataset.spatialReference, dataset.geoTransform != nil else { return nil }
        let centre = transform.apply(column: Double(dataset.width) / 2, row: Double(dataset.height) / 2)
        let c = transform.coefficients
        let pixel = max(hypot(c[1], c[4]), hypot(c[2], c[5]))
        do {
            return try GroundArea(crs: crs, centerX: centre.x, centerY: centre.y, segmentLength: 64 * pixel)
        } catch let error as GeoIOError {
            throw PipelineError(path: dataset.path, reason: "cannot compute ground areas: \(error.message)",
                                hint: "check the raster's CRS with gdalinfo")
        }
    }
}

extension PipelineConfig.VectorsConfig {
    /// The vectorize settings this block asks for (the label raster's nodata, 255, is never written).
    func options(classNames: [String]?) -> VectorizeOptions {
        var options = VectorizeOptions()
        options.connectivity = connectivity == 8 ? .eight : .four
        options.minimumArea = minArea
        options.simplifyTolerance = simplify
        options.excludedValues = Array(Set((exclude ?? []) + [255])).sorted()
        options.classNames = classNames
        return options
    }

    /// The file extension of `format` (gpkg by default).
    var fileExtension: String {
        switch (format ?? "gpkg").lowercased() {
        case "shp", "shapefile": "shp"
        case "geojson", "json": "geojson"
        default: "gpkg"
        }
    }
}

/// For `aerialseg run`: writes `<stem>.vectors.<ext>` from the staged labels COG into the same
/// staging folder; returns its file name (the commit's primary), or nil without a `vectors:` block.
func writeRunVectors(names: RunOutputNames, output: StagedOutput, pipeline: PipelineConfig,
                     classNames: [String]?) throws -> String? {
    guard let vectors = pipeline.vectors else { return nil }
    let name = names.vectors(fileExtension: vectors.fileExtension)
    guard let format = VectorFormat(path: name) else { return nil }
    let dataset = try Vectorizer.openLabels(output.stagingPath(names.labels))
    let options = vectors.options(classNames: classNames)
    _ = try Vectorizer.write(dataset, to: output.stagingPath(name), format: format,
                             scratch: output.stagingPath(".sieved.tif"), options: options)
    return name
}
