import Foundation
import GeoIO
import Pipeline
import SegCore
import Testing
import TestSupport

/// `input.scale`, `input.nodata_fill` and `input.bands` of any length: decoding, the scaling math,
/// percentile bounds against numpy, N-channel preprocessing, and clear errors for bad input.
@Suite struct InputScalingTests {
    let model = "model: {decode_head: {type: FCNHead}}\n"

    func load(_ yaml: String) throws -> PipelineConfig {
        let dir = Fixtures.temporaryDirectory("aerialseg-yaml")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("p.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try PipelineConfig.load(path: path)
    }

    @Test func decodesTheThreeScaleForms() throws {
        #expect(try load(model).input?.scale == nil, "absent: none")
        #expect(try load(model + "input: {scale: none}\n").input?.scale == InputScale.none)
        #expect(try load(model + "input: {scale: {from: [0, 10000], to: [0, 1]}, nodata_fill: -1}\n").input?.scale
                == .linear(from: ValueRange(0, 10000), to: ValueRange(0, 1)))
        let block = try load(model + """
            input:
              bands: [4, 3, 2, 1]
              scale: {percentile: [2, 98]}
              nodata_fill: 0.5
            """).input
        #expect(block?.scale == .percentile(ValueRange(2, 98), to: ValueRange(0, 255)), "to defaults to [0, 255]")
        #expect(block?.bands == [4, 3, 2, 1])
        #expect(block?.nodataFill == 0.5)
    }

    /// The map is linear, clamped to `to`, and fills invalid pixels after scaling.
    @Test func scalingMapsClampsAndFills() {
        let scaling = InputScaling(bounds: [ValueRange(100, 200), ValueRange(0, 1)], to: ValueRange(0, 255), fill: 9)
        var pixels: [Float] = [50, 100, 150, 250, 0, 0.5, 1, 2]
        let validity: [UInt8] = [1, 1, 0, 1]
        pixels.withUnsafeMutableBufferPointer { p in
            validity.withUnsafeBufferPointer { scaling.apply(p, validity: $0, channels: 2, planeCount: 4) }
        }
        #expect(pixels == [0, 0, 9, 255, 0, 127.5, 9, 255])
        #expect(InputScaling.identity.isIdentity)
        #expect(!scaling.isIdentity)
        // A constant band (equal bounds) maps to `to.low` rather than dividing by zero.
        #expect(InputScaling(bounds: [ValueRange(5, 5)], to: ValueRange(10, 20), fill: nil).maps
                == [InputScaling.Map(gain: 0, offset: 10)])
    }

    /// Percentile bounds are numpy's `percentile` (linear) of the valid pixels: over the whole raster
    /// when its long side is at most 1024, else over GDAL's nearest-neighbour sample (pixel 2i+1 for a
    /// factor 2, `a[1::2, 1::2]`). The nodata pixels (0 in every band) are left out.
    @Test(.enabled(if: InputWorkspace.python != nil, "needs python3 with numpy and osgeo.gdal"),
          arguments: [(512, 1), (2048, 2)])
    func percentileBoundsAreNumpysPercentiles(_ size: Int, _ factor: Int) throws {
        let ws = InputWorkspace("percentile")
        defer { ws.remove() }
        let ortho = try ws.ortho(size: size)
        let raster = try ws.translate(ortho, to: "u16.tif", ["-ot", "UInt16", "-scale", "0", "255", "0", "65535",
                                                             "-a_nodata", "0"])
        try ws.python("""
            import sys
            from osgeo import gdal
            ds = gdal.Open(sys.argv[1], gdal.GA_Update)
            for b in range(1, 4):
                band = ds.GetRasterBand(b)
                a = band.ReadAsArray()
                a[0:40, 0:300] = 0
                band.WriteArray(a)
            ds = None
            """, [raster])
        let dataset = try Dataset(path: raster)
        let (bounds, sample) = try InputScaling.percentileBounds(ValueRange(2, 98), dataset: dataset, bands: [3, 1])
        #expect(sample == (size / factor, size / factor))
        let expected = try ws.python("""
            import sys, json, numpy as np
            from osgeo import gdal
            f = int(sys.argv[2])
            a = gdal.Open(sys.argv[1]).ReadAsArray().astype(np.float64)[:, f // 2::f, f // 2::f]
            valid = ~(a == 0).all(axis=0)
            print(json.dumps([list(np.percentile(a[b][valid], [2, 98])) for b in (2, 0)]))
            """, [raster, "\(factor)"])
        let numpy = try #require(try JSONSerialization.jsonObject(with: Data(expected.utf8)) as? [[Double]])
        #expect(bounds.map { [$0.low, $0.high] } == numpy)
    }

    /// The shared SpaceNet panchromatic UInt16 raster (1300², no overviews): a 650² sample.
    @Test(.enabled(if: Fixtures.sharedRoot != nil, "needs ../shared/data/spacenet-roads"),
          .enabled(if: InputWorkspace.python != nil, "needs python3 with numpy and osgeo.gdal"))
    func sharedPanchromaticPercentiles() throws {
        let pan = try #require(Fixtures.shared("data/spacenet-roads/pan_uint16.tif"))
        let ws = InputWorkspace("pan-percentile")
        defer { ws.remove() }
        let dataset = try Dataset(path: pan.path)
        let (bounds, sample) = try InputScaling.percentileBounds(ValueRange(2, 98), dataset: dataset, bands: [1])
        #expect(sample == (650, 650))
        let expected = try ws.python("""
            import sys, json, numpy as np
            from osgeo import gdal
            a = gdal.Open(sys.argv[1]).ReadAsArray().astype(np.float64)[1::2, 1::2]
            print(json.dumps(list(np.percentile(a, [2, 98]))))
            """, [pan.path])
        #expect([bounds[0].low, bounds[0].high]
                == (try JSONSerialization.jsonObject(with: Data(expected.utf8)) as? [Double]))
    }

    /// mmseg's `SegDataPreProcessor` swaps channels only for 3-channel inputs.
    @Test func preprocessingSwapsOnlyThreeChannels() throws {
        let cfg = DataPreprocessorConfig(mean: [0, 0, 0, 0], std: [1, 1, 1, 1], bgrToRGB: true)
        let four = try Preprocessing(cfg, channels: 4)
        #expect(try four([1, 2, 3, 4], height: 1, width: 1, order: .bgr).data == [1, 2, 3, 4])
        let three = try Preprocessing(DataPreprocessorConfig(mean: [0, 0, 0], std: [1, 1, 1], bgrToRGB: true))
        #expect(try three([1, 2, 3], height: 1, width: 1, order: .bgr).data == [3, 2, 1])
        #expect(throws: ModelConfigError.self) { try Preprocessing(cfg, channels: 3) }
    }

    /// A 4-channel model given three bands fails before any inference, naming both counts.
    @Test func bandCountMustMatchTheModelsInputChannels() throws {
        let ws = InputWorkspace("band-count")
        defer { ws.remove() }
        let pipeline = try ws.pipeline(channels: 4)  // input.bands defaults to [1, 2, 3]
        #expect { try ws.run(pipeline, try ws.ortho(size: 64)) } throws: { error in
            let text = "\(error)"
            return text.contains("the model takes 4 input channels") && text.contains("3 bands are read")
                && !text.contains("\n")
        }
        // From the command line: one line, exit code 2, before any input is read.
        let result = try Tool.run(Tool.aerialseg, ["run", pipeline, "--input", try ws.ortho(size: 64),
                                                   "--output", ws.path("out"), "--bands", "1,2,3,4,1", "--random-weights", "--quiet"])
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("aerialseg: error: --bands: the model takes 4 input channels")
                && lines[0].contains("5 bands are read"), "\(result.stderr)")
    }

    /// Bands beyond the raster's count name the input file.
    @Test func bandsBeyondTheRasterNameTheInput() throws {
        let ws = InputWorkspace("band-range")
        defer { ws.remove() }
        let ortho = try ws.ortho(size: 64)
        #expect { try ws.run(try ws.pipeline(channels: 4), ortho, bands: [1, 2, 3, 4]) } throws: { error in
            "\(error)".hasPrefix("\(ortho): has 3 band(s) but the pipeline reads bands [1, 2, 3, 4]")
        }
    }
}
