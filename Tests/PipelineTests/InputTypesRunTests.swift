import Foundation
import GeoIO
import Pipeline
import SegCore
import Testing
import TestSupport

/// `aerialseg run` on inputs beyond 8-bit RGB: 16-bit and float copies of an 8-bit orthophoto give
/// its labels once scaled back, 4-band rasters feed 4-channel models exactly as a plain-Swift
/// reference computes it, and non-finite pixels are labelled 255.
@Suite(.serialized) struct InputTypesRunTests {
    /// A UInt16 copy (× 257) scaled back with `{from: [0, 65535], to: [0, 255]}` gives exactly the
    /// 8-bit labels and confidence: 257·v · fl(255/65535) rounds back to v for every v in 0...255, so
    /// the network sees the same floats. Unscaled, the run says so.
    @Test func uint16CopyScaledBackGivesTheEightBitLabels() throws {
        let ws = InputWorkspace("uint16")
        defer { ws.remove() }
        let ortho = try ws.ortho()
        let u16 = try ws.translate(ortho, to: "u16.tif", ["-ot", "UInt16", "-scale", "0", "255", "0", "65535"])
        let bands = try #require(try Tool.gdalinfoJSON(u16)["bands"] as? [[String: Any]])
        #expect(bands.map { $0["type"] as? String } == ["UInt16", "UInt16", "UInt16"])
        #expect(try ws.raw(u16, as: UInt16.self) == (try ws.raw(ortho, as: UInt8.self)).map { UInt16($0) * 257 })

        let checkpoint = InputWorkspace.checkpoint
        let eight = try ws.run(try ws.pipeline(), ortho, checkpoint: checkpoint)
        #expect(eight.result.notices.isEmpty)
        let scaled = try ws.run(try ws.pipeline(input: "{scale: {from: [0, 65535], to: [0, 255]}}"), u16,
                                checkpoint: checkpoint)
        #expect(scaled.labels == eight.labels)
        #expect(scaled.confidence == eight.confidence)
        #expect(scaled.result.notices.isEmpty)
        #expect(Set(eight.labels).count > 1, "a model that labels everything alike would prove nothing")

        let unscaled = try ws.run(try ws.pipeline(), u16, checkpoint: checkpoint)
        #expect(unscaled.result.notices == [
            "input u16.tif is UInt16 but the pipeline has no input.scale; values are used unscaled (add input.scale, "
            + "e.g. {percentile: [2, 98], to: [0, 255]} or {from: [min, max], to: [0, 255]})",
        ])
    }

    /// Float32 reflectance-like values 0...1 scaled with `{from: [0, 1], to: [0, 255]}` give the 8-bit
    /// labels and confidence (fl(fl(v/255) · 255) = v for every byte value v).
    @Test func float32CopyScaledBackGivesTheEightBitLabels() throws {
        let ws = InputWorkspace("float32")
        defer { ws.remove() }
        let ortho = try ws.ortho()
        let f32 = try ws.translate(ortho, to: "f32.tif", ["-ot", "Float32", "-scale", "0", "255", "0", "1"])
        let values = try ws.raw(f32, as: Float.self)
        #expect(values.min()! >= 0 && values.max()! <= 1)
        let eight = try ws.run(try ws.pipeline(), ortho, checkpoint: InputWorkspace.checkpoint)
        let scaled = try ws.run(try ws.pipeline(input: "{scale: {from: [0, 1], to: [0, 255]}}"), f32,
                                checkpoint: InputWorkspace.checkpoint)
        #expect(scaled.labels == eight.labels)
        #expect(scaled.confidence == eight.confidence)
        #expect(Set(eight.labels).count > 1)
    }

    /// NaN, +Inf and -Inf pixels (in any one band) are invalid: label 255 and confidence 0 there, a
    /// class elsewhere, with or without a `nodata_fill`.
    @Test(.enabled(if: InputWorkspace.python != nil, "needs python3 with numpy and osgeo.gdal"),
          arguments: [nil, 100.0])
    func nonFinitePixelsAreLabelled255(_ fill: Double?) throws {
        let ws = InputWorkspace("nonfinite")
        defer { ws.remove() }
        let f32 = try ws.translate(try ws.ortho(size: 256), to: "f32.tif",
                                   ["-ot", "Float32", "-scale", "0", "255", "0", "1"])
        let script = """
            import sys, numpy as np
            from osgeo import gdal
            ds = gdal.Open(sys.argv[1], gdal.GA_Update)
            for band, value, (y, x) in [(1, np.nan, (10, 20)), (2, np.inf, (100, 30)), (3, -np.inf, (200, 200))]:
                b = ds.GetRasterBand(band)
                a = b.ReadAsArray()
                a[y:y + 8, x:x + 12] = value
                b.WriteArray(a)
            ds = None
            """
        try ws.python(script, [f32])
        let values = try ws.raw(f32, as: Float.self)
        let n = 256 * 256
        let bad = (0..<n).filter { p in (0..<3).contains { !values[$0 * n + p].isFinite } }
        #expect(bad.count == 3 * 8 * 12, "the script wrote the non-finite pixels")

        let fillText = fill.map { ", nodata_fill: \($0)" } ?? ""
        let run = try ws.run(try ws.pipeline(input: "{scale: {from: [0, 1], to: [0, 255]}\(fillText)}"), f32,
                             checkpoint: InputWorkspace.checkpoint)
        let badSet = Set(bad)
        #expect(bad.allSatisfy { run.labels[$0] == 255 && run.confidence[$0] == 0 })
        #expect((0..<n).allSatisfy { badSet.contains($0) || run.labels[$0] < 6 })
        #expect(run.confidence.allSatisfy { $0.isFinite && $0 >= 0 }, "no NaN reached the network")
    }

    /// A 4-band raster (R, G, B, R again: bands 1, 2, 3, 1 of the orthophoto) through a 4-channel model
    /// equals a reference computed here: raw bytes from gdal_translate, scaled and normalised in plain
    /// Swift, the model's `logits`, argmax. One window covers the image (crop ≥ image).
    @Test func fourBandLocalRasterMatchesAPlainReference() throws {
        let ws = InputWorkspace("four-band")
        defer { ws.remove() }
        let ortho = Fixtures.local("rasters/ortho_10cm.tif").path
        let bands = ["-b", "1", "-b", "2", "-b", "3", "-b", "1"]
        let image = try ws.translate(ortho, to: "rgbr.tif", bands + ["-srcwin", "1600", "200", "200", "160"])
        try checkFourBand(ws, image: image, width: 200, height: 160, noData: nil)
    }

    /// The NAIP RGB+NIR raster (nodata 0), a 256 × 192 window, against the same reference. The
    /// raster has no nodata pixel, so the copy gets a block of them (0 in all four bands).
    @Test(.enabled(if: Fixtures.sharedRoot != nil, "needs ../shared/data/naip"),
          .enabled(if: InputWorkspace.python != nil, "needs python3 with numpy and osgeo.gdal"))
    func fourBandNAIPMatchesAPlainReference() throws {
        let naip = try #require(Fixtures.shared("data/naip/naip_rgbn_2020.tif"))
        let ws = InputWorkspace("naip")
        defer { ws.remove() }
        let image = try ws.translate(naip.path, to: "naip.tif", ["-srcwin", "300", "200", "256", "192"])
        let bands = try #require(try Tool.gdalinfoJSON(image)["bands"] as? [[String: Any]])
        #expect(bands.count == 4 && bands.allSatisfy { $0["noDataValue"] as? Double == 0 })
        try ws.python("""
            import sys
            from osgeo import gdal
            ds = gdal.Open(sys.argv[1], gdal.GA_Update)
            for b in range(1, 5):
                band = ds.GetRasterBand(b)
                a = band.ReadAsArray()
                a[50:70, 100:130] = 0
                band.WriteArray(a)
            ds = None
            """, [image])
        try checkFourBand(ws, image: image, width: 256, height: 192, noData: 0)
    }

    /// Runs a 4-channel model with `{from: [20, 230], to: [0, 255]}` and `nodata_fill: 7` and compares
    /// with the reference: confidence within 1e-5 of the reference's max softmax probability, labels
    /// equal except where the reference's two best logits are within 1e-3 (the job maps with
    /// x·gain + offset, the reference with (x − 20) · 255 / 210, which may round differently).
    func checkFourBand(_ ws: InputWorkspace, image: String, width w: Int, height h: Int, noData: UInt8?) throws {
        let pipeline = try ws.pipeline(channels: 4, input: "{bands: [1, 2, 3, 4], scale: {from: [20, 230], "
                                       + "to: [0, 255]}, nodata_fill: 7}", crop: 256, stride: 256)
        let run = try ws.run(pipeline, image)
        #expect(run.job.loaded.model.inputChannels == 4)
        #expect(run.result.windowsRun == 1)

        let raw = try ws.raw(image, as: UInt8.self)
        let n = w * h
        let invalid = (0..<n).map { p in noData.map { nd in (0..<4).allSatisfy { raw[$0 * n + p] == nd } } ?? false }
        let (mean, std) = InputWorkspace.normalisation(4)
        var input = [Float](repeating: 0, count: 4 * n)
        for c in 0..<4 {  // four channels keep their order (no BGR swap, as mmseg)
            for p in 0..<n {
                let scaled = invalid[p] ? 7 : min(max((Float(raw[c * n + p]) - 20) * 255 / 210, 0), 255)
                input[c * n + p] = (scaled - Float(mean[c])) / Float(std[c])
            }
        }
        let logits = try run.job.loaded.model.logits(Tensor(shape: [1, 4, h, w], data: input))
        let (expected, probabilities, margins) = labelsAndMargins(logits)
        var mismatches = 0, nearTies = 0, worst: Float = 0
        for p in 0..<n {
            worst = max(worst, abs(run.confidence[p] - (invalid[p] ? 0 : probabilities[p])))
            let want: UInt8 = invalid[p] ? 255 : expected[p]
            if run.labels[p] != want {
                if !invalid[p] && margins[p] < 1e-3 { nearTies += 1 } else { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
        #expect(nearTies <= n / 1000, "\(nearTies) near-tie differences")
        #expect(worst <= 1e-5, "max |confidence − reference softmax max| = \(worst)")
        if noData != nil { #expect(invalid.contains(true), "the window must contain nodata pixels") }
        // Random weights may give one class; the confidence must still vary with the input.
        #expect(probabilities.max()! - probabilities.min()! > 1e-3, "the output must depend on the input")
    }

    /// The SpaceNet panchromatic UInt16 raster, one band read three times, percentile-stretched.
    @Test(.enabled(if: Fixtures.sharedRoot != nil, "needs ../shared/data/spacenet-roads"))
    func sharedPanchromaticUInt16RunsWithPercentileScaling() throws {
        let pan = try #require(Fixtures.shared("data/spacenet-roads/pan_uint16.tif"))
        let ws = InputWorkspace("pan")
        defer { ws.remove() }
        let run = try ws.run(try ws.pipeline(input: "{scale: {percentile: [2, 98], to: [0, 255]}}"), pan.path,
                             bands: [1, 1, 1])
        #expect(run.labels.count == 1300 * 1300)
        #expect(run.labels.allSatisfy { $0 < 6 })
        #expect(Set(run.labels).count > 1)
        #expect(run.result.notices.count == 1)
        #expect(run.result.notices.first?.hasPrefix("input pan_uint16.tif: percentile [2, 98] bounds per band") == true)
        #expect(run.result.notices.first?.hasSuffix("sample of 650×650 pixels (overviews when present)") == true)
    }
}
