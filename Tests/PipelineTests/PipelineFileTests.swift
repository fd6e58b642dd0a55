import Foundation
import Pipeline
import SegCore
import Testing
import TestSupport

/// Every file in Pipelines/ decodes, validates and builds its model with random weights.
@Suite struct PipelineFileTests {
    static let files: [String] = {
        let dir = Fixtures.packageRoot.appendingPathComponent("Pipelines")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
    }()

    @Test func thereArePipelines() { #expect(Self.files.count >= 3) }

    @Test(arguments: files)
    func loadsValidatesAndBuilds(_ name: String) throws {
        let path = Fixtures.packageRoot.appendingPathComponent("Pipelines/\(name)").path
        let config = try PipelineConfig.load(path: path)
        let loaded = try ModelLoading.load(config, weights: .random, backend: .reference)
        #expect(loaded.model.numClasses == config.model.decodeHead?.numClasses ?? config.model.numClasses)
        if let classes = config.classes { #expect(loaded.classes == classes) }
        #expect(config.mmsegConfig != nil, "name the mmseg config it transcribes")
    }

    static let badPipelines: [(String, String)] = [
        ("model: [unclosed", "malformed YAML"),
        ("name: x\n", "missing key 'model'"),
        ("model: {decode_head: {type: FCNHead}}\ntiling: {crop: 512, stride: 600}\n", "stride 600"),
        ("model: {decode_head: {type: FCNHead}}\ntiling: {crop: 16}\n", "crop 16"),
        ("model: {decode_head: {type: FCNHead}}\ntiling: {blend: median}\n", "unknown blend"),
        ("model: {decode_head: {type: FCNHead}}\nclasses: [a, b]\npalette: [[1, 2, 3]]\n", "2 classes but 1 palette"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {bands: [0, 1, 2]}\n", "1-based"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {scale: {from: [500, 500], to: [0, 255]}}\n",
         "input scale from [500, 500] needs min < max"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {scale: {from: [0, 1], to: [255, 0]}}\n",
         "input scale to [255, 0] needs min < max"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {scale: {percentile: [2, 120]}}\n",
         "percentile [2, 120] needs 0 ≤ low < high ≤ 100"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {scale: {percentile: [2, 98], from: [0, 1]}}\n",
         "input.scale: give exactly one of from or percentile"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {scale: {form: [0, 1]}}\n", "unknown key(s) [\"form\"]"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {scale: minmax}\n", "unknown scale 'minmax'"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {scale: {from: [0, 1, 2]}}\n", "expected two numbers"),
        ("model: {decode_head: {type: FCNHead}}\ninput: {nodata_fill: .nan}\n",
         "nodata_fill nan must be a finite number"),
    ]

    @Test(arguments: badPipelines)
    func badPipelineGivesAClearError(_ yaml: String, _ expected: String) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-yaml")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("p.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try PipelineConfig.load(path: path) } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("\(path): ") && text.contains(expected) && !text.contains("\n")
        }
    }
}
