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
        var infos: [RasterInspection.Info] = []
        var failed = false
        for file in files {
            do {
                let info = try RasterInspection.info(path: file)
                if json { infos.append(info) } else { print(RasterInspection.describe(info)) }
            } catch {
                printError("aerialseg: error: \(error)")
                failed = true
            }
        }
        if json {
            print(try RasterInspection.json(infos))
        }
        if failed { throw ExitCode(2) }
    }
}
