import Foundation
import Testing
import TestSupport

/// `aerialseg run` as a user runs it: real files in, GDAL-checked files out, bad input.
@Suite(.serialized) struct RunCommandTests {
    let fixture = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")

    /// A pipeline with the small fixture model (1/16 widths) so the tests run fast.
    func smallPipeline(in dir: URL, crop: Int = 64, stride: Int = 48) throws -> String {
        try OracleFixture(folder: fixture).writePipeline(in: dir, crop: crop, stride: stride)
    }

    var checkpoint: String { fixture.appendingPathComponent("checkpoint.pth").path }

    /// Outputs have the input's size, CRS and geotransform (per gdalinfo), and are what they claim to be.
    @Test(arguments: ["rasters/rgb1.tif", "rasters/test_tiled.tif"])
    func outputsAreGeoreferencedLikeTheInput(_ name: String) throws {
        try checkGeoreferencedOutputs(Fixtures.local(name).path, name: name)
    }

    @Test(.enabled(if: Fixtures.hasShared("data"), "needs ../shared/data"),
          arguments: ["data/spacenet-roads/pan_uint16.tif", "data/naip/naip_rgbn_2020.tif"])
    func sharedOutputsAreGeoreferencedLikeTheInput(_ name: String) throws {
        try checkGeoreferencedOutputs(try Fixtures.requireShared(name).path, name: name)
    }

    func checkGeoreferencedOutputs(_ input: String, name: String) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-run")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bands = name.contains("pan_uint16") ? "1,1,1" : "1,2,3"
        let out = dir.appendingPathComponent("out").path
        let result = try Tool.run(Tool.aerialseg, ["run", try smallPipeline(in: dir, crop: 256, stride: 192),
                                                   "--input", input, "--output", out, "--checkpoint", checkpoint,
                                                   "--bands", bands, "--quiet"])
        try #require(result.status == 0, "\(result.stderr)")
        let stem = ((input as NSString).lastPathComponent as NSString).deletingPathExtension
        let source = try Tool.gdalinfoJSON(input)
        for suffix in ["labels.tif", "confidence.tif"] {
            let info = try Tool.gdalinfoJSON("\(out)/\(stem).\(suffix)")
            #expect((info["size"] as! [Int]) == (source["size"] as! [Int]))
            let gt = info["geoTransform"] as! [Double], sgt = source["geoTransform"] as! [Double]
            for (a, b) in zip(gt, sgt) { #expect(abs(a - b) <= 1e-9 * max(1, abs(b))) }
            #expect((info["stac"] as? [String: Any])?["proj:epsg"] as? Int
                    == (source["stac"] as? [String: Any])?["proj:epsg"] as? Int)
            let structure = (info["metadata"] as! [String: Any])["IMAGE_STRUCTURE"] as! [String: String]
            #expect(structure["LAYOUT"] == "COG")
        }
        let labels = try Tool.gdalinfoJSON("\(out)/\(stem).labels.tif")
        let band = (labels["bands"] as! [[String: Any]])[0]
        #expect(band["noDataValue"] as? Double == 255)
        #expect((band["categories"] as? [String])?.count == 6)
        #expect(band["colorTable"] != nil)
        #expect(FileManager.default.fileExists(atPath: "\(out)/\(stem).preview.png"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "no staging or work folder left: \(leftovers)")
        if name == "rasters/rgb1.tif" {
            // The nodata collar (all bands 0) becomes label 255; every other pixel gets a class.
            func raw(_ path: String, _ bandArgs: [String]) throws -> [UInt8] {
                let out = dir.appendingPathComponent(UUID().uuidString + ".raw").path
                let r = try Tool.run("gdal_translate", ["-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ"] + bandArgs + [path, out])
                try #require(r.status == 0, "\(r.stderr)")
                return [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
            }
            let pixels = try raw(input, ["-b", "1", "-b", "2", "-b", "3"])
            let labels = try raw("\(out)/\(stem).labels.tif", [])
            let n = labels.count
            var collar = 0, wrong = 0
            for p in 0..<n {
                let isCollar = pixels[p] == 0 && pixels[n + p] == 0 && pixels[2 * n + p] == 0
                if isCollar { collar += 1 }
                if isCollar != (labels[p] == 255) { wrong += 1 }
            }
            #expect(collar > 1000, "rgb1 has a nodata collar")
            #expect(wrong == 0)
        }
    }

    // kill -9 and resume: ResumeTests (a real SIGKILL at a known band, by the test hook).

    /// Bad inputs: one clear line each; the good input among them still succeeds; exit code 1.
    @Test func badInputsDoNotStopTheOthers() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let noGeo = dir.appendingPathComponent("nogeo.tif").path
        _ = try Tool.run("gdal_translate", ["-q", "-of", "GTiff", "-co", "PROFILE=BASELINE",
                                            Fixtures.local("rasters/rgb1.tif").path, noGeo])
        try? FileManager.default.removeItem(atPath: noGeo + ".aux.xml")
        let oneBand = Fixtures.local("rasters/canopy_mask.tif").path
        let truncated = dir.appendingPathComponent("cut.tif").path
        try Data(contentsOf: Fixtures.local("rasters/rgb1.tif")).prefix(60_000).write(to: URL(fileURLWithPath: truncated))
        let good = Fixtures.local("rasters/rgb1.tif").path
        let out = dir.appendingPathComponent("out").path
        let result = try Tool.run(Tool.aerialseg, ["run", try smallPipeline(in: dir, crop: 128, stride: 96), "--input",
                                                   noGeo, oneBand, truncated, "/nonexistent.tif", good,
                                                   "--output", out, "--checkpoint", checkpoint, "--quiet"])
        #expect(result.status == 1)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("aerialseg: error: ") }
        #expect(errors.count == 4, "\(result.stderr)")
        #expect(result.stderr.contains("\(noGeo): has no georeferencing"))
        #expect(result.stderr.contains("\(oneBand): has 1 band(s) but the pipeline reads bands [1, 2, 3]"))
        #expect(result.stderr.contains("\(truncated): "))
        #expect(result.stderr.contains("/nonexistent.tif: no such file"))
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Backtrace"))
        #expect(FileManager.default.fileExists(atPath: "\(out)/rgb1.labels.tif"))
        #expect(!FileManager.default.fileExists(atPath: "\(out)/cut.labels.tif"))
        #expect(result.stdout.contains("1 of 5 inputs done, 4 failed"))
    }

    @Test func checkpointThatDoesNotFitTheModel() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-misfit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = Fixtures.packageRoot
            .appendingPathComponent("Pipelines/fcn_r50-d8_4xb4-80k_ade20k-512x512.yaml").path
        let result = try Tool.run(Tool.aerialseg, ["run", pipeline, "--input", Fixtures.local("rasters/rgb1.tif").path,
                                                   "--output", dir.path, "--checkpoint", checkpoint])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("aerialseg: error: \(checkpoint): "), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}
