import Foundation
import Pipeline
import SegCore
import Testing
import TestSupport

/// `PipelineConfig.importing`: the shipped pipelines equal what the importer makes of their mmseg
/// configs (committed byte for byte from the mmsegmentation 1.2.2 wheel), and a checkpoint's
/// `pretty_text` imports like the file it came from.
@Suite struct ConfigImportTests {
    static let configs = Fixtures.local("mmseg-configs/configs")

    /// Pipelines that are not transcriptions of an mmseg 1.2.2 config file: RegSeg and the tree-canopy
    /// demo (tested on their own), and R-101 iSAID, for which mmseg 1.2.2 has no config.
    static let notSeedConfigs: Set<String> = [
        "tree-canopy.yaml", "regseg_exp48_decoder26_cityscapes.yaml",
        "deeplabv3plus_r101-d8_4xb4-80k_isaid-896x896.yaml",
    ]

    static let seedPipelines: [String] = {
        let folder = Fixtures.packageRoot.appendingPathComponent("Pipelines").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".yaml") && !notSeedConfigs.contains($0) }.sorted()
    }()

    static func pipeline(_ name: String) throws -> PipelineConfig {
        try PipelineConfig.load(path: Fixtures.packageRoot.appendingPathComponent("Pipelines/\(name)").path)
    }

    /// Model, preprocessing, tiling, classes and palette are equal.
    static func expectSameRun(_ imported: PipelineConfig, _ shipped: PipelineConfig,
                              classes: Bool = true, blend: Bool = true, _ context: String) {
        #expect(imported.model == shipped.model, "\(context): model")
        #expect(imported.model.dataPreprocessor == shipped.model.dataPreprocessor, "\(context): data_preprocessor")
        #expect(imported.tiling?.crop == shipped.tiling?.crop, "\(context): crop")
        #expect(imported.tiling?.stride == shipped.tiling?.stride, "\(context): stride")
        if blend { #expect(imported.tiling?.blend == shipped.tiling?.blend, "\(context): blend") }
        #expect(imported.input?.bands == shipped.input?.bands, "\(context): bands")
        if classes {
            #expect(imported.classes == shipped.classes, "\(context): classes")
            #expect(imported.palette == shipped.palette, "\(context): palette")
        }
    }

    @Test func everySeedPipelineIsCovered() {
        #expect(Self.seedPipelines.count == 21)
    }

    @Test(arguments: seedPipelines)
    func seedPipelineEqualsItsImportedConfig(_ name: String) throws {
        let shipped = try Self.pipeline(name)
        let config = try #require(shipped.mmsegConfig)
        let imported = try PipelineConfig.importing(configFile: Self.configs.appendingPathComponent(config).path)
        #expect(imported.mmsegConfig == config)
        Self.expectSameRun(imported, shipped, name)
    }

    @Test func r101ISAIDPipelineIsTheR50ConfigWithDepth101() throws {
        var imported = try PipelineConfig.importing(configFile: Self.configs.appendingPathComponent(
            "deeplabv3plus/deeplabv3plus_r50-d8_4xb4-80k_isaid-896x896.py").path)
        imported.model.backbone?.depth = 101
        let shipped = try Self.pipeline("deeplabv3plus_r101-d8_4xb4-80k_isaid-896x896.yaml")
        Self.expectSameRun(imported, shipped, "R-101 iSAID")
    }

    @Test func treeCanopyPipelineEqualsItsImportedConfig() throws {
        let shipped = try Self.pipeline("tree-canopy.yaml")
        let path = Fixtures.packageRoot.appendingPathComponent("Examples/tree-canopy/tree_canopy_config.py").path
        let imported = try PipelineConfig.importing(configFile: path)
        // The demo blends with hann (seam-free): our choice, not the config's.
        Self.expectSameRun(imported, shipped, classes: false, blend: false, "tree-canopy")
        #expect(shipped.tiling?.blend == "hann")
        #expect(imported.classes == ["background", "tree"], "from the config's metainfo")
        #expect(imported.tiling?.crop == 512 && imported.tiling?.stride == 341, "its test_cfg: slide 512 / 341")
    }

    /// `Tests/Fixtures/mmseg-configs/pretty_text/` holds what mmengine 0.10.7 prints for the R-18
    /// Potsdam config (the text a checkpoint's `meta.cfg` carries); see Tests/Fixtures/README.md.
    @Test func prettyTextImportsLikeTheFile() throws {
        let name = "deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.py"
        let text = try String(contentsOf: Fixtures.local("mmseg-configs/pretty_text/\(name)"), encoding: .utf8)
        let fromText = try PipelineConfig.importing(configText: text, source: "checkpoint meta.cfg")
        let fromFile = try PipelineConfig.importing(
            configFile: Self.configs.appendingPathComponent("deeplabv3plus/\(name)").path)
        Self.expectSameRun(fromText, fromFile, "pretty_text")
        #expect(fromText.mmsegConfig == "checkpoint meta.cfg")
        #expect(try fromText.yamlText().replacingOccurrences(of: "checkpoint meta.cfg", with: "deeplabv3plus/\(name)")
                == fromFile.yamlText(), "the same pipeline file")
    }

    @Test func prettyTextHasTheSameVariablesAsTheFile() throws {
        let name = "deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.py"
        let text = try String(contentsOf: Fixtures.local("mmseg-configs/pretty_text/\(name)"), encoding: .utf8)
        let fromText = try MMEngineConfig.parse(text: text, source: "pretty_text")
        let fromFile = try MMEngineConfig.load(path: Self.configs.appendingPathComponent("deeplabv3plus/\(name)").path)
        #expect(Set(fromText.keys) == Set(fromFile.keys))
        for key in fromFile.keys {
            #expect(sorted(fromText[key]!) == sorted(fromFile[key]!), "\(key)")
        }
    }

    /// pretty_text sorts dict keys; compare dicts as sets of keys.
    func sorted(_ value: ConfigValue) -> ConfigValue {
        switch value {
        case .dict(let dict):
            return .dict(ConfigDict(dict.entries.sorted { $0.key < $1.key }.map { ($0.key, sorted($0.value)) }))
        case .list(let items): return .list(items.map(sorted))
        case .tuple(let items): return .tuple(items.map(sorted))
        default: return value
        }
    }

    @Test func writtenYAMLLoadsBackTheSame() throws {
        let name = "deeplabv3plus_r18-d8_4xb4-80k_isaid-896x896.py"
        let imported = try PipelineConfig.importing(
            configFile: Self.configs.appendingPathComponent("deeplabv3plus/\(name)").path)
        let dir = Fixtures.temporaryDirectory("aerialseg-import")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("p.yaml").path
        try imported.yamlText(header: ["header"]).write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try PipelineConfig.load(path: path)
        Self.expectSameRun(loaded, imported, "round trip")
        #expect(imported.tiling?.crop == 896 && imported.tiling?.stride == 597, "whole: training crop, ⅔ stride")
    }

    @Test func nonSquareTrainingCropTakesTheShorterSide() throws {
        let imported = try PipelineConfig.importing(
            configFile: Self.configs.appendingPathComponent("fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py").path)
        #expect(imported.tiling?.crop == 512 && imported.tiling?.stride == 341)
        #expect(imported.classes?.count == 19 && imported.classes?.first == "road")
    }
}
