import ArgumentParser
import Foundation
import Pipeline

/// `aerialseg vectorize LABELS.tif OUT.{gpkg,shp,geojson} [...]`
struct Vectorize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a label raster into polygons with class, name, area in map units² and ground area in m².",
        discussion: """
            One polygon per connected region of equal class; nodata never becomes a polygon. The raster \
            is streamed in strips, with exactly the polygons of one whole-image gdal_polygonize. The \
            output is written atomically; a Shapefile gets .prj and .cpg.
            """)

    @Argument(help: "A label raster (one band of integer class ids), e.g. <stem>.labels.tif.")
    var labels: String

    @Argument(help: "Output vector file: .gpkg, .shp or .geojson.")
    var output: String

    @Option(help: "Class names, one per line (line 1 = class 0).")
    var classes: String?

    @Option(help: "Take class names from this pipeline file's classes.")
    var pipeline: String?

    @Option(help: "Merge regions smaller than this (map units²) into a neighbour first.")
    var minArea: Double?

    @Option(help: "Topology-preserving simplification tolerance in map units.")
    var simplify: Double?

    @Option(help: "4 (pixels joined by edges) or 8 (also by corners).")
    var connectivity = 4

    @Option(help: "Class ids not written as polygons, e.g. 0,255.")
    var exclude: String?

    @Option(help: ArgumentHelp("Rows per strip (tests).", visibility: .hidden))
    var stripHeight: Int?

    func validate() throws {
        if connectivity != 4 && connectivity != 8 { throw ValidationError("--connectivity must be 4 or 8") }
        if classes != nil && pipeline != nil { throw ValidationError("give --classes or --pipeline, not both") }
        if let exclude, parseIntegers(exclude) == nil {
            throw ValidationError("--exclude takes class ids separated by commas, e.g. 0,255")
        }
        if let minArea, !(minArea > 0) { throw ValidationError("--min-area must be positive (map units²)") }
        if let simplify, !(simplify >= 0) { throw ValidationError("--simplify must be zero or positive (map units)") }
        if let stripHeight, stripHeight < 1 { throw ValidationError("--strip-height must be positive") }
    }

    func run() async throws {
        do {
            var options = VectorizeOptions()
            options.connectivity = connectivity == 8 ? .eight : .four
            options.minimumArea = minArea
            options.simplifyTolerance = simplify
            options.excludedValues = exclude.flatMap(parseIntegers) ?? []
            options.stripHeight = stripHeight
            if let classes {
                options.classNames = try Vectorizer.classNames(file: classes)
            } else if let pipeline {
                options.classNames = try PipelineConfig.load(path: pipeline).classes
            }
            let result = try Vectorizer.vectorize(labels: labels, output: output, options: options)
            let sieve = result.sievePixels.map { ", regions under \($0) pixels merged first" } ?? ""
            print(String(format: "%@: %d polygons in %.1f s%@", labels, result.features, result.seconds, sieve))
            result.files.forEach { print("  \($0)") }
        } catch {
            throw fail(error)
        }
    }
}
