import Foundation
import Testing
import TestSupport

/// The built `aerialseg` binary, run on real files.
@Suite struct InfoCommandTests {
    @Test func jsonAgreesWithGdalinfo() throws {
        let path = Fixtures.local("rasters/rgb1.tif").path
        let result = try Tool.run(Tool.aerialseg, ["info", "--json", path])
        try #require(result.status == 0, "\(result.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let info = try #require(parsed.first)
        let oracle = try Tool.gdalinfoJSON(path)
        #expect([info["width"] as? Int, info["height"] as? Int] == (oracle["size"] as! [Int]).map { Optional($0) })
        #expect(info["bandCount"] as? Int == 3)
        let crs = try #require(info["crs"] as? [String: Any])
        #expect(crs["epsg"] as? Int == (oracle["stac"] as! [String: Any])["proj:epsg"] as? Int)
        let bands = try #require(info["bands"] as? [[String: Any]])
        #expect(bands.map { $0["noDataValue"] as? Double } == [0, 0, 0])
        #expect(bands.map { $0["dataType"] as? String } == ["Byte", "Byte", "Byte"])
    }

    @Test func humanTable() throws {
        let result = try Tool.run(Tool.aerialseg, ["info", Fixtures.local("rasters/ortho_10cm.tif").path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("2048 × 2048 px, 3 bands"))
        #expect(result.stdout.contains("EPSG:3395"))
    }

    /// Each bad input: one line `aerialseg: error: <file>: <what> (<hint>)`, exit code 2, no trace.
    @Test(arguments: ["missing", "text", "truncated", "empty"])
    func badInputGivesOneClearLine(_ kind: String) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("\(kind).tif").path
        switch kind {
        case "text": try "hello".write(toFile: path, atomically: true, encoding: .utf8)
        case "truncated":
            let data = try Data(contentsOf: Fixtures.local("rasters/rgb1.tif"))
            try data.prefix(200).write(to: URL(fileURLWithPath: path))
        case "empty": FileManager.default.createFile(atPath: path, contents: Data())
        default: break
        }
        let result = try Tool.run(Tool.aerialseg, ["info", path])
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("aerialseg: error: \(path): "))
        #expect(result.stderr.contains("(") && result.stderr.hasSuffix(")\n"), "a hint in parentheses")
    }

    /// One bad file among good ones: the good ones are still reported, the exit code says something failed.
    @Test func goodAndBadFiles() throws {
        let good = Fixtures.local("rasters/canopy_mask.tif").path
        let result = try Tool.run(Tool.aerialseg, ["info", good, "/nonexistent.tif"])
        #expect(result.status == 2)
        #expect(result.stdout.contains(good))
        #expect(result.stderr.contains("/nonexistent.tif: no such file"))
    }
}
