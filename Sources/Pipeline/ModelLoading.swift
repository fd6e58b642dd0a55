import Foundation
import SegCore

/// Where a model's weights come from. There is no silent default: a job names a checkpoint, or
/// asks for random weights explicitly (tests and benchmarks).
public enum WeightsSource: Sendable, Equatable {
    /// A checkpoint file; when `expectedSHA256` is given the file's content must have that digest.
    case checkpoint(path: String, expectedSHA256: String?)
    /// Random weights of the right shapes (deterministic), for tests and benchmarks only.
    case random

    /// `--random-weights`, else `--checkpoint`, else the pipeline's `checkpoint:` (with its
    /// `checkpoint_sha256:`); throws when none names weights.
    public static func resolve(pipeline: PipelineConfig, checkpoint override: String?,
                               randomWeights: Bool) throws -> WeightsSource {
        if randomWeights {
            if let override {
                throw PipelineError(path: override, reason: "--checkpoint and --random-weights exclude each other",
                                    hint: "give one of them")
            }
            return .random
        }
        if let override { return .checkpoint(path: override, expectedSHA256: nil) }
        if let path = pipeline.resolvedCheckpoint {
            return .checkpoint(path: path, expectedSHA256: pipeline.checkpointSHA256?.lowercased())
        }
        throw PipelineError(path: pipeline.sourcePath ?? "pipeline", reason: "the pipeline names no weights",
                            hint: "add 'checkpoint: FILE' to it or pass --checkpoint FILE; "
                                + "--random-weights is for tests and benchmarks only")
    }

    /// The one-line notice shown (and written into the outputs' metadata) for random weights.
    public static let randomNotice =
        "--random-weights: the model has random weights, so its outputs are meaningless (for tests and benchmarks only)"
}

/// The network a job runs on: oneDNN (fast, default) or the reference im2col + OpenBLAS backend
/// (the test oracle).
public enum ComputeBackend: String, Sendable, Codable, CaseIterable {
    case onednn, reference
}

/// A pipeline's model with weights, classes and palette resolved.
/// The convolutions' arithmetic (SegCore's), named here for the CLI and the server.
public typealias Precision = SegCore.Precision

public struct LoadedModel: Sendable {
    public let model: SegmentationModel
    public let classes: [String]
    public let palette: [[Int]]
    /// Notices for the user (random weights, widths taken from the checkpoint, ...).
    public var notices: [String]
    public let weights: WeightsSource
    /// SHA-256 of the checkpoint's bytes; nil for random weights.
    public let checkpointSHA256: String?

    /// What the weights are ("random" or the checkpoint's file name), for reports.
    public var weightsLabel: String {
        switch weights {
        case .random: return "random"
        case .checkpoint(let path, _): return (path as NSString).lastPathComponent
        }
    }

    /// Provenance written into every output's metadata (`AERIALSEG_WEIGHTS`).
    public var weightsMetadata: String {
        switch weights {
        case .random: return "random: " + WeightsSource.randomNotice
        case .checkpoint: return "\(weightsLabel) sha256:\(checkpointSHA256 ?? "?")"
        }
    }
}

public enum ModelLoading {
    /// Builds the pipeline's model on `backend` with the weights `weights` names.
    ///
    /// The pipeline fixes the architecture. A checkpoint whose widths, class count or input
    /// channels differ (a fine-tuned or narrower model of the same architecture) is built with the
    /// checkpoint's, and one notice lists each field that changed; a checkpoint that does not fit
    /// the architecture is one error naming the first key that disagrees, with both shapes.
    /// Classes and palette come from the checkpoint's meta when present, else from the pipeline,
    /// else are generated. `preloaded` avoids reading a checkpoint twice when the caller has it.
    public static func load(_ pipeline: PipelineConfig, weights source: WeightsSource, backend: ComputeBackend,
                            threads: Int = 2, precision: Precision = .f32,
                            preloaded: Checkpoint? = nil) throws -> LoadedModel {
        switch backend {
        case .reference:
            var loaded = try load(pipeline, weights: source, on: { ReferenceBackend() }, preloaded: preloaded)
            if precision == .bf16 { loaded.notices.append(bf16Notice("the reference backend computes in f32")) }
            return loaded
        case .onednn:
            var loaded = try load(pipeline, weights: source, on: { try FastBackend(threads: threads, precision: precision) },
                                  preloaded: preloaded)
            if precision == .bf16, !FastBackend.cpuHasBF16 {
                loaded.notices.append(bf16Notice("this CPU has no AVX512-BF16 or AMX (oneDNN's ISA detection)"))
            }
            return loaded
        }
    }

    /// The one line said when bf16 was asked for and f32 runs instead.
    static func bf16Notice(_ why: String) -> String { "--precision bf16: \(why); running f32" }

    /// `load` on any backend (`bench` wraps one in a convolution counter); `makeBackend` is called
    /// once per build attempt.
    public static func load<B: Backend>(_ pipeline: PipelineConfig, weights source: WeightsSource,
                                        on makeBackend: () throws -> B,
                                        preloaded: Checkpoint? = nil) throws -> LoadedModel {
        var notices: [String] = []
        var meta = CheckpointMeta()
        var digest: String?
        let weights: [String: Tensor]
        switch source {
        case .random:
            weights = try SegmentationModel.randomWeights(config: pipeline.model, seed: 0)
            notices.append(WeightsSource.randomNotice)
        case .checkpoint(let path, let expected):
            let checkpoint = try preloaded ?? Checkpoint.load(path: path)
            digest = checkpoint.sha256
            if let expected, expected != digest {
                throw PipelineError(path: path, reason: "SHA-256 \(digest ?? "?") differs from the pipeline's "
                                        + "checkpoint_sha256 \(expected)",
                                    hint: "the file changed or is another checkpoint; fix the file or the pipeline")
            }
            meta = checkpoint.meta
            weights = checkpoint.floatTensors()
        }
        let checkpointPath: String? = if case .checkpoint(let path, _) = source { path } else { nil }
        func build(_ config: ModelConfig) throws -> SegmentationModel {
            try SegmentationModel(config: config, weights: weights, backend: try makeBackend())
        }
        let model: SegmentationModel
        do {
            model = try build(pipeline.model)
        } catch let error where checkpointPath != nil && (error is WeightError || error is ModelConfigError) {
            // Same architecture with other widths? Let the checkpoint's shapes give every width.
            let free: SegmentationModel
            do {
                free = try build(pipeline.model.withoutWidths())
            } catch let misfit as WeightError {
                throw PipelineError(path: checkpointPath!, reason: "does not fit the pipeline's model: \(misfit.detail)",
                                    hint: "is it the pipeline's architecture (depth, head type)?")
            } catch {
                throw PipelineError(path: checkpointPath!, reason: "does not fit the pipeline's model: \(error)",
                                    hint: "is it the pipeline's architecture (depth, head type)?")
            }
            model = free
            let changes = pipeline.model.declaredWidths.compactMap { field, declared -> String? in
                guard let actual = free.inferredWidths[field], actual != declared else { return nil }
                return "\(field) \(declared) → \(actual)"
            }.sorted()
            notices.append("the checkpoint's widths differ from the pipeline's; using the checkpoint's: "
                           + (changes.isEmpty ? "\(error)" : changes.joined(separator: ", ")))
        }
        let n = model.numClasses
        var classes = meta.classes ?? pipeline.classes ?? []
        if classes.count != n {
            if !classes.isEmpty { notices.append("\(classes.count) class names for \(n) classes; using class_<i>") }
            classes = (0..<n).map { "class_\($0)" }
        }
        var palette = meta.palette ?? pipeline.palette ?? []
        if palette.count != n { palette = generatedPalette(n) }
        return LoadedModel(model: model, classes: classes, palette: palette, notices: notices, weights: source,
                           checkpointSHA256: digest)
    }

    /// mmseg's fallback palette idea: distinct, reproducible colours.
    static func generatedPalette(_ n: Int) -> [[Int]] {
        var state: UInt64 = 0x5EED
        return (0..<n).map { _ in
            (0..<3).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Int(state >> 56)
            }
        }
    }
}

extension WeightError {
    /// The description without the generic hint (the caller adds its own).
    var detail: String {
        let text = description
        guard let cut = text.range(of: " (the checkpoint does not match") else { return text }
        return String(text[..<cut.lowerBound])
    }
}

extension ModelConfig {
    /// The same architecture with every channel width, class count and input channel count left
    /// to the checkpoint.
    func withoutWidths() -> ModelConfig {
        var c = self
        c.numClasses = nil
        c.backbone?.stemChannels = nil
        c.backbone?.baseChannels = nil
        c.backbone?.inChannels = nil
        c.neck?.inChannels = nil
        c.neck?.midChannels = nil
        c.decodeHead?.inChannels = nil
        c.decodeHead?.channels = nil
        c.decodeHead?.c1InChannels = nil
        c.decodeHead?.c1Channels = nil
        c.decodeHead?.numClasses = nil
        return c
    }

    /// The widths this description states, or implies through mmseg's defaults, by the field
    /// names `SegmentationModel.inferredWidths` uses.
    var declaredWidths: [String: Int] {
        var out: [String: Int] = [:]
        if let b = backbone {
            out["backbone.in_channels"] = b.inChannels ?? 3
            out["backbone.stem_channels"] = b.stemChannels ?? 64
            out["backbone.base_channels"] = b.baseChannels ?? 64
        }
        if let mid = neck?.midChannels { out["neck.mid_channels"] = mid }
        if let channels = decodeHead?.channels { out["decode_head.channels"] = channels }
        if let c1 = decodeHead?.c1InChannels { out["decode_head.c1_in_channels"] = c1 }
        if let c1 = decodeHead?.c1Channels { out["decode_head.c1_channels"] = c1 }
        if let classes = decodeHead?.numClasses ?? numClasses { out["num_classes"] = classes }
        return out
    }
}
