import Foundation
import GeoIO
import Testing
import TestSupport

/// `<stem>.preview.png`: the orthophoto with class colours over it (default), or class colours
/// alone; nodata transparent; a legend strip with the palette below the image.
@Suite(.serialized) struct PreviewTests {
    let fixture = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")
    let palette = [[255, 255, 255], [0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]]

    /// The small fixture model with vectors excluding class `uncoloured` (the "background").
    func pipeline(in dir: URL, uncoloured: Int) throws -> String {
        let oracle = try OracleFixture.small()
        return try oracle.writePipeline(in: dir, crop: 128, stride: 96, checkpoint: oracle.checkpoint,
                                        extra: ["palette: \(palette)", "vectors: {exclude: [\(uncoloured)]}"])
    }

    func read(_ path: String) throws -> (bands: [[UInt8]], width: Int, height: Int) {
        let ds = try Dataset(path: path)
        let window = PixelWindow(x: 0, y: 0, width: ds.width, height: ds.height)
        return (try (1...ds.bandCount).map { try ds.readBytes(window, band: $0) }, ds.width, ds.height)
    }

    @Test("overlay: ortho ⊕ palette at ½ opacity, uncoloured background, nodata transparent, legend")
    func overlay() throws {
        let dir = Fixtures.temporaryDirectory("preview-overlay")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = Fixtures.local("rasters/rgb1.tif").path  // 400², nodata 0 collar
        let out = dir.appendingPathComponent("out").path
        // Which class is the most frequent one? Make it the uncoloured background.
        let first = try Tool.run(Tool.aerialseg, ["run", try pipeline(in: dir, uncoloured: 255), "--input", input,
                                                  "--output", out, "--quiet"])
        try #require(first.status == 0, "\(first.stderr)")
        let whole = PixelWindow(x: 0, y: 0, width: 400, height: 400)
        var counts = [Int](repeating: 0, count: 256)
        for id in try Dataset(path: out + "/rgb1.labels.tif").readBytes(whole) { counts[Int(id)] += 1 }
        let background = (0..<6).max { counts[$0] < counts[$1] }!
        try FileManager.default.removeItem(atPath: out)
        let run = try Tool.run(Tool.aerialseg, ["run", try pipeline(in: dir, uncoloured: background), "--input", input,
                                                "--output", out, "--quiet"])
        try #require(run.status == 0, "\(run.stderr)")

        let labels = try Dataset(path: out + "/rgb1.labels.tif").readBytes(whole)
        let ortho = try read(input)
        let preview = try read(out + "/rgb1.preview.png")
        #expect(preview.bands.count == 4, "RGBA")
        #expect(preview.width == 400 && preview.height > 400 && preview.height < 500, "image, then a legend strip")
        var coloured = 0, transparent = 0
        for i in 0..<(400 * 400) {
            let id = Int(labels[i])
            if id == 255 {
                #expect(preview.bands[3][i] == 0)
                transparent += 1
                continue
            }
            #expect(preview.bands[3][i] == 255)
            for c in 0..<3 {
                let base = Double(ortho.bands[c][i])
                let expected = id == background ? base : (base * 0.5 + Double(palette[id][c]) * 0.5).rounded()
                #expect(Double(preview.bands[c][i]) == expected, "pixel \(i) class \(id)")
            }
            if id != background { coloured += 1 }
        }
        #expect(transparent > 1000 && coloured > 1000, "the collar is nodata and some pixels are coloured")
        // The legend lists the coloured classes with their exact palette colours, not the background.
        let legendColours = Set((400 * 400..<preview.width * preview.height).map { i in
            [Int(preview.bands[0][i]), Int(preview.bands[1][i]), Int(preview.bands[2][i])]
        })
        for id in 0..<6 { #expect(legendColours.contains(palette[id]) == (id != background), "class \(id)") }
        #expect((400 * 400..<preview.width * preview.height).allSatisfy { preview.bands[3][$0] == 255 })
    }

    @Test("--preview labels: palette colours; --preview none: no file")
    func labelsAndNone() throws {
        let dir = Fixtures.temporaryDirectory("preview-labels")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = Fixtures.local("rasters/rgb1.tif").path
        let out = dir.appendingPathComponent("out").path
        let run = try Tool.run(Tool.aerialseg, ["run", try pipeline(in: dir, uncoloured: 0), "--input", input,
                                                "--output", out, "--preview", "labels", "--quiet"])
        try #require(run.status == 0, "\(run.stderr)")
        let labels = try Dataset(path: out + "/rgb1.labels.tif").readBytes(PixelWindow(x: 0, y: 0, width: 400, height: 400))
        let preview = try read(out + "/rgb1.preview.png")
        for i in stride(from: 0, to: 400 * 400, by: 7) {
            let id = Int(labels[i])
            if id == 255 { #expect(preview.bands[3][i] == 0); continue }
            #expect((0..<3).map { Int(preview.bands[$0][i]) } == palette[id])
        }
        let none = dir.appendingPathComponent("none").path
        let quiet = try Tool.run(Tool.aerialseg, ["run", try pipeline(in: dir, uncoloured: 0), "--input", input,
                                                  "--output", none, "--preview", "none", "--quiet"])
        try #require(quiet.status == 0, "\(quiet.stderr)")
        #expect(!FileManager.default.fileExists(atPath: none + "/rgb1.preview.png"))
        #expect(FileManager.default.fileExists(atPath: none + "/rgb1.labels.tif"))
    }

    @Test("a large image's preview fits 2048 pixels, legend included")
    func largeImageFits() throws {
        let dir = Fixtures.temporaryDirectory("preview-large")
        defer { try? FileManager.default.removeItem(at: dir) }
        // 4096 × 600 of the orthophoto (a VRT upsampled ×2 in x), cheap with crop 600.
        let input = dir.appendingPathComponent("wide.vrt").path
        let cut = try Tool.run("gdal_translate", ["-q", "-of", "VRT", "-outsize", "4096", "600", "-srcwin", "0", "1448",
                                                  "2048", "600", Fixtures.local("rasters/ortho_10cm.tif").path, input])
        try #require(cut.status == 0, "\(cut.stderr)")
        let out = dir.appendingPathComponent("out").path
        let run = try Tool.run(Tool.aerialseg, ["run", try pipeline(in: dir, uncoloured: 0), "--input", input,
                                                "--output", out, "--crop", "600", "--stride", "600", "--quiet"])
        try #require(run.status == 0, "\(run.stderr)")
        let info = try Tool.gdalinfoJSON(out + "/wide.preview.png")
        let size = info["size"] as! [Int]
        #expect(size[0] == 2048 && size[1] > 300 && size[1] <= 2048, "\(size)")
    }
}
