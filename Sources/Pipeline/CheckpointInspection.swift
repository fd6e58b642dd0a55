import Foundation
import SegCore
import Yams

/// What `aerialseg inspect` reports about a checkpoint.
public struct CheckpointReport: Codable, Sendable {
    public var path: String
    public var format: String
    public var tensorCount: Int
    /// Elements of floating-point tensors (parameters and BN statistics), auxiliary head included.
    public var parameterCount: Int
    /// Parameters used at inference (auxiliary head, SE-loss layer and counters left out).
    public var inferenceParameterCount: Int
    /// The architecture the key names match, e.g. "DeepLabV3+ (DepthwiseSeparableASPPHead) on ResNetV1c-18".
    public var architecture: String
    public var numClasses: Int?
    public var classes: [String]?
    public var palette: [[Int]]?
    public var hasConfigText: Bool
    /// SHA-256 of the file (what a pipeline's `checkpoint_sha256:` takes).
    public var sha256: String?
    /// The pipeline `aerialseg run --checkpoint FILE` builds from the checkpoint alone (mmengine
    /// checkpoints: `meta.cfg` and `meta.dataset_meta`), or nil with `pipelineProblem` saying why not.
    public var pipeline: PipelineConfig?
    public var pipelineProblem: String?
}

/// Recognises a checkpoint's architecture from its key names and shapes (never from its pickle code).
public enum CheckpointInspection {
    public static func report(path: String) throws -> CheckpointReport {
        let checkpoint = try Checkpoint.load(path: path)
        let tensors = checkpoint.tensors
        func used(_ key: String) -> Bool {
            !(key.hasPrefix("auxiliary_head.") || key.hasPrefix("decode_head.se_layer.")
              || key.hasSuffix(".num_batches_tracked"))
        }
        let floating = tensors.filter { $0.value.dtype.isFloatingPoint }
        var pipeline: PipelineConfig?
        var problem: String?
        do {
            pipeline = try PipelineConfig.fromCheckpoint(checkpoint, path: path)
        } catch {
            problem = "\(error)"
        }
        return CheckpointReport(
            path: path, format: checkpoint.format.rawValue, tensorCount: tensors.count,
            parameterCount: floating.values.reduce(0) { $0 + $1.count },
            inferenceParameterCount: floating.filter { used($0.key) }.values.reduce(0) { $0 + $1.count },
            architecture: architecture(Set(tensors.keys), shapes: tensors.mapValues(\.shape)),
            numClasses: numClasses(tensors.mapValues(\.shape)), classes: checkpoint.meta.classes,
            palette: checkpoint.meta.palette, hasConfigText: checkpoint.meta.configText != nil,
            sha256: checkpoint.sha256, pipeline: pipeline, pipelineProblem: problem)
    }

    /// "<head> on <backbone>" from key names, or "unknown".
    static func architecture(_ keys: Set<String>, shapes: [String: [Int]]) -> String {
        func has(_ prefix: String) -> Bool { keys.contains { $0.hasPrefix(prefix) } }
        if has("body.stage16.") && has("decoder.head16.") {
            return "RegSeg (exp48 body, decoder26)"
        }
        var backbone = "unknown backbone"
        if has("backbone.stem.0.") || has("backbone.conv1.") {
            let variant = has("backbone.stem.0.") ? "ResNetV1c" : "ResNet (V1b)"
            let blocks = Set(keys.compactMap { key -> Int? in
                guard key.hasPrefix("backbone.layer3.") else { return nil }
                return Int(key.dropFirst("backbone.layer3.".count).prefix { $0.isNumber })
            }).count
            let bottleneck = has("backbone.layer1.0.conv3.")
            let depth: String = switch (blocks, bottleneck) {
            case (2, false): "18"
            case (6, false): "34"
            case (6, true): "50"
            case (23, true): "101"
            case (36, true): "152"
            default: "?"
            }
            backbone = "\(variant)-\(depth)"
        }
        let neck = has("neck.dilation_layers.") ? " + JPU neck" : ""
        let head: String
        if has("decode_head.c1_bottleneck.") && has("decode_head.aspp_modules.") {
            head = "DeepLabV3+ (DepthwiseSeparableASPPHead)"
        } else if has("decode_head.aspp_modules.") {
            head = "DeepLabV3 (ASPPHead)"
        } else if has("decode_head.psp_modules.") {
            head = "PSPNet (PSPHead)"
        } else if has("decode_head.enc_module.") {
            head = "EncNet (EncHead)"
        } else if has("decode_head.convs.") || has("decode_head.conv_seg.") {
            head = "FCN (FCNHead)"
        } else {
            head = "unknown head"
        }
        return neck.isEmpty ? "\(head) on \(backbone)" : "FastFCN: \(head) on \(backbone)\(neck)"
    }

    static func numClasses(_ shapes: [String: [Int]]) -> Int? {
        (shapes["decode_head.conv_seg.weight"] ?? shapes["decoder.classifier.weight"])?.first
    }

    /// A human-readable summary.
    public static func describe(_ r: CheckpointReport) -> String {
        var lines = [r.path]
        func row(_ key: String, _ value: String) {
            lines.append("  " + key.padding(toLength: 14, withPad: " ", startingAt: 0) + value)
        }
        row("format", r.format)
        if let sha = r.sha256 { row("sha256", sha) }
        row("tensors", "\(r.tensorCount)")
        row("parameters", "\(r.parameterCount) (\(r.inferenceParameterCount) used at inference)")
        row("architecture", r.architecture)
        if let n = r.numClasses { row("classes", "\(n)") }
        if let classes = r.classes {
            for (i, name) in classes.enumerated() {
                let colour = r.palette.flatMap { i < $0.count ? " rgb(\($0[i].map(String.init).joined(separator: ", ")))" : nil }
                row("  \(i)", name + (colour ?? ""))
            }
        } else {
            row("class names", "none in the checkpoint (the pipeline's are used)")
        }
        if let pipeline = r.pipeline {
            do {
                let yaml = try YAMLEncoder().encode(pipeline)
                row("pipeline", "what 'aerialseg run --checkpoint \(r.path)' runs (from meta.cfg):")
                lines += yaml.split(separator: "\n").map { "    " + $0 }
            } catch {
                row("pipeline", "cannot be shown as YAML: \(error)")
            }
        } else if let problem = r.pipelineProblem {
            row("pipeline", "none from the checkpoint alone: \(problem)")
        }
        return lines.joined(separator: "\n")
    }
}
