import Foundation

/// The files `aerialseg run` writes for one input, in the output folder, named after the input's
/// file name without its extension (its *stem*): `<stem>.labels.tif`, `<stem>.confidence.tif`,
/// `<stem>.preview.png`, `<stem>.vectors.<gpkg|shp|geojson>`; its work folder and lock are
/// `.aerialseg-work-<stem>-<key>/` and `.aerialseg-lock-<stem>`.
///
/// Two inputs of one run with the same stem (`a/x.tif`, `b/x.tif`, or `x.tif` and `x.vrt`) would
/// write the same files; `InputExpansion.checkDistinctOutputs` refuses them before any work.
public struct RunOutputNames: Sendable, Equatable {
    public let stem: String

    public init(input: String) {
        stem = ((input as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    public var labels: String { stem + ".labels.tif" }
    public var confidence: String { stem + ".confidence.tif" }
    public var preview: String { stem + ".preview.png" }
    public func vectors(fileExtension: String) -> String { "\(stem).vectors.\(fileExtension)" }
    /// The primary outputs, as listed in an error about two inputs writing the same files.
    var summary: String { "\(labels), \(confidence), …" }

    /// Endings of the rasters `run` writes, and of the vectors in every format with their sidecars
    /// (compared without regard to case).
    static let rasterEndings = [".labels.tif", ".confidence.tif", ".preview.png"]
    static let vectorEndings = ["gpkg", "geojson", "shp", "shx", "dbf", "prj", "cpg"].map { ".vectors." + $0 }

    /// Whether `fileName` is named like a file `run` writes, or a GDAL sidecar of one (`.aux.xml`,
    /// `.ovr`): folders and patterns given as `--input` skip such files, so `--input DIR --output DIR`
    /// does not read its own outputs on the next run.
    public static func isRunOutput(_ fileName: String) -> Bool {
        var name = fileName.lowercased()
        for sidecar in [".aux.xml", ".ovr"] where name.hasSuffix(sidecar) { name.removeLast(sidecar.count) }
        return (rasterEndings + vectorEndings).contains { name.hasSuffix($0) }
    }
}
