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
