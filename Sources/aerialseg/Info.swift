import ArgumentParser
import Foundation
import Pipeline

/// `aerialseg info FILE... [--json]`
struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what AerialSeg reads from rasters: size, bands, types, nodata, georeferencing, CRS.")

    @Argument(help: "Raster files (any format GDAL reads).")
    var files: [String]

    @Flag(help: "Print JSON (an array, one object per file).")
    var json = false

    func run() async throws {
        try reportEach(files, json: json, RasterInspection.info(path:), describe: RasterInspection.describe)
    }
}
