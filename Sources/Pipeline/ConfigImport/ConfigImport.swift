import Foundation
import SegCore
import Yams

/// mmseg config → pipeline: what `aerialseg import-config` does.
///
/// - `model`: `backbone`, `neck`, `decode_head` and `data_preprocessor` are transcribed into
///   `ModelConfig` with mmseg's own field names; training-only keys (`norm_cfg`, `loss_decode`,
///   `auxiliary_head`, `init_cfg`, `pretrained`, `train_cfg`, ...) are ignored.
/// - `tiling`: `model.test_cfg` `slide` gives crop and stride; `whole` (every stock seed config)
///   gives the training `crop_size` as crop and ⅔ of it as stride (an orthophoto is never run whole).
///   A non-square size takes its shorter side, so no window is larger than what the network saw in
///   training. Blending is `mean`, mmseg's.
/// - `classes`/`palette`: the test (else val, else train) dataset's `metainfo`, else the `METAINFO`
///   of the mmseg dataset class it names (`MMSegDatasets`), else nil (the checkpoint's meta gives them).
extension PipelineConfig {
    /// Imports an mmseg config file and its `_base_` files.
    public static func importing(configFile path: String) throws -> PipelineConfig {
        try importing(config: MMEngineConfig.load(path: path), source: path, mmsegConfig: mmsegConfigName(path))
    }

    /// Imports config text without `_base_`, e.g. mmengine's `pretty_text` kept in a checkpoint's
    /// `meta.cfg`; `source` names it in errors and becomes `mmseg_config`.
    public static func importing(configText: String, source: String) throws -> PipelineConfig {
        try importing(config: MMEngineConfig.parse(text: configText, source: source), source: source,
                      mmsegConfig: source)
    }

    /// Imports merged config variables (what `MMEngineConfig` reads).
    public static func importing(config: ConfigDict, source: String, mmsegConfig: String?) throws -> PipelineConfig {
        func fail(_ reason: String, _ hint: String) -> PipelineError {
            PipelineError(path: source, reason: reason, hint: hint)
        }
        guard let modelDict = config["model"]?.dict else {
            throw fail("the config has no model dict", "an mmseg config sets model = dict(type='EncoderDecoder', ...)")
        }
        if let type = modelDict["type"], type != .string("EncoderDecoder") {
            throw fail("model type \(type) is not supported", "AerialSeg runs mmseg EncoderDecoder models")
        }
        let model: ModelConfig = try decoded(ModelConfig.self, .dict(modelDict), at: ["model"], source: source)
        let bands = Array(1...max(1, model.backbone?.inChannels ?? 3))
        let (classes, palette) = try datasetClasses(config, source: source)
        let pipeline = PipelineConfig(
            name: nil, mmsegConfig: mmsegConfig, model: model, classes: classes, palette: palette,
            input: InputConfig(bands: bands, mean: nil, std: nil),
            tiling: try tiling(config, model: modelDict, source: source), vectors: nil)
        try pipeline.validate(path: source)
        return pipeline
    }

    /// The config's name as the model zoo gives it (relative to mmseg's `configs/` folder) when the
    /// path lies in such a folder, else the path as given.
    static func mmsegConfigName(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard let index = parts.lastIndex(of: "configs"), index + 1 < parts.count else { return path }
        return parts[(index + 1)...].joined(separator: "/")
    }

    private static func tiling(_ config: ConfigDict, model: ConfigDict, source: String) throws -> TilingConfig {
        let testConfig = model["test_cfg"]?.dict ?? ConfigDict()
        let mode = try decoded(String?.self, testConfig["mode"] ?? .none, at: ["model", "test_cfg", "mode"],
                               source: source) ?? "whole"
        switch mode {
        case "slide":
            let crop = try side(testConfig["crop_size"], at: "model.test_cfg.crop_size", source: source)
            let stride = try side(testConfig["stride"], at: "model.test_cfg.stride", source: source)
            return TilingConfig(crop: crop, stride: stride, blend: "mean")
        case "whole":
            let trained = config["crop_size"] ?? model.value(at: ["data_preprocessor", "size"])
            let crop = try trained.map { try side($0, at: "crop_size", source: source) } ?? 512
            return TilingConfig(crop: crop, stride: crop * 2 / 3, blend: "mean")
        default:
            throw PipelineError(path: source, reason: "model.test_cfg mode '\(mode)' is not supported",
                                hint: "mmseg's modes are slide and whole")
        }
    }

    /// A window side from an mmseg size: an int, or (h, w) whose shorter side is taken.
    private static func side(_ value: ConfigValue?, at path: String, source: String) throws -> Int {
        switch value {
        case .int(let side)?: return side
        case let value? where value.items?.count == 2:
            let sides = try decoded([Int].self, value, at: path.split(separator: ".").map(String.init), source: source)
            return sides.min()!
        default:
            let found = value?.kindName ?? "missing"
            throw PipelineError(path: source, reason: "\(path) must be an int or (height, width), not \(found)",
                                hint: "e.g. crop_size=(512, 512)")
        }
    }

    private static func datasetClasses(_ config: ConfigDict, source: String) throws -> ([String]?, [[Int]]?) {
        for loader in ["test_dataloader", "val_dataloader", "train_dataloader"] {
            var dataset = config.value(at: [loader, "dataset"])?.dict
            var path = [loader, "dataset"]
            while let current = dataset {
                if let metainfo = current["metainfo"]?.dict {
                    let at = path + ["metainfo"]
                    let classes = try decoded([String]?.self, metainfo["classes"] ?? .none, at: at + ["classes"],
                                              source: source)
                    var palette = try decoded([[Int]]?.self, metainfo["palette"] ?? .none, at: at + ["palette"],
                                              source: source)
                    if palette == nil, let type = current["type"], case .string(let name) = type,
                       let known = MMSegDatasets.byType[name], known.classes == classes {
                        palette = known.palette
                    }
                    return (classes, palette)
                }
                if case .string(let type)? = current["type"], let known = MMSegDatasets.byType[type] {
                    return (known.classes, known.palette)
                }
                dataset = current["dataset"]?.dict  // wrappers such as RepeatDataset
                path.append("dataset")
            }
        }
        return (nil, nil)
    }

    private static func decoded<T: Decodable>(_ type: T.Type, _ value: ConfigValue, at path: [String],
                                              source: String) throws -> T {
        do {
            return try ConfigValueDecoder.decode(type, from: value, at: path)
        } catch let error as DecodingError {
            throw PipelineError(path: source, reason: describe(error), hint: "see the mmseg config's model dict")
        }
    }

    /// The pipeline as YAML (flow-style lists, keys in declaration order), after `header` comment lines.
    public func yamlText(header: [String] = []) throws -> String {
        let encoder = YAMLEncoder()
        encoder.options.sequenceStyle = .flow
        encoder.options.width = -1
        var body = try encoder.encode(self)
        if let node = try Yams.compose(yaml: body) {
            body = try Yams.serialize(node: Self.shortestFloats(node), width: -1, sequenceStyle: .flow)
        }
        return header.map { "# " + $0 + "\n" }.joined() + body
    }

    /// Floats as Swift prints them (`123.675`) instead of Yams' `1.23675e+2`.
    private static func shortestFloats(_ node: Node) -> Node {
        switch node {
        case .scalar(var scalar):
            if scalar.style == .plain, scalar.string.contains(where: { "eE.".contains($0) }),
               let value = Double(scalar.string) {
                scalar.string = "\(value)"
            }
            return .scalar(scalar)
        case .mapping(let mapping):
            let pairs = mapping.map { ($0.key, shortestFloats($0.value)) }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case .sequence(let sequence):
            return .sequence(Node.Sequence(sequence.map(shortestFloats), sequence.tag, .flow, sequence.mark))
        default:
            return node
        }
    }

    /// Writes `yamlText(header:)` followed by `trailer` (raw YAML lines) to `path`, atomically: staged
    /// in a hidden file in the same folder, then renamed into place.
    public func write(to path: String, header: [String]) throws {
        let text: String
        do {
            text = try yamlText(header: header)
        } catch {
            throw PipelineError(path: path, reason: "cannot encode the pipeline: \(oneLine(error))", hint: "")
        }
        let url = URL(fileURLWithPath: path)
        let staged = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).aerialseg-\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: staged.path, contents: Data(text.utf8)) else {
            throw PipelineError(path: path, reason: "cannot write the pipeline file",
                                hint: "check that the folder exists and is writable")
        }
        guard rename(staged.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(staged.path)
            throw PipelineError(path: path, reason: "cannot move the pipeline file into place: \(reason)", hint: "")
        }
    }
}
