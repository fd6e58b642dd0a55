import Foundation
import GeoIO
import Pipeline
import Testing
import TestSupport
import Tiling

/// The real route — GeoTIFF in, GDAL window reads, model, stitcher, COGs out — against mmseg.
@Suite struct RunParityTests {
    static let sharedNames = ["fcn_r18_d8", "fcn_r50_d8", "dlv3_r101_d16_mg124", "dlv3p_r18_d8_potsdam",
                              "dlv3p_r18b_d8_v1b", "dlv3p_r50_d8_potsdam", "fastfcn_jpu_psp_r50_d32",
                              "fastfcn_jpu_aspp_r50_d32", "fastfcn_jpu_enc_r50_d32", "regseg_exp48_decoder26"]

    /// Runs `aerialseg run`'s job on the fixture image; returns (labels, confidence) read back.
    func run(_ fixture: OracleFixture, case caseName: String, crop: Int, stride: Int, tta: TTAMode,
             blockSize: BlockSize? = nil) throws -> (labels: [Float], confidence: [Float], width: Int, height: Int)
    {
        let dir = Fixtures.temporaryDirectory("aerialseg-parity")
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("image.tif").path
        let (w, h) = try fixture.writeGeoTIFF(caseName, to: image)
        let pipeline = dir.appendingPathComponent("model.yaml").path
        try fixture.writePipeline(to: pipeline, crop: crop, stride: stride)
        var options = RunOptions(pipeline: try PipelineConfig.load(path: pipeline),
                                 outputDirectory: dir.appendingPathComponent("out").path)
        options.checkpoint = fixture.folder.appendingPathComponent("weights.safetensors").path
        options.confidence = .float32
        options.tta = tta
        options.preview = .none
        options.blockSize = blockSize
        let job = try SegmentationJob(options: options)
        let result = try job.run(input: image)
        #expect(result.outputs.count == 2)
        let names = job.outputNames(for: image)
        let out = dir.appendingPathComponent("out")
        return (try readAll(out.appendingPathComponent(names.labels).path),
                try readAll(out.appendingPathComponent(names.confidence).path), w, h)
    }

    func compare(_ got: (labels: [Float], confidence: [Float]), expected stats: [(label: Int, probability: Float, margin: Float)]) {
        #expect(got.labels.count == stats.count)
        var labelMismatches = 0, worst: Float = 0
        for (p, s) in stats.enumerated() {
            if Int(got.labels[p]) != s.label && s.margin >= 1e-4 { labelMismatches += 1 }
            worst = max(worst, abs(got.confidence[p] - s.probability))
        }
        #expect(labelMismatches == 0)
        #expect(worst <= 1e-4, "max |confidence - softmax max| = \(worst)")
    }

    func slideParity(_ fixture: OracleFixture, _ caseName: String, blockSize: BlockSize? = nil) throws {
        let classes = try #require((fixture.json["num_classes"] as? Int))
        let got = try run(fixture, case: caseName, crop: 48, stride: 32, tta: .none, blockSize: blockSize)
        compare((got.labels, got.confidence), expected: softmaxStats(try fixture.floats(caseName, "logits_slide"),
                                                                      classes: classes))
    }

    @Test func localFixtureSlideParity() throws {
        try slideParity(try OracleFixture(folder: Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")), "64x64")
    }

    /// Mean blending keeps mmseg's slide parity when the image is cut into blocks, aligned to the
    /// stride or not.
    @Test(arguments: [(32, 32), (16, 64), (20, 13)])
    func localFixtureSlideParityInBlocks(_ width: Int, _ height: Int) throws {
        try slideParity(try OracleFixture(folder: Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")), "64x64",
                        blockSize: try BlockSize(width: width, height: height))
    }

    @Test(.enabled(if: Fixtures.hasShared("fixtures/mmseg"), "needs ../shared/fixtures/mmseg"), arguments: sharedNames, ["64x64", "96x80"])
    func sharedFixtureSlideParity(_ name: String, _ caseName: String) throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/\(name)")
        let fixture = try OracleFixture(folder: folder)
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(caseName)/logits_slide.bin").path)
        else {
            print("skipped: \(name) \(caseName) has no logits_slide")
            return
        }
        try slideParity(fixture, caseName)
    }

    /// Flip TTA with one window covering the image: mean of softmax(whole) and softmax(flip), as mmseg merges.
    @Test func localFixtureFlipParity() throws {
        let fixture = try OracleFixture(folder: Fixtures.local("mmseg/dlv3p_r18_d8_potsdam"))
        let classes = try #require(fixture.json["num_classes"] as? Int)
        let got = try run(fixture, case: "64x64", crop: 64, stride: 64, tta: .flip)
        let whole = try fixture.floats("64x64", "logits_whole"), flip = try fixture.floats("64x64", "logits_flip")
        let n = whole.count / classes
        var worst: Float = 0, mismatches = 0
        for p in 0..<n {
            var probability = [Float](repeating: 0, count: classes)
            for logits in [whole, flip] {
                let top = (0..<classes).map { logits[$0 * n + p] }.max()!
                let sum = (0..<classes).reduce(Float(0)) { $0 + expf(logits[$1 * n + p] - top) }
                for c in 0..<classes { probability[c] += expf(logits[c * n + p] - top) / sum / 2 }
            }
            let sorted = probability.sorted(by: >)
            let best = probability.firstIndex(of: sorted[0])!
            if Int(got.labels[p]) != best && sorted[0] - sorted[1] >= 1e-4 { mismatches += 1 }
            worst = max(worst, abs(got.confidence[p] - sorted[0]))
        }
        #expect(mismatches == 0)
        #expect(worst <= 1e-4)
    }

    /// 12-view multi-scale + flip TTA (whole-image windows, as the Potsdam config's test mode) vs
    /// mmseg's own `tta_mean_softmax` and `tta_pred`.
    @Test(.enabled(if: Fixtures.hasShared("fixtures/mmseg/dlv3p_r18_d8_potsdam"), "needs ../shared/fixtures/mmseg/dlv3p_r18_d8_potsdam"), arguments: ["64x64", "96x80"])
    func multiScaleFlipParity(_ caseName: String) throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/dlv3p_r18_d8_potsdam")
        let fixture = try OracleFixture(folder: folder)
        let classes = try #require(fixture.json["num_classes"] as? Int)
        let got = try run(fixture, case: caseName, crop: 512, stride: 341, tta: .msFlip)
        let mean = try fixture.floats(caseName, "tta_mean_softmax")
        let pred = try fixture.bytes(caseName, "tta_pred").withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        let n = mean.count / classes
        #expect(got.labels.count == n && pred.count == n)
        var worst: Float = 0, mismatches = 0
        for p in 0..<n {
            let column = (0..<classes).map { mean[$0 * n + p] }
            let sorted = column.sorted(by: >)
            worst = max(worst, abs(got.confidence[p] - sorted[0]))
            if Int32(got.labels[p]) != pred[p] && sorted[0] - sorted[1] >= 1e-4 { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(worst <= 1e-4, "max |confidence - mmseg mean softmax max| = \(worst)")
    }
}
