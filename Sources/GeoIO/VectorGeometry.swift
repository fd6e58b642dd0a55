import CGDAL
import Foundation

/// A polygon or multipolygon owned by Swift (an `OGRGeometryH`, destroyed in `deinit`), in the
/// coordinates of some CRS. Produced by `StripPolygonizer`; written with `VectorLayer.add(_:values:)`.
///
/// Not `Sendable`: OGR geometries are plain C objects used from one thread.
public final class VectorGeometry {
    let handle: OGRGeometryH

    /// Takes ownership of `handle`.
    init(owning handle: OGRGeometryH) { self.handle = handle }

    deinit { OGR_G_DestroyGeometry(handle) }

    /// A geometry from WKT, e.g. `POLYGON ((0 0,1 0,1 1,0 0))`. The C function is `OGR_G_CreateFromWkt`.
    public convenience init(wkt: String) throws {
        var geometry: OGRGeometryH? = nil
        var cString = Array(wkt.utf8CString)
        let err = cString.withUnsafeMutableBufferPointer { buf -> OGRErr in
            var p: UnsafeMutablePointer<CChar>? = buf.baseAddress
            return OGR_G_CreateFromWkt(&p, nil, &geometry)
        }
        guard err == OGRERR_NONE, let geometry else {
            throw GeoIOError(.invalidArgument, path: "WKT", message: "invalid WKT geometry", hint: "")
        }
        self.init(owning: geometry)
    }

    /// Planar area in squared coordinate units (`OGR_G_Area`).
    public var area: Double { OGR_G_Area(handle) }

    /// Whether this is a MultiPolygon (else a Polygon).
    public var isMultiPolygon: Bool { OGR_GT_Flatten(OGR_G_GetGeometryType(handle)) == wkbMultiPolygon }

    /// Number of vertices over all rings.
    public var pointCount: Int { Self.points(handle) }

    private static func points(_ g: OGRGeometryH) -> Int {
        let parts = Int(OGR_G_GetGeometryCount(g))
        if parts == 0 { return Int(OGR_G_GetPointCount(g)) }
        return (0..<parts).reduce(0) { $0 + points(OGR_G_GetGeometryRef(g, Int32($1))) }
    }

    /// WKT of the geometry (for tests and messages).
    public var wkt: String {
        var out: UnsafeMutablePointer<CChar>? = nil
        guard OGR_G_ExportToWkt(handle, &out) == OGRERR_NONE, let out else { return "" }
        defer { VSIFree(out) }
        return String(cString: out)
    }

    /// Whether GEOS considers the geometry valid (OGC simple features rules).
    public var isValid: Bool {
        let valid = withQuietGDAL { OGR_G_IsValid(handle) }
        CPLErrorReset()
        return valid != 0
    }

    /// A copy simplified with tolerance `tolerance` (coordinate units) that keeps the geometry valid
    /// and its rings from crossing (Douglas-Peucker with topology preserved within this one geometry;
    /// borders shared with neighbouring geometries are simplified independently).
    /// The corresponding C function is `OGR_G_SimplifyPreserveTopology` (GEOS).
    public func simplified(tolerance: Double) throws -> VectorGeometry {
        let result: OGRGeometryH? = withQuietGDAL { OGR_G_SimplifyPreserveTopology(handle, tolerance) }
        guard let result else {
            throw gdalError(.invalidArgument, path: "geometry", fallback: "simplification failed",
                            hint: "try a smaller --simplify tolerance")
        }
        return VectorGeometry(owning: result)
    }

    /// A MultiPolygon copy (a Polygon becomes a one-part MultiPolygon). `OGR_G_ForceToMultiPolygon`.
    public func asMultiPolygon() -> VectorGeometry {
        if isMultiPolygon { return VectorGeometry(owning: OGR_G_Clone(handle)) }
        return VectorGeometry(owning: OGR_G_ForceToMultiPolygon(OGR_G_Clone(handle)))
    }
}

extension VectorLayer {
    /// Adds a feature with `geometry` (copied) and values in `fields` order.
    public func add(_ geometry: VectorGeometry, values: [FieldValue]) throws {
        try add(geometry: geometry.handle, values: values)
    }
}

/// Ground areas in square metres, on the ellipsoid: geometries are projected into a Lambert azimuthal
/// equal-area projection centred on a given point (usually the raster's centre), whose areas equal
/// areas on the ellipsoid of the source CRS's datum.
///
/// Why: the planar area in the raster's own CRS is not a ground area for geographic CRSs (degrees²)
/// nor for conformal projections far from their standard line (EPSG:3395 World Mercator inflates
/// areas by 1/cos²(latitude): ×2.3 at 48°N). Edges are densified before projecting, so long straight
/// edges (straight in the source CRS) follow their true course; the remaining error is far below a
/// pixel's area for any raster smaller than a few hundred kilometres.
public final class GroundArea {
    private let transform: OGRCoordinateTransformationH
    private let equalArea: SpatialReference
    /// Longest edge kept before projecting, in source units.
    public let segmentLength: Double

    /// - Parameters:
    ///   - crs: the CRS the geometries are in.
    ///   - centerX, centerY: the projection centre, in `crs` coordinates.
    ///   - segmentLength: edges longer than this (source units) get intermediate vertices.
    public init(crs: SpatialReference, centerX: Double, centerY: Double, segmentLength: Double) throws {
        self.segmentLength = segmentLength
        guard let geographic = OSRCloneGeogCS(crs.handle) else {
            throw GeoIOError(.invalidArgument, path: crs.name, message: "the CRS has no geographic base",
                             hint: "ground areas need an ellipsoid")
        }
        let lonLat = SpatialReference(owning: geographic)
        guard let toLonLat = OCTNewCoordinateTransformation(crs.handle, lonLat.handle) else {
            throw gdalError(.invalidArgument, path: crs.name, fallback: "cannot convert to longitude/latitude",
                            hint: "ground areas need a CRS PROJ can convert")
        }
        defer { OCTDestroyCoordinateTransformation(toLonLat) }
        var x = centerX, y = centerY, z = 0.0
        guard withQuietGDAL({ OCTTransform(toLonLat, 1, &x, &y, &z) }) != 0 else {
            throw gdalError(.invalidArgument, path: crs.name, fallback: "the raster's centre has no longitude/latitude",
                            hint: "check the raster's georeferencing")
        }
        guard let laea = OSRNewSpatialReference(nil) else {
            throw GeoIOError(.invalidArgument, path: crs.name, message: "cannot allocate a CRS", hint: "")
        }
        equalArea = SpatialReference(owning: laea)
        let err = withQuietGDAL { () -> OGRErr in
            var e = OSRCopyGeogCSFrom(laea, crs.handle)
            if e == OGRERR_NONE { e = OSRSetProjCS(laea, "AerialSeg local Lambert azimuthal equal-area") }
            if e == OGRERR_NONE { e = OSRSetLAEA(laea, y, x, 0, 0) }
            if e == OGRERR_NONE { e = OSRSetLinearUnits(laea, SRS_UL_METER, 1) }
            return e
        }
        guard err == OGRERR_NONE, let forward = OCTNewCoordinateTransformation(crs.handle, laea) else {
            throw gdalError(.invalidArgument, path: crs.name, fallback: "cannot build an equal-area projection",
                            hint: "ground areas need a CRS PROJ can convert")
        }
        transform = forward
    }

    deinit { OCTDestroyCoordinateTransformation(transform) }

    /// The ground area of `geometry` (in the source CRS) in m².
    public func squareMetres(_ geometry: VectorGeometry) throws -> Double {
        guard let copy = OGR_G_Clone(geometry.handle) else { return 0 }
        defer { OGR_G_DestroyGeometry(copy) }
        OGR_G_Segmentize(copy, segmentLength)
        let err = withQuietGDAL { OGR_G_Transform(copy, transform) }
        guard err == OGRERR_NONE else {
            throw gdalError(.invalidArgument, path: "geometry", fallback: "cannot project to equal-area",
                            hint: "check the raster's georeferencing")
        }
        return OGR_G_Area(copy)
    }
}
