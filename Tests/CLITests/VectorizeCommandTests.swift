import Foundation
import Testing
import TestSupport

/// `aerialseg vectorize` run as a user runs it; outputs checked with OGR's own tools.
@Suite struct VectorizeCommandTests {
    let canopy = Fixtures.local("rasters/canopy_mask.tif").path

    func vectorize(_ arguments: [String]) throws -> ToolResult {
        try Tool.run(Tool.aerialseg, ["vectorize"] + arguments)
    }

    /// `ogrinfo -so` of a layer: its CRS, fields and feature count as OGR reads them.
    func summary(_ path: String, layer: String) throws -> String {
        let r = try Tool.run("ogrinfo", ["-so", path, layer])
        try #require(r.status == 0, "\(r.stderr)")
        return r.stdout
    }

    func featureCount(_ summary: String) -> Int? {
        summary.split(separator: "\n").first { $0.hasPrefix("Feature Count:") }
            .flatMap { Int($0.dropFirst("Feature Count:".count).trimmingCharacters(in: .whitespaces)) }
    }

    /// The oracle's polygon count: whole-image `gdal_polygonize.py`.
    func oracleCount(_ raster: String, dir: URL, eight: Bool = false) throws -> Int? {
        let path = dir.appendingPathComponent("oracle-\(eight).gpkg").path
        let r = try Tool.run("gdal_polygonize.py",
                             (eight ? ["-8"] : []) + ["-q", raster, "-f", "GPKG", path, "o", "DN"])
        try #require(r.status == 0, "\(r.stderr)")
        return featureCount(try summary(path, layer: "o"))
    }

    /// (class, class_name, area, area_m2, geometry area) per feature, through ogr2ogr's CSV.
    func rows(_ path: String, layer: String, dir: URL) throws -> [(Int, String, Double, Double, Double)] {
        let csv = dir.appendingPathComponent(UUID().uuidString + ".csv").path
        let sql = "SELECT class, class_name, area, area_m2, OGR_GEOM_AREA AS g FROM \"\(layer)\""
        let r = try Tool.run("ogr2ogr", ["-f", "CSV", csv, path, "-dialect", "OGRSQL", "-sql", sql])
        try #require(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst()
        return try lines.map { line in
            let p = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" \r")) }
            try #require(p.count == 5, "\(line)")
            return (try #require(Int(p[0])), p[1], try #require(Double(p[2])), try #require(Double(p[3])),
                    try #require(Double(p[4])))
        }
    }

    /// GeoPackage: opens with ogrinfo, has the raster's CRS and the four fields, one feature per
    /// region of the oracle, class names from --classes, areas consistent.
    @Test func geopackageHasCrsFieldsAndTheOraclesPolygons() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-vectorize")
        defer { try? FileManager.default.removeItem(at: dir) }
        let names = dir.appendingPathComponent("classes.txt").path
        try "background\ncanopy\n".write(toFile: names, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("canopy.gpkg").path
        let r = try vectorize([canopy, out, "--classes", names, "--strip-height", "64"])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("polygons"))
        let info = try summary(out, layer: "canopy")
        #expect(info.contains("ID[\"EPSG\",3395]"), "the raster's CRS")
        for field in ["class: Integer64", "class_name: String", "area: Real", "area_m2: Real"] {
            #expect(info.contains(field), "\(field)")
        }
        #expect(featureCount(info) == (try oracleCount(canopy, dir: dir)))
        let features = try rows(out, layer: "canopy", dir: dir)
        #expect(Set(features.map(\.1)) == ["background", "canopy"])
        #expect(features.allSatisfy { ($0.0 == 0) == ($0.1 == "background") })
        // area (pixel count × pixel area) is the geometry's area.
        #expect(features.filter { abs($0.2 - $0.4) > 1e-9 * $0.4 + 1e-8 }.isEmpty)  // 1e-8 = 1e-6 pixel
        // EPSG:3395 at ~48.5°N: ground area = map area / k², k = sec φ · √(1 − e² sin² φ) (ellipsoidal
        // Mercator scale), an independent formula; the raster is 200 m across, so k varies by < 1e-4.
        let phi = (48 + 30.0 / 60 + 58.14 / 3600) * Double.pi / 180
        let e2 = 0.006_694_379_990_14
        let k = sqrt(1 - e2 * sin(phi) * sin(phi)) / cos(phi)
        let bad = features.filter { abs($0.3 - $0.2 / (k * k)) > 2e-4 * $0.3 }
        #expect(bad.isEmpty, "\(bad.prefix(3))")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasPrefix(".aerialseg") }
        #expect(leftovers.isEmpty, "no staging folder left behind")
    }

    /// Shapefile: .prj and .cpg beside it; ogrinfo reads the CRS and fields. 8-connectivity; class
    /// names from a pipeline file.
    @Test func shapefileGetsPrjAndCpg() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-vectorize")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = dir.appendingPathComponent("p.yaml").path
        try "model: {decode_head: {type: FCNHead}}\nclasses: [bare, tree]\n"
            .write(toFile: pipeline, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("canopy.shp").path
        let r = try vectorize([canopy, out, "--connectivity", "8", "--strip-height", "100", "--pipeline", pipeline])
        try #require(r.status == 0, "\(r.stderr)")
        for ext in ["shp", "shx", "dbf", "prj", "cpg"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("canopy.\(ext)").path), "\(ext)")
        }
        let cpg = try String(contentsOfFile: dir.appendingPathComponent("canopy.cpg").path, encoding: .utf8)
        #expect(cpg.uppercased().contains("UTF-8"))
        let info = try summary(out, layer: "canopy")
        #expect(info.contains("World Mercator") || info.contains("World_Mercator"), "\(info)")
        for field in ["class: Integer64", "class_name: String", "area: Real", "area_m2: Real"] {
            #expect(info.contains(field), "\(field)")
        }
        #expect(featureCount(info) == (try oracleCount(canopy, dir: dir, eight: true)))
        #expect(Set(try rows(out, layer: "canopy", dir: dir).map(\.1)) == ["bare", "tree"])
    }

    /// GeoJSON opens, with the fields; --exclude drops a class; --min-area leaves no region smaller.
    @Test func geojsonWithExcludeMinAreaAndSimplify() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-vectorize")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("canopy.geojson").path
        let r = try vectorize([canopy, out, "--exclude", "0", "--min-area", "4", "--simplify", "0.15"])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("400 pixels"), "4 m² at 0.1 m pixels: \(r.stdout)")
        let features = try rows(out, layer: "canopy", dir: dir)
        #expect(!features.isEmpty)
        #expect(features.allSatisfy { $0.0 == 1 && $0.1 == "class_1" })
        #expect(features.allSatisfy { $0.2 >= 4 - 1e-9 })
        // Simplified outlines stay close to the region's area.
        #expect(features.allSatisfy { abs($0.4 - $0.2) < 0.2 * $0.2 })
    }

    /// Each bad input: one line `aerialseg: error: <file>: <what> (<hint>)` or a usage error, non-zero exit.
    @Test(arguments: ["missing", "extension", "connectivity", "float", "multiband", "classes", "exclude"])
    func badInputGivesAClearError(_ kind: String) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-vectorize")
        defer { try? FileManager.default.removeItem(at: dir) }
        var input = canopy, out = dir.appendingPathComponent("out.gpkg").path
        var extra: [String] = []
        var expected = ""
        switch kind {
        case "missing":
            input = dir.appendingPathComponent("nothing.tif").path
            expected = "\(input): no such file"
        case "extension":
            out = dir.appendingPathComponent("out.kml").path
            expected = "\(out): unknown vector format '.kml' (name the output .gpkg, .shp or .geojson)"
        case "connectivity":
            extra = ["--connectivity", "6"]
            expected = "--connectivity must be 4 or 8"
        case "float":
            input = dir.appendingPathComponent("float.tif").path
            try #require(try Tool.run("gdal_translate", ["-q", "-ot", "Float32", canopy, input]).status == 0)
            expected = "\(input): pixel type Float32 is not integer class ids"
        case "multiband":
            input = Fixtures.local("rasters/rgb1.tif").path
            expected = "\(input): has 3 bands; a label raster has one"
        case "classes":
            extra = ["--classes", dir.appendingPathComponent("none.txt").path]
            expected = "none.txt: cannot read the class names file"
        default:
            extra = ["--exclude", "zero"]
            expected = "--exclude takes class ids"
        }
        let r = try vectorize([input, out] + extra)
        #expect(r.status != 0)
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        if !["connectivity", "exclude"].contains(kind) {
            #expect(r.status == 2)
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            #expect(r.stderr.hasPrefix("aerialseg: error: "))
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}

/// GeoPackages record a `last_change` time; AerialSeg fixes it (`OGR_CURRENT_DATE`), so that the
/// same input gives the same bytes on every run (before: a new timestamp each time).
@Suite struct GeoPackageDeterminismTests {
    @Test func vectorizeWritesTheSameBytesTwice() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-gpkg-same")
        defer { try? FileManager.default.removeItem(at: dir) }
        let canopy = Fixtures.local("rasters/canopy_mask.tif").path
        var files: [String] = []
        for run in ["first", "second"] {  // one file name (it names the layer), two folders
            let folder = dir.appendingPathComponent(run)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let out = folder.appendingPathComponent("canopy.gpkg").path
            let r = try Tool.run(Tool.aerialseg, ["vectorize", canopy, out])
            try #require(r.status == 0, "\(r.stderr)")
            files.append(out)
        }
        let cmp = try Tool.run("cmp", files)
        #expect(cmp.status == 0, "\(cmp.stdout)")
        let contents = try Tool.run("ogrinfo", ["-ro", "-q", "-sql", "SELECT last_change FROM gpkg_contents", files[0]])
        #expect(contents.stdout.contains("last_change (DateTime) = 1970/01/01 00:00:00"), "\(contents.stdout)")
    }

    /// `run` with a `vectors:` block: two runs into two folders, the same `.vectors.gpkg` bytes.
    @Test func runWritesTheSameGeoPackageTwice() throws {
        let fixture = try RunFixture("aerialseg-gpkg-run", size: 256, extra: ["vectors: {format: gpkg}"])
        defer { fixture.remove() }
        var files: [String] = []
        for name in ["a", "b"] {
            let out = fixture.dir.appendingPathComponent(name).path
            let r = try fixture.run(out)
            try #require(r.status == 0, "\(r.stderr)")
            files.append("\(out)/\(fixture.stem).vectors.gpkg")
        }
        let cmp = try Tool.run("cmp", files)
        #expect(cmp.status == 0, "\(cmp.stdout)")
    }
}
