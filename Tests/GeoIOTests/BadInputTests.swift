import Foundation
import GeoIO
import Testing
import TestSupport

/// Bad input gives one clear `GeoIOError` (file, what, hint), never a crash or GDAL noise.
@Suite struct BadInputTests {
    let dir = Fixtures.temporaryDirectory("aerialseg-bad")

    @Test func missingFile() {
        #expect { try Dataset(path: "/nonexistent/ortho.tif") } throws: { error in
            let e = error as! GeoIOError
            return e.code == .fileNotFound && e.description.hasPrefix("/nonexistent/ortho.tif: no such file (")
        }
    }

    @Test func notARaster() throws {
        let path = dir.appendingPathComponent("notes.tif").path
        try "this is not an image\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try Dataset(path: path) } throws: { error in
            let e = error as! GeoIOError
            return e.code == .notARaster && e.path == path && !e.hint.isEmpty
        }
    }

    /// A TIFF cut short: GDAL may still open its header, but reading the missing part fails clearly.
    @Test(arguments: [0.02, 0.3, 0.6, 0.95])
    func truncatedTIFF(_ fraction: Double) throws {
        let source = Fixtures.local("rasters/rgb1.tif")
        let data = try Data(contentsOf: source)
        let path = dir.appendingPathComponent("cut-\(fraction).tif").path
        try data.prefix(Int(Double(data.count) * fraction)).write(to: URL(fileURLWithPath: path))
        do {
            let ds = try Dataset(path: path)
            var buffer = [Float](repeating: 0, count: ds.width * ds.height * ds.bandCount)
            try buffer.withUnsafeMutableBufferPointer {
                try ds.read(PixelWindow(x: 0, y: 0, width: ds.width, height: ds.height),
                            bands: Array(1...ds.bandCount), into: $0)
            }
            Issue.record("reading a truncated TIFF (\(fraction)) should fail")
        } catch let error as GeoIOError {
            #expect(error.code == .notARaster || error.code == .readFailed)
            #expect(error.path == path)
            #expect(!error.message.isEmpty && !error.description.contains("\n"))
        }
    }

    @Test func unwritableOutputFolder() throws {
        let file = dir.appendingPathComponent("plainfile").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        #expect { try StagedOutput(directory: file) } throws: { ($0 as! GeoIOError).code == .notWritable }
        #expect { try StagedOutput(directory: file + "/sub") } throws: { ($0 as! GeoIOError).code == .notWritable }
    }

    @Test func unsupportedFormatName() throws {
        #expect(VectorFormat(path: "out.kml") == nil)
        #expect { try VectorFormat(name: "kml") } throws: { error in
            let e = error as! GeoIOError
            return e.code == .unsupportedFormat && e.hint.contains("gpkg")
        }
        #expect(try VectorFormat(name: "shp") == .shapefile)
    }

    @Test func invalidCRS() {
        #expect { try SpatialReference(definition: "EPSG:99999999") } throws: { _ in true }
    }
}
