import Foundation
import GeoIO
import Testing
import TestSupport

/// Polygonizing the canopy mask gives the same polygons as `gdal_polygonize.py`.
@Suite struct PolygonizeTests {
    /// (class value, area) for every feature of a vector file, via `ogr2ogr -f CSV` and OGR_GEOM_AREA.
    func classAreas(_ path: String, layer: String, field: String, dir: URL) throws -> [(Int, Double)] {
        let csv = dir.appendingPathComponent(UUID().uuidString + ".csv").path
        let r = try Tool.run("ogr2ogr", ["-f", "CSV", csv, path, "-dialect", "OGRSQL", "-sql",
                                         "SELECT \(field) AS v, OGR_GEOM_AREA AS a FROM \"\(layer)\""])
        try #require(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst()
        return try lines.map { line in
            let parts = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" \r")) }
            return (try #require(Int(parts[0]), "\(line)"), try #require(Double(parts[1]), "\(line)"))
        }
    }

    @Test(arguments: [Connectivity.four, .eight])
    func matchesGdalPolygonize(_ connectivity: Connectivity) throws {
        let mask = Fixtures.shared("data/oam-tcd/canopy_mask.tif") ?? Fixtures.local("rasters/canopy_mask.tif")
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }

        let oraclePath = dir.appendingPathComponent("oracle.gpkg").path
        var args = ["-q", mask.path, "-f", "GPKG", oraclePath, "oracle", "DN"]
        if connectivity == .eight { args.insert("-8", at: 0) }
        let r = try Tool.run("gdal_polygonize.py", args)
        try #require(r.status == 0, "\(r.stderr)")

        let oursPath = dir.appendingPathComponent("ours.gpkg").path
        let source = try Dataset(path: mask.path)
        let writer = try VectorWriter(path: oursPath, format: .geopackage)
        let layer = try writer.createLayer(name: "ours", spatialReference: source.spatialReference,
                                           geometry: .polygon, fields: [VectorField("class", .integer)])
        writer.beginTransaction()
        try layer.polygonize(source.band(1), field: "class", connectivity: connectivity)
        try writer.commitTransaction()
        try writer.close()

        let expected = try classAreas(oraclePath, layer: "oracle", field: "DN", dir: dir)
        let actual = try classAreas(oursPath, layer: "ours", field: "class", dir: dir)
        #expect(actual.count == expected.count)
        #expect(expected.count > 10)
        for value in Set(expected.map(\.0)) {
            let e = expected.filter { $0.0 == value }, a = actual.filter { $0.0 == value }
            #expect(a.count == e.count, "class \(value) polygon count")
            let ea = e.map(\.1).reduce(0, +), aa = a.map(\.1).reduce(0, +)
            #expect(abs(ea - aa) <= 1e-6 * ea, "class \(value) area")
        }
        #expect(actual.map(\.1).sorted() == expected.map(\.1).sorted())
    }
}
