import CGDAL
import Foundation

/// Process-wide GDAL set-up: driver registration and the raster block cache.
public enum GDAL {
    /// Default size of GDAL's raster block cache: 256 MiB.
    ///
    /// GDAL's own default is 5% of RAM; a fixed, modest cache keeps memory bounded and predictable
    /// while reading many windows of one huge raster (blocks are evicted least-recently-used).
    public static let defaultBlockCacheBytes: Int64 = 256 << 20

    /// The time GeoPackages record as their `last_change` (gpkg_contents): the Unix epoch, unless
    /// `OGR_CURRENT_DATE` is set in the environment. GDAL stamps the current time otherwise, and no
    /// two runs would write the same bytes; every AerialSeg output is reproducible byte for byte.
    public static let fixedVectorDate = "1970-01-01T00:00:00.000Z"

    private static let registration: Void = {
        GDALAllRegister()
        GDALSetCacheMax64(defaultBlockCacheBytes)
        if CPLGetConfigOption("OGR_CURRENT_DATE", nil) == nil { CPLSetConfigOption("OGR_CURRENT_DATE", fixedVectorDate) }
    }()

    /// Registers all drivers once (idempotent, thread-safe).
    public static func initialize() { _ = registration }

    /// Sets GDAL's block cache size in bytes (the C function is `GDALSetCacheMax64`).
    public static func setBlockCacheSize(_ bytes: Int64) {
        initialize()
        GDALSetCacheMax64(bytes)
    }

    /// The block cache size in bytes.
    public static var blockCacheSize: Int64 {
        initialize()
        return GDALGetCacheMax64()
    }

    /// GDAL's release name, e.g. "3.6.2".
    public static var version: String {
        initialize()
        return String(cString: GDALVersionInfo("RELEASE_NAME"))
    }
}

/// A GDAL string list (`char **`) built from Swift key/value options, freed after use.
/// The corresponding C functions are `CSLSetNameValue` and `CSLDestroy`.
func withCStringList<T>(_ options: [(String, String)], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) throws -> T) rethrows -> T {
    var list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
    for (key, value) in options { list = CSLSetNameValue(list, key, value) }
    defer { CSLDestroy(list) }
    return try body(list)
}

/// A GDAL string list from plain strings (`CSLAddString`).
func withCStringArray<T>(_ items: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) throws -> T) rethrows -> T {
    var list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
    for item in items { list = CSLAddString(list, item) }
    defer { CSLDestroy(list) }
    return try body(list)
}

/// The same string list viewed as GDAL's `CSLConstList` (`const char * const *`).
func constList(_ list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> UnsafePointer<UnsafePointer<CChar>?>? {
    guard let list else { return nil }
    return UnsafeRawPointer(list).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
}
