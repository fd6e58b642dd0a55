import Foundation
import GeoIO
import Testing
import TestSupport

/// Problems GeoIO finds up front: grids that cannot be mosaicked north-up, mosaics whose sources
/// cannot be read, output folders that cannot be used; each one clear line naming the file.
@Suite struct GridAndSourceTests {
    @Test(arguments: [
        ([0.0, 1, 0.1, 100, 0.1, -1], "rotated or sheared"), ([0.0, 1, 0, 0, 0, 1], "south-up"),
        ([0.0, 0, 0, 100, 0, -1], "zero pixel size"), ([0.0, -1, 0, 100, 0, -1], "east to west"),
        ([Double.nan, 1, 0, 100, 0, -1], "non-finite"),
    ])
    func unsupportedGrids(_ coefficients: [Double], _ reason: String) {
        #expect(GeoTransform(coefficients).unsupportedReason?.contains(reason) == true)
    }

    @Test func northUpGridsPass() throws {
        #expect(GeoTransform([500000, 0.1, 0, 4000000, 0, -0.1]).unsupportedReason == nil)
        try Dataset(path: Fixtures.local("rasters/rgb1.tif").path).requireNorthUpGrid()
    }

    /// A VRT whose source is missing opens (GDAL opens sources lazily) but fails `checkReadable`,
    /// with GDAL's reason on one line; a self-referencing one too.
    @Test(arguments: ["missing.tif", "self.vrt"])
    func unreadableSourcesFailUpFront(_ source: String) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-vrt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("self.vrt").path
        try """
            <VRTDataset rasterXSize="10" rasterYSize="10"><VRTRasterBand dataType="Byte" band="1"><SimpleSource>\
            <SourceFilename relativeToVRT="1">\(source)</SourceFilename><SourceBand>1</SourceBand></SimpleSource>\
            </VRTRasterBand></VRTDataset>
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let dataset = try Dataset(path: path)
        #expect { try dataset.checkReadable() } throws: { error in
            let e = error as! GeoIOError
            return e.code == .readFailed && e.path == path && !e.description.contains("\n")
                && (source != "missing.tif" || e.message.contains("missing.tif"))
        }
    }

    @Test func outputFolderUnderAFile() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-out")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("file").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: GeoIOError.self) { try StagedOutput.prepareDirectory(file) }
        #expect(throws: GeoIOError.self) { try StagedOutput.prepareDirectory(file + "/out") }
        #expect(throws: GeoIOError.self) { try StagedOutput.checkDirectory(file + "/out") }
        try StagedOutput.checkDirectory(dir.appendingPathComponent("new/out").path)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("new").path))
        try StagedOutput.prepareDirectory(dir.appendingPathComponent("new/out").path)
    }
}

/// GDAL setters' return codes are checked: a CRS GDAL refuses fails the write, naming the file,
/// instead of leaving a crop without its CRS.
@Suite struct SetterResultTests {
    @Test func refusedCRSFailsTheWrite() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-setter")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("crop.tif").path
        #expect {
            try writeSmallRaster(path: path, png: false, width: 4, height: 4, bands: 1, dataType: .byte,
                                 planes: [Float](repeating: 1, count: 16),
                                 geoTransform: GeoTransform([0, 1, 0, 4, 0, -1]), crsWKT: "not a CRS")
        } throws: { error in
            (error as? GeoIOError)?.path == path && "\(error)".contains("CRS") || "\(error)".contains("SRS")
        }
    }
}
