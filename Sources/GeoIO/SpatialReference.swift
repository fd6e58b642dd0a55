import CGDAL

/// A coordinate reference system. Owns an `OGRSpatialReferenceH` (freed in `deinit`).
///
/// Axis order is the traditional GIS one (x = easting/longitude), as GDAL's raster georeferencing uses.
public final class SpatialReference: @unchecked Sendable {
    let handle: OGRSpatialReferenceH

    /// Takes ownership of a handle.
    init(owning handle: OGRSpatialReferenceH) {
        self.handle = handle
        OSRSetAxisMappingStrategy(handle, OAMS_TRADITIONAL_GIS_ORDER)
    }

    /// A CRS from any definition GDAL understands: WKT, "EPSG:n", PROJ string, PROJJSON.
    /// The corresponding C function is `OSRSetFromUserInput`.
    public convenience init(definition: String) throws {
        GDAL.initialize()
        guard let handle = OSRNewSpatialReference(nil) else {
            throw GeoIOError(.invalidArgument, path: definition, message: "cannot allocate a CRS", hint: "")
        }
        let err = withQuietGDAL { OSRSetFromUserInput(handle, definition) }
        guard err == OGRERR_NONE else {
            OSRDestroySpatialReference(handle)
            throw GeoIOError(.invalidArgument, path: definition, message: "not a coordinate reference system GDAL understands",
                             hint: "give WKT, EPSG:<code> or a PROJ string")
        }
        self.init(owning: handle)
    }

    /// A CRS from an EPSG code.
    public convenience init(epsg: Int) throws {
        try self.init(definition: "EPSG:\(epsg)")
    }

    deinit { OSRDestroySpatialReference(handle) }

    /// WKT2 (2019), multi-line, as `gdalinfo` prints it.
    public var wkt: String { export(["FORMAT=WKT2_2019", "MULTILINE=YES"]) }

    /// Single-line WKT1 as GDAL stores it in GeoTIFF keys and shapefile .prj (ESRI flavour not applied).
    public var wkt1: String { export(["FORMAT=WKT1"]) }

    private func export(_ options: [String]) -> String {
        var result: UnsafeMutablePointer<CChar>? = nil
        let err = withCStringArray(options) { list in withQuietGDAL { OSRExportToWktEx(handle, &result, constList(list)) } }
        defer { VSIFree(result) }
        guard err == OGRERR_NONE, let result else { return "" }
        return String(cString: result)
    }

    /// The EPSG code where GDAL can identify one (the CRS's own authority code, else a matched one).
    public var epsg: Int? {
        if let name = OSRGetAuthorityName(handle, nil), String(cString: name) == "EPSG",
           let code = OSRGetAuthorityCode(handle, nil) {
            return Int(String(cString: code))
        }
        guard let clone = OSRClone(handle) else { return nil }
        defer { OSRDestroySpatialReference(clone) }
        let err = withQuietGDAL { OSRAutoIdentifyEPSG(clone) }
        guard err == OGRERR_NONE, let code = OSRGetAuthorityCode(clone, nil) else { return nil }
        return Int(String(cString: code))
    }

    /// The CRS's name, e.g. "WGS 84 / UTM zone 18N".
    public var name: String {
        guard let cName = OSRGetName(handle) else { return "" }
        return String(cString: cName)
    }

    /// Whether coordinates are longitude/latitude (areas then are not in m²).
    public var isGeographic: Bool { OSRIsGeographic(handle) != 0 }

    /// Linear unit name and metres per unit (for projected CRSs).
    public var linearUnits: (name: String, metres: Double) {
        var cName: UnsafeMutablePointer<CChar>? = nil
        let metres = OSRGetLinearUnits(handle, &cName)
        return (cName.map { String(cString: $0) } ?? "", metres)
    }

    /// Whether two CRSs are the same (`OSRIsSame`).
    public func isSame(as other: SpatialReference) -> Bool { OSRIsSame(handle, other.handle) != 0 }
}
