import Foundation
import GeoIO
import Testing
import TestSupport

/// Polygonizing in strips gives the polygons of one whole-image `gdal_polygonize.py` (the oracle):
/// same count, same classes, same per-polygon and per-class areas.
@Suite struct StripPolygonizeTests {
    /// Writes what `polygonizer` finds in band 1 of `raster` to a GeoPackage layer "ours"; checks on
    /// the way that each region's pixel count times the pixel area is its geometry's area.
    func polygonize(_ raster: String, to path: String, _ polygonizer: StripPolygonizer,
                    validity: String? = nil) throws -> (count: Int, badAreas: Int) {
        let source = try Dataset(path: raster)
        let mask = try validity.map { try Dataset(path: $0).band(1) }
        let c = (source.geoTransform ?? .identity).coefficients
        let pixelArea = abs(c[1] * c[5] - c[2] * c[4])
        let writer = try VectorWriter(path: path, format: .geopackage)
        let layer = try writer.createLayer(name: "ours", spatialReference: source.spatialReference,
                                           geometry: .unknown, fields: [VectorField("class", .integer)])
        writer.beginTransaction()
        var badAreas = 0
        let count = try polygonizer.polygonize(source.band(1), validity: mask) { region in
            let area = Double(region.pixelCount) * pixelArea
            // Shoelace in map coordinates (~1e6) loses ~1e-9 of a pixel's area; allow 1e-6 of it.
            if abs(region.geometry.area - area) > 1e-9 * area + 1e-6 * pixelArea { badAreas += 1 }
            try layer.add(region.geometry, values: [.integer(region.value)])
        }
        try writer.commitTransaction()
        try writer.close()
        return (count, badAreas)
    }

    /// The whole-image oracle: `gdal_polygonize.py` (uses the band's mask, like us).
    func oracle(_ raster: String, to path: String, connectivity: Connectivity) throws {
        var args = ["-q", raster, "-f", "GPKG", path, "oracle", "DN"]
        if connectivity == .eight { args.insert("-8", at: 0) }
        let r = try Tool.run("gdal_polygonize.py", args)
        try #require(r.status == 0, "\(r.stderr)")
    }

    /// Same polygon set: count, classes, per-class area and every polygon's area (sorted by class, area).
    func expectSame(_ actual: [(Int, Double)], _ expected: [(Int, Double)], _ label: String) {
        #expect(actual.count == expected.count, "\(label): polygon count")
        let sortedA = actual.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        let sortedE = expected.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        let tolerance = 1e-6 * (sortedE.map(\.1).min() ?? 0)  // shoelace rounding in map coordinates
        let mismatches = zip(sortedA, sortedE)
            .filter { a, e in a.0 != e.0 || abs(a.1 - e.1) > 1e-9 * e.1 + tolerance }.count
        #expect(mismatches == 0, "\(label): \(mismatches) polygons differ in class or area")
        for value in Set(expected.map(\.0)) {
            let ea = expected.filter { $0.0 == value }.map(\.1).reduce(0, +)
            let aa = actual.filter { $0.0 == value }.map(\.1).reduce(0, +)
            #expect(abs(ea - aa) <= 1e-9 * ea, "\(label): class \(value) area")
        }
    }

    func compare(_ raster: String, connectivity: Connectivity, stripHeights: [Int], excluded: [Int] = [],
                 validity: String? = nil, minimumPolygons: Int = 2) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let oraclePath = dir.appendingPathComponent("oracle.gpkg").path
        try oracle(raster, to: oraclePath, connectivity: connectivity)
        let expected = try PolygonizeTests().classAreas(oraclePath, layer: "oracle", field: "DN", dir: dir)
            .filter { !excluded.contains($0.0) }
        #expect(expected.count >= minimumPolygons)
        for rows in stripHeights {
            let path = dir.appendingPathComponent("ours-\(rows).gpkg").path
            let polygonizer = StripPolygonizer(connectivity: connectivity, excludedValues: excluded, stripHeight: rows)
            let result = try polygonize(raster, to: path, polygonizer, validity: validity)
            #expect(result.badAreas == 0, "pixel count × pixel area = geometry area")
            let actual = try PolygonizeTests().classAreas(path, layer: "ours", field: "class", dir: dir)
            #expect(result.count == actual.count)
            expectSame(actual, expected, "\((raster as NSString).lastPathComponent) \(connectivity) \(rows) rows")
        }
    }

    @Test(.enabled(if: Fixtures.hasShared("data/oam-tcd/canopy_mask.tif"), "needs ../shared/data/oam-tcd/canopy_mask.tif"), arguments: [Connectivity.four, .eight])
    func canopyMaskInStripsMatchesGdalPolygonize(_ connectivity: Connectivity) throws {
        let mask = try Fixtures.requireShared("data/oam-tcd/canopy_mask.tif")
        try compare(mask.path, connectivity: connectivity, stripHeights: [64, 7, 4096], minimumPolygons: 40)
    }

    /// The committed copy of the canopy mask: runs even without ../shared.
    @Test(arguments: [Connectivity.four, .eight])
    func localCanopyMaskInStripsMatchesGdalPolygonize(_ connectivity: Connectivity) throws {
        try compare(Fixtures.local("rasters/canopy_mask.tif").path, connectivity: connectivity, stripHeights: [64, 1],
                    minimumPolygons: 40)
    }

    @Test(.enabled(if: Fixtures.hasShared("data/spacenet-roads/road_mask.tif"), "needs ../shared/data/spacenet-roads/road_mask.tif"), arguments: [Connectivity.four, .eight])
    func roadMaskInStripsMatchesGdalPolygonize(_ connectivity: Connectivity) throws {
        let mask = try Fixtures.requireShared("data/spacenet-roads/road_mask.tif")
        try compare(mask.path, connectivity: connectivity, stripHeights: [64, 5])
    }

    /// Excluded values are simply left out; nothing else changes.
    @Test func excludedValuesAreLeftOut() throws {
        try compare(Fixtures.local("rasters/canopy_mask.tif").path, connectivity: .four, stripHeights: [64],
                    excluded: [0], minimumPolygons: 20)
    }

    /// Nodata (via the band's mask) never becomes a polygon and does not join regions: same as the oracle,
    /// which also honours the mask.
    @Test(arguments: [Connectivity.four, .eight])
    func nodataNeverBecomesAPolygon(_ connectivity: Connectivity) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let masked = dir.appendingPathComponent("masked.tif").path
        let r = try Tool.run("gdal_translate", ["-q", "-a_nodata", "0", Fixtures.local("rasters/canopy_mask.tif").path,
                                                masked])
        try #require(r.status == 0, "\(r.stderr)")
        try compare(masked, connectivity: connectivity, stripHeights: [64, 3], minimumPolygons: 20)
    }

    /// Random labels (3 values, 40 × 37 pixels, many U-shapes closing and regions splitting across
    /// strips) with strips of 1, 2, 3 and 5 rows, against the whole-image oracle.
    @Test(arguments: [Connectivity.four, .eight])
    func randomLabelsInTinyStripsMatchGdalPolygonize(_ connectivity: Connectivity) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("random.tif").path
        let (w, h) = (40, 37)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let labels = (0..<(w * h)).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let r = Int(state >> 33) % 10
            return r < 5 ? 0 : r < 8 ? 1 : 2
        }
        var spec = RasterSpec(width: w, height: h)
        spec.geoTransform = GeoTransform([500_000, 0.5, 0, 4_000_000, 0, -0.5])
        spec.crsWKT = try SpatialReference(epsg: 32618).wkt
        spec.blockSize = 16
        let writer = try RasterWriter(path: path, spec: spec)
        try labels.withUnsafeBufferPointer { try writer.write(PixelWindow(x: 0, y: 0, width: w, height: h), bytes: $0) }
        try writer.close()
        try compare(path, connectivity: connectivity, stripHeights: [1, 2, 3, 5], minimumPolygons: 50)
    }

    /// Corner-connected regions in linear time: a 2048² checkerboard of 4-pixel squares is two
    /// 8-connected regions of 131 072 squares each. Unioning all their pieces took 128 s and 970 MB
    /// (debug build; `gdal_polygonize -8` 4.9 s, 185 MB); gathering the squares takes ~6 s, 340 MB.
    /// Same polygons and areas as the oracle, in strips of 256 rows (regions continue across strips).
    @Test func cornerConnectedCheckerboardIsFast() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("checkerboard.tif").path
        let n = 2048
        let labels = (0..<(n * n)).map { i in UInt8((i % n / 4 + i / n / 4) % 2) }
        var spec = RasterSpec(width: n, height: n)
        spec.geoTransform = GeoTransform([500_000, 0.5, 0, 4_000_000, 0, -0.5])
        spec.crsWKT = try SpatialReference(epsg: 32618).wkt
        let writer = try RasterWriter(path: path, spec: spec)
        try labels.withUnsafeBufferPointer { try writer.write(PixelWindow(x: 0, y: 0, width: n, height: n), bytes: $0) }
        try writer.close()
        let start = ContinuousClock.now
        var parts = 0
        let count = try StripPolygonizer(connectivity: .eight, stripHeight: 256).polygonize(
            try Dataset(path: path).band(1)) { region in
            #expect(region.pixelCount == n * n / 2 && region.geometry.isMultiPolygon)
            parts += 1
        }
        let elapsed = ContinuousClock.now - start
        #expect(count == 2 && parts == 2)
        #expect(elapsed < .seconds(40), "\(elapsed): the corner joins are quadratic again")
        try compare(path, connectivity: .eight, stripHeights: [256])
    }

    /// Sieving: no region under the threshold remains (every region has a valid neighbour here), the
    /// total area is unchanged, and the raster equals `gdal_sieve.py`'s.
    @Test(arguments: [Connectivity.four, .eight])
    func sieveRemovesSmallRegions(_ connectivity: Connectivity) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = Fixtures.local("rasters/canopy_mask.tif").path
        let sievedPath = dir.appendingPathComponent("sieved.tif").path
        let threshold = 400
        try Dataset(path: source).band(1).sieve(to: sievedPath, minimumPixels: threshold, connectivity: connectivity)

        var before: [Int] = [], after: [Int] = []
        let polygonizer = StripPolygonizer(connectivity: connectivity, stripHeight: 64)
        try polygonizer.polygonize(try Dataset(path: source).band(1)) { before.append($0.pixelCount) }
        try polygonizer.polygonize(try Dataset(path: sievedPath).band(1)) { after.append($0.pixelCount) }
        #expect(before.contains { $0 < threshold }, "the test must have something to sieve")
        #expect(!after.isEmpty && after.allSatisfy { $0 >= threshold })
        #expect(after.reduce(0, +) == before.reduce(0, +))
        let info = try Tool.gdalinfoJSON(sievedPath)
        #expect(info["geoTransform"] as? [Double] == (try Tool.gdalinfoJSON(source))["geoTransform"] as? [Double])

        let oraclePath = dir.appendingPathComponent("oracle.tif").path
        var args = ["-q", "-st", "\(threshold)", source, oraclePath]
        if connectivity == .eight { args.insert("-8", at: 0) }
        let r = try Tool.run("gdal_sieve.py", args)
        guard r.status == 0 else {
            print("skipped: gdal_sieve.py comparison: \(r.stderr)")
            return
        }
        func checksum(_ path: String) throws -> Int? {
            ((try Tool.gdalinfoJSON(path, ["-checksum"])["bands"] as? [[String: Any]])?.first)?["checksum"] as? Int
        }
        #expect(try checksum(sievedPath) == checksum(oraclePath))
    }

    @Test func floatRasterIsRejected() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("float.tif").path
        let r = try Tool.run("gdal_translate", ["-q", "-ot", "Float32", Fixtures.local("rasters/canopy_mask.tif").path,
                                                path])
        try #require(r.status == 0)
        #expect { try StripPolygonizer().polygonize(try Dataset(path: path).band(1)) { _ in } } throws: { error in
            "\(error)".contains("Float32") && "\(error)".hasPrefix(path)
        }
    }
}
