import CGDAL
import Foundation

/// Vector file formats written through OGR.
public enum VectorFormat: String, Sendable, Codable, CaseIterable {
    case geopackage = "GPKG", shapefile = "ESRI Shapefile", geojson = "GeoJSON"

    /// The format implied by a file name's extension (.gpkg, .shp, .geojson/.json), or nil.
    public init?(path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "gpkg": self = .geopackage
        case "shp": self = .shapefile
        case "geojson", "json": self = .geojson
        default: return nil
        }
    }

    /// The format named by a user: "gpkg", "shp", "geojson" (or a GDAL driver name).
    public init(name: String) throws {
        switch name.lowercased() {
        case "gpkg", "geopackage": self = .geopackage
        case "shp", "shapefile", "esri shapefile": self = .shapefile
        case "geojson", "json": self = .geojson
        default:
            throw GeoIOError(.unsupportedFormat, path: name, message: "unsupported vector format",
                             hint: "use gpkg, shp or geojson")
        }
    }

    /// Files making up one dataset of this format with primary file `name` (sidecars included).
    public func files(forPrimary name: String) -> [String] {
        guard self == .shapefile else { return [name] }
        let stem = (name as NSString).deletingPathExtension
        return ["shp", "shx", "dbf", "prj", "cpg"].map { "\(stem).\($0)" }
    }
}

/// A typed attribute field.
public struct VectorField: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case integer, real, string }
    public var name: String
    public var kind: Kind
    public init(_ name: String, _ kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// An attribute value.
public enum FieldValue: Sendable, Hashable {
    case integer(Int), real(Double), string(String), null
}

/// Geometry kinds a layer declares.
public enum GeometryKind: Sendable {
    case polygon, multiPolygon, unknown
    var ogr: OGRwkbGeometryType {
        switch self {
        case .polygon: wkbPolygon
        case .multiPolygon: wkbMultiPolygon
        case .unknown: wkbUnknown
        }
    }
}

/// A vector dataset being written (GeoPackage, Shapefile with .prj and .cpg, GeoJSON).
///
/// Owns a `GDALDatasetH`; `close()` flushes and reports failure. Layers keep the dataset alive.
/// The corresponding C function is `GDALCreate` with a vector driver.
public final class VectorWriter {
    var handle: GDALDatasetH?
    public let path: String
    public let format: VectorFormat

    public init(path: String, format: VectorFormat) throws {
        GDAL.initialize()
        self.path = path
        self.format = format
        guard let driver = GDALGetDriverByName(format.rawValue) else {
            throw GeoIOError(.unsupportedFormat, path: path, message: "GDAL has no \(format.rawValue) driver",
                             hint: "use .gpkg, .shp or .geojson")
        }
        let created: GDALDatasetH? = withQuietGDAL { GDALCreate(driver, path, 0, 0, 0, GDT_Unknown, nil) }
        guard let created else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot create the vector file",
                            hint: "check that the folder exists and is writable")
        }
        handle = created
    }

    deinit { if let handle { withQuietGDAL { GDALClose(handle) } } }

    /// Creates a layer with a CRS, geometry kind and typed fields.
    public func createLayer(
        name: String, spatialReference: SpatialReference?, geometry: GeometryKind, fields: [VectorField]
    ) throws -> VectorLayer {
        guard let handle else { throw GeoIOError(.writeFailed, path: path, message: "closed", hint: "") }
        var options: [(String, String)] = []
        if format == .shapefile { options.append(("ENCODING", "UTF-8")) }  // writes the .cpg
        let layer: OGRLayerH? = withCStringList(options) { list in
            withQuietGDAL { GDALDatasetCreateLayer(handle, name, spatialReference?.handle, geometry.ogr, list) }
        }
        guard let layer else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot create layer \(name)", hint: "")
        }
        for field in fields {
            let type: OGRFieldType = switch field.kind {
            case .integer: OFTInteger64
            case .real: OFTReal
            case .string: OFTString
            }
            let definition = OGR_Fld_Create(field.name, type)
            defer { OGR_Fld_Destroy(definition) }
            if field.kind == .string { OGR_Fld_SetWidth(definition, 254) }
            let err = withQuietGDAL { OGR_L_CreateField(layer, definition, 1) }
            guard err == OGRERR_NONE else {
                throw gdalError(.writeFailed, path: path, fallback: "cannot create field \(field.name)", hint: "")
            }
        }
        return VectorLayer(writer: self, handle: layer, fields: fields)
    }

    /// Starts a transaction (much faster bulk inserts in GeoPackage); a no-op where unsupported.
    public func beginTransaction() {
        guard let handle else { return }
        _ = withQuietGDAL { GDALDatasetStartTransaction(handle, 1) }
        CPLErrorReset()
    }

    /// Commits the open transaction.
    public func commitTransaction() throws {
        guard let handle else { return }
        let err = withQuietGDAL { GDALDatasetCommitTransaction(handle) }
        if err != OGRERR_NONE && err != OGRERR_UNSUPPORTED_OPERATION {
            throw gdalError(.writeFailed, path: path, fallback: "cannot commit features", hint: "is the disk full?")
        }
        CPLErrorReset()
    }

    /// Flushes and closes; throws if GDAL reported an error.
    public func close() throws {
        guard let h = handle else { return }
        handle = nil
        try closeWritten(h, path: path)
    }
}

/// A layer of a `VectorWriter`.
public final class VectorLayer {
    let writer: VectorWriter
    let handle: OGRLayerH
    public let fields: [VectorField]

    init(writer: VectorWriter, handle: OGRLayerH, fields: [VectorField]) {
        self.writer = writer
        self.handle = handle
        self.fields = fields
    }

    /// Index of a field by name.
    func fieldIndex(_ name: String) -> Int32 { OGR_L_FindFieldIndex(handle, name, 1) }

    /// Adds a feature from a WKT geometry and values in `fields` order.
    public func add(wkt: String, values: [FieldValue]) throws {
        let geometry: VectorGeometry
        do {
            geometry = try VectorGeometry(wkt: wkt)
        } catch {
            throw GeoIOError(.invalidArgument, path: writer.path, message: "invalid WKT geometry", hint: "")
        }
        try add(geometry, values: values)
    }

    func add(geometry: OGRGeometryH, values: [FieldValue]) throws {
        precondition(values.count == fields.count, "expected \(fields.count) values")
        let feature = OGR_F_Create(OGR_L_GetLayerDefn(handle))
        defer { OGR_F_Destroy(feature) }
        for (i, value) in values.enumerated() {
            let index = Int32(i)
            switch value {
            case .integer(let v): OGR_F_SetFieldInteger64(feature, index, Int64(v))
            case .real(let v): OGR_F_SetFieldDouble(feature, index, v)
            case .string(let v): OGR_F_SetFieldString(feature, index, v)
            case .null: OGR_F_SetFieldNull(feature, index)
            }
        }
        OGR_F_SetGeometry(feature, geometry)
        let err = withQuietGDAL { OGR_L_CreateFeature(handle, feature) }
        guard err == OGRERR_NONE else {
            throw gdalError(.writeFailed, path: writer.path, fallback: "cannot write a feature", hint: "is the disk full?")
        }
    }

    /// Number of features written so far.
    public var featureCount: Int { Int(OGR_L_GetFeatureCount(handle, 1)) }
}
