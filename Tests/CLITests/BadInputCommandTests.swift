import Foundation
import Testing
import TestSupport

/// Bad input as a user meets it (the README's "Bad input" table): each case gets one capped line on
/// stderr naming the file or option, the documented exit code, no backtrace and no raw GDAL line,
/// and nothing is computed first.
@Suite struct BadInputCommandTests {
    static let pipeline = Fixtures.packageRoot.appendingPathComponent(
        "Pipelines/deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.yaml").path
    static let rasters = Fixtures.local("rasters")
    static let rgb = rasters.appendingPathComponent("rgb1.tif").path
    static let mask = rasters.appendingPathComponent("canopy_mask.tif").path
    static let ortho = rasters.appendingPathComponent("ortho_10cm.tif").path

    /// One bad input: the arguments (with `DIR` for a scratch folder), the exit code and what the
    /// error line must say.
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let arguments: [String]
        let status: Int32
        let says: [String]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "num_classes 100000 in a pipeline", arguments: ["bench", "DIR/classes.yaml", "--size", "64"],
             status: 2, says: ["classes.yaml: decode_head.num_classes 100000 is more than 255"]),
        Case(name: "bench --size 100000", arguments: ["bench", pipeline, "--size", "100000", "--runs", "1"],
             status: 2, says: ["--size 100000: a 100000 × 100000 tile", "needs 38 TiB", "memory budget"]),
        Case(name: "evaluate --num-classes 100000", arguments: ["evaluate", mask, mask, "--num-classes", "100000"],
             status: 2, says: ["--num-classes: class count 100000 is more than 1024", "75 GiB"]),
        Case(name: "tile --size 100000",
             arguments: ["tile", rgb, "--labels", mask, "--size", "100000", "--stride", "100000", "--output", "DIR/t"],
             status: 2, says: ["--size: crop size 100000 is more than 8192", "186 GiB"]),
        Case(name: "run --crop 16384 on a 16384² raster",
             arguments: ["run", pipeline, "--random-weights", "--input", "DIR/huge.vrt", "--output", "DIR/o",
                         "--crop", "16384"],
             status: 2, says: ["--crop 16384: a 16384 × 16384 tile through the model", "memory budget"]),
        Case(name: "rotated geotransform",
             arguments: ["run", pipeline, "--random-weights", "--input", "DIR/rotated.vrt", "--output", "DIR/o"],
             status: 1, says: ["rotated.vrt: its geotransform", "is rotated or sheared", "gdalwarp"]),
        Case(name: "south-up geotransform",
             arguments: ["run", pipeline, "--random-weights", "--input", "DIR/south.vrt", "--output", "DIR/o"],
             status: 1, says: ["south.vrt: its geotransform", "is south-up"]),
        Case(name: "zero pixel size",
             arguments: ["run", pipeline, "--random-weights", "--input", "DIR/zero.vrt", "--output", "DIR/o"],
             status: 1, says: ["zero.vrt: its geotransform", "zero pixel size"]),
        Case(name: "VRT with a missing source (run)",
             arguments: ["run", pipeline, "--random-weights", "--input", "DIR/broken.vrt", "--output", "DIR/o"],
             status: 1, says: ["broken.vrt: ", "missing.tif: No such file or directory"]),
        Case(name: "VRT with a missing source (info)", arguments: ["info", "DIR/broken.vrt"],
             status: 2, says: ["broken.vrt: ", "missing.tif: No such file or directory"]),
        Case(name: "self-referencing VRT (info)", arguments: ["info", "DIR/self.vrt"],
             status: 2, says: ["self.vrt: "]),
        Case(name: "output folder under a file (run)",
             arguments: ["run", pipeline, "--random-weights", "--input", rgb, "--output", "DIR/file/out"],
             status: 2, says: ["file/out: cannot create the output folder:", "is a file"]),
        Case(name: "output folder is a file (tile)",
             arguments: ["tile", ortho, "--labels", mask, "--size", "64", "--stride", "64", "--output", "DIR/file"],
             status: 2, says: ["file: not a folder"]),
        Case(name: "output folder under a file (vectorize)", arguments: ["vectorize", mask, "DIR/file/v.gpkg"],
             status: 2, says: ["file: not a folder"]),
        Case(name: "100,000-deep YAML", arguments: ["bench", "DIR/deep.yaml"],
             status: 2, says: ["deep.yaml: malformed YAML", "characters left out"]),
        Case(name: "50 MB pipeline", arguments: ["bench", "DIR/huge.yaml"],
             status: 2, says: ["huge.yaml: size in bytes 52428800 is more than 1048576"]),
        Case(name: "unknown backbone depth", arguments: ["bench", "DIR/depth.yaml", "--size", "64"],
             status: 2, says: ["depth.yaml: model: backbone depth 19 is not one of 18, 34, 50, 101, 152"]),
        Case(name: "evaluate with no valid pixel", arguments: ["evaluate", mask, mask, "--truth-map", "7=1"],
             status: 1, says: ["canopy_mask.tif: no valid truth pixels to evaluate"]),
    ]

    @Test(arguments: cases)
    func badInputGetsOneLine(_ c: Case) throws {
        let dir = try Self.scratch(hugeYAML: c.arguments.contains("DIR/huge.yaml"))
        defer { try? FileManager.default.removeItem(at: dir) }
        let arguments = c.arguments.map { $0.replacingOccurrences(of: "DIR", with: dir.path) }
        let started = ContinuousClock.now
        let result = try Tool.run(Tool.aerialseg, arguments)
        let lines = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("aerialseg: note:") }
        #expect(result.status == c.status, "\(result.stderr)")
        #expect(lines.count == 1, "\(result.stderr.prefix(2000))")
        let line = String(lines.first ?? "")
        #expect(line.hasPrefix("aerialseg: error: "))
        #expect(line.count <= 1100)
        for text in c.says { #expect(line.contains(text), "\(line.prefix(1200))") }
        #expect(!result.stderr.contains("ERROR ") && !result.stderr.contains("Fatal error"))
        #expect(!result.stdout.contains("windows"), "no inference ran: \(result.stdout)")
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    /// The bad files the cases name, in a fresh folder.
    static func scratch(hugeYAML: Bool) throws -> URL {
        let dir = Fixtures.temporaryDirectory("aerialseg-bad-input")
        func write(_ name: String, _ text: String) throws {
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let yaml = try String(contentsOfFile: pipeline, encoding: .utf8)
        try write("classes.yaml", yaml.replacingOccurrences(of: "num_classes: 6", with: "num_classes: 100000"))
        try write("depth.yaml", yaml.replacingOccurrences(of: "depth: 18", with: "depth: 19"))
        try write("deep.yaml", "model: " + String(repeating: "[", count: 100_000) + "\n")
        if hugeYAML { try write("huge.yaml", yaml + "# " + String(repeating: "x", count: 50 * 1024 * 1024 - yaml.utf8.count - 3)
                                       + "\n") }
        try write("file", "not a folder\n")
        for (name, transform) in [("rotated", "0,1,0.1,100,0.1,-1"), ("south", "0,1,0,0,0,1"),
                                  ("zero", "0,0,0,100,0,-1")] {
            let vrt = dir.appendingPathComponent("\(name).vrt").path
            let made = try Tool.run("gdal_translate", ["-q", "-of", "VRT", rgb, vrt])
            try #require(made.status == 0, "\(made.stderr)")
            let text = try String(contentsOfFile: vrt, encoding: .utf8)
            let replaced = text.replacingOccurrences(
                of: #"<GeoTransform>[^<]*</GeoTransform>"#, with: "<GeoTransform>\(transform)</GeoTransform>",
                options: .regularExpression)
            try write("\(name).vrt", replaced)
        }
        let huge = try Tool.run("gdal_translate", ["-q", "-of", "VRT", "-outsize", "16384", "16384", rgb,
                                                   dir.appendingPathComponent("huge.vrt").path])
        try #require(huge.status == 0, "\(huge.stderr)")
        // A georeferenced 3-band mosaic whose source is missing, and one that reads itself.
        func vrt(_ source: String) -> String {
            let bands = (1...3).map {
                "<VRTRasterBand dataType=\"Byte\" band=\"\($0)\"><SimpleSource><SourceFilename relativeToVRT=\"1\">"
                    + "\(source)</SourceFilename><SourceBand>\($0)</SourceBand></SimpleSource></VRTRasterBand>"
            }
            return "<VRTDataset rasterXSize=\"100\" rasterYSize=\"100\"><SRS>EPSG:32618</SRS>"
                + "<GeoTransform>500000,1,0,4000000,0,-1</GeoTransform>\(bands.joined())</VRTDataset>\n"
        }
        try write("broken.vrt", vrt("missing.tif"))
        try write("self.vrt", vrt("self.vrt"))
        return dir
    }
}
