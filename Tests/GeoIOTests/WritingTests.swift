import Foundation
import GeoIO
import Testing
import TestSupport

@Suite struct WritingTests {
    /// Writes the canopy mask as a two-class label COG by 512-row windows and checks it with gdalinfo.
    @Test func labelCOGHasGeoreferencingPaletteNamesNodataOverviews() throws {
        let sourcePath = Fixtures.local("rasters/canopy_mask.tif").path
        let source = try Dataset(path: sourcePath)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = try StagedOutput(directory: dir.path)

        var spec = RasterSpec(width: source.width, height: source.height)
        spec.geoTransform = source.geoTransform
        spec.crsWKT = source.spatialReference?.wkt
        spec.noDataValue = 255
        spec.colorTable = [RGBA(200, 200, 200), RGBA(20, 140, 40)]
        spec.categoryNames = ["background", "tree"]
        spec.bandDescriptions = ["class"]
        let intermediate = output.stagingPath("labels.intermediate.tif")
        let writer = try RasterWriter(path: intermediate, spec: spec)
        var y = 0
        while y < source.height {
            let window = PixelWindow(x: 0, y: y, width: source.width, height: min(512, source.height - y))
            var bytes = try source.readBytes(window).map { $0 == 255 ? UInt8(1) : UInt8(0) }
            if y == 0 { bytes[0] = 255 }  // one nodata pixel
            try bytes.withUnsafeBufferPointer { try writer.write(window, bytes: $0) }
            y += window.height
        }
        try writer.close()
        try writeCloudOptimizedGeoTIFF(from: intermediate, to: output.stagingPath("labels.tif"), resampling: .mode)
        try deleteRaster(intermediate)
        #expect(!FileManager.default.fileExists(atPath: output.finalPath("labels.tif")), "nothing visible before commit")
        try output.commit(primaries: ["labels.tif"])

        let path = output.finalPath("labels.tif")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(Set(leftovers) == ["labels.tif", "labels.tif.aux.xml"], "no staging folder left behind")

        let info = try Tool.gdalinfoJSON(path)
        let src = try Tool.gdalinfoJSON(sourcePath)
        #expect((info["geoTransform"] as! [Double]) == (src["geoTransform"] as! [Double]))
        let stac = info["stac"] as! [String: Any], srcStac = src["stac"] as! [String: Any]
        #expect(stac["proj:epsg"] as? Int == srcStac["proj:epsg"] as? Int)
        let structure = (info["metadata"] as! [String: Any])["IMAGE_STRUCTURE"] as! [String: String]
        #expect(structure["LAYOUT"] == "COG")
        #expect(structure["COMPRESSION"] == "DEFLATE")
        let band = (info["bands"] as! [[String: Any]])[0]
        #expect(band["noDataValue"] as? Double == 255)
        #expect(band["colorInterpretation"] as? String == "Palette")
        #expect(band["description"] as? String == "class")
        #expect((band["block"] as! [Int]) == [512, 512])
        let table = (band["colorTable"] as! [String: Any])["entries"] as! [[Int]]
        #expect(table[1] == [20, 140, 40, 255])
        #expect((band["categories"] as? [String]) == ["background", "tree"])
        #expect(((band["overviews"] as? [[String: Any]]) ?? []).count >= 2)

        // Our own reader sees the same pixels.
        let back = try Dataset(path: path)
        let row = try back.readBytes(PixelWindow(x: 0, y: 1000, width: 2048, height: 1))
        let orig = try source.readBytes(PixelWindow(x: 0, y: 1000, width: 2048, height: 1))
        #expect(row == orig.map { $0 == 255 ? 1 : 0 })
        #expect(back.band(1).categoryNames == ["background", "tree"])
    }

    /// A dropped StagedOutput leaves nothing behind.
    /// Row-band pieces mosaicked into a COG whose overviews are built level by level
    /// (`writeOverviewLevels`): GDAL sees a valid COG with the halved levels, the first level is
    /// the mode of each 2 × 2 block (three pixels agree, the fourth, the one nearest-neighbour
    /// would pick, differs; nodata where the base is), and no level file is left behind.
    @Test func mosaicOfPiecesHasOverviewsBuiltLevelByLevel() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let crs = try Dataset(path: Fixtures.local("rasters/canopy_mask.tif").path).spatialReference?.wkt
        let (width, height) = (1400, 700)
        func mode(_ x: Int, _ y: Int) -> UInt8 { x < 64 && y < 64 ? 255 : UInt8((x / 2 + (y / 2) * 3) % 5) }
        func value(_ x: Int, _ y: Int) -> UInt8 {
            x % 2 == 1 && y % 2 == 1 && mode(x, y) != 255 ? (mode(x, y) + 1) % 5 : mode(x, y)
        }
        var pieces: [String] = []
        for (y0, rows) in [(0, 250), (250, 250), (500, 200)] {
            var spec = RasterSpec(width: width, height: rows)
            spec.geoTransform = GeoTransform([500_000, 0.5, 0, 4_000_000 - 0.5 * Double(y0), 0, -0.5])
            spec.crsWKT = crs
            spec.noDataValue = 255
            let path = dir.appendingPathComponent("piece\(y0).tif").path
            let writer = try RasterWriter(path: path, spec: spec)
            let bytes = (0..<(rows * width)).map { value($0 % width, y0 + $0 / width) }
            try bytes.withUnsafeBufferPointer { try writer.write(PixelWindow(x: 0, y: 0, width: width, height: rows), bytes: $0) }
            try writer.close()
            pieces.append(path)
        }
        let out = dir.appendingPathComponent("labels.tif").path
        try writeCloudOptimizedGeoTIFF(mosaicOf: pieces, to: out, style: BandStyle(noDataValue: 255, categoryNames: ["a", "b"]),
                                       resampling: .mode, blockSize: 256)
        let info = try Tool.gdalinfoJSON(out)
        #expect(((info["metadata"] as? [String: Any])?["IMAGE_STRUCTURE"] as? [String: String])?["LAYOUT"] == "COG")
        let band = try #require((info["bands"] as? [[String: Any]])?.first)
        let sizes = (band["overviews"] as? [[String: Any]] ?? []).compactMap { $0["size"] as? [Int] }
        #expect(sizes == [[700, 350], [350, 175], [175, 88]])
        let first = dir.appendingPathComponent("first.tif").path  // the first overview, by GDAL's own tool
        _ = try Tool.run("gdal_translate", ["-q", "-ovr", "0", out, first])
        let ovr = try Dataset(path: first).readBytes(PixelWindow(x: 0, y: 0, width: 700, height: 350))
        try? FileManager.default.removeItem(atPath: first)
        let wrong = (0..<(700 * 350)).filter { ovr[$0] != mode(2 * ($0 % 700), 2 * ($0 / 700)) }.count
        #expect(wrong == 0, "\(wrong) first-level pixels are not their 2 × 2 block's value")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix("piece") }
        #expect(Set(left) == ["labels.tif", "labels.tif.aux.xml"], "left: \(left)")
    }

    @Test func failedOutputLeavesNothing() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            let output = try StagedOutput(directory: dir.path)
            let writer = try RasterWriter(path: output.stagingPath("x.tif"), spec: RasterSpec(width: 64, height: 64))
            try writer.close()
            // no commit: simulated failure
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    static let formats: [(String, VectorFormat)] = [("out.gpkg", .geopackage), ("out.shp", .shapefile),
                                                    ("out.geojson", .geojson)]

    /// Vector files open in ogrinfo with the right CRS, fields and feature count.
    @Test(arguments: formats)
    func vectorFileOpensInOgrinfo(_ name: String, _ format: VectorFormat) throws {
        #expect(VectorFormat(path: name) == format)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = try StagedOutput(directory: dir.path)
        let writer = try VectorWriter(path: output.stagingPath(name), format: format)
        let crs = try SpatialReference(epsg: 32618)
        let layer = try writer.createLayer(
            name: "regions", spatialReference: crs, geometry: .multiPolygon,
            fields: [VectorField("class_id", .integer), VectorField("class_name", .string), VectorField("area_m2", .real)])
        writer.beginTransaction()
        try layer.add(wkt: "MULTIPOLYGON (((500000 4000000, 500100 4000000, 500100 4000100, 500000 4000000)))",
                      values: [.integer(1), .string("tree"), .real(5000)])
        try layer.add(wkt: "MULTIPOLYGON (((500200 4000000, 500300 4000000, 500300 4000100, 500200 4000000)),"
                           + " ((500400 4000000, 500500 4000000, 500500 4000100, 500400 4000000)))",
                      values: [.integer(2), .string("bâtiment"), .real(10000)])
        try writer.commitTransaction()
        try writer.close()
        try output.commit(primaries: [name])
        let path = output.finalPath(name)
        if format == .shapefile {
            for ext in ["prj", "cpg", "dbf", "shx"] {
                #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out.\(ext)").path))
            }
            let cpg = try String(contentsOf: dir.appendingPathComponent("out.cpg"), encoding: .utf8)
            #expect(cpg.contains("UTF-8"))
        }
        let result = try Tool.run("ogrinfo", ["-ro", "-so", "-al", path])
        try #require(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Feature Count: 2"))
        #expect(result.stdout.contains("ID[\"EPSG\",32618]") || result.stdout.contains("UTM zone 18N"))
        #expect(result.stdout.contains("class_id: Integer"))  // Integer64 (GPKG, SHP) or Integer (GeoJSON)
        #expect(result.stdout.contains("class_name: String"))
        #expect(result.stdout.contains("area_m2: Real"))
        let features = try Tool.run("ogrinfo", ["-ro", "-al", path])
        #expect(features.stdout.contains("bâtiment"))
    }
}
