import Foundation
import SegCore

/// A pipeline's model with weights, classes and palette resolved.
public struct LoadedModel: Sendable {
    public let model: SegmentationModel
    public let classes: [String]
    public let palette: [[Int]]
    /// Notices for the user (e.g. widths taken from the checkpoint).
    public let notices: [String]
    /// What the weights are ("random" or the checkpoint's file name), for reports and resume keys.
    public let weightsLabel: String
}

public enum ModelLoading {
    /// Builds the pipeline's model on `backend` ("onednn" or "reference") with the checkpoint's
    /// weights, or random weights of the right shapes when `checkpoint` is nil.
    ///
    /// The pipeline fixes the architecture; when a fine-tuned checkpoint has other channel widths or
    /// class count, they are taken from the checkpoint (with a notice). Classes and palette come from
    /// the checkpoint's meta when present, else from the pipeline, else are generated.
    public static func load(_ pipeline: PipelineConfig, checkpoint: String?, backend: String,
                            threads: Int = 2) throws -> LoadedModel {
        var notices: [String] = []
        var meta = CheckpointMeta()
        let weights: [String: Tensor]
        if let checkpoint {
            let loaded = try Checkpoint.load(path: checkpoint)
            meta = loaded.meta
            weights = loaded.floatTensors()
        } else {
            weights = try SegmentationModel.randomWeights(config: pipeline.model, seed: 0)
            notices.append("no --checkpoint: using random weights (for benchmarks and tests only)")
        }
        func build(_ config: ModelConfig) throws -> SegmentationModel {
            switch backend {
            case "reference": return try SegmentationModel(config: config, weights: weights, backend: ReferenceBackend())
            case "onednn":
                return try SegmentationModel(config: config, weights: weights, backend: try FastBackend(threads: threads))
            default:
                throw PipelineError(path: backend, reason: "unknown backend", hint: "use onednn or reference")
            }
        }
        func misfit(_ error: WeightError) -> PipelineError {
            PipelineError(path: checkpoint ?? "weights", reason: "the checkpoint does not fit the model: \(error)",
                          hint: "is it the pipeline's architecture?")
        }
        let model: SegmentationModel
        do {
            model = try build(pipeline.model)
        } catch let error as WeightError where error.kind == .mismatchedSize && checkpoint != nil {
            // A fine-tuned checkpoint: same architecture, other widths or class count.
            do {
                model = try build(pipeline.model.withoutWidths())
            } catch is WeightError {
                throw misfit(error)
            }
            notices.append("the checkpoint's widths or class count differ from the pipeline (\(error.key)); "
                           + "using the checkpoint's")
        } catch let error as WeightError {
            throw misfit(error)
        }
        let n = model.numClasses
        var classes = meta.classes ?? pipeline.classes ?? []
        if classes.count != n {
            if !classes.isEmpty { notices.append("\(classes.count) class names for \(n) classes; using class_<i>") }
            classes = (0..<n).map { "class_\($0)" }
        }
        var palette = meta.palette ?? pipeline.palette ?? []
        if palette.count != n { palette = generatedPalette(n) }
        return LoadedModel(model: model, classes: classes, palette: palette, notices: notices,
                           weightsLabel: checkpoint.map { ($0 as NSString).lastPathComponent } ?? "random")
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

extension ModelConfig {
    /// The same architecture with every channel width and class count left to the checkpoint.
    func withoutWidths() -> ModelConfig {
        var c = self
        c.numClasses = nil
        c.backbone?.stemChannels = nil
        c.backbone?.baseChannels = nil
        c.neck?.inChannels = nil
        c.neck?.midChannels = nil
        c.decodeHead?.inChannels = nil
        c.decodeHead?.channels = nil
        c.decodeHead?.c1InChannels = nil
        c.decodeHead?.c1Channels = nil
        c.decodeHead?.numClasses = nil
        return c
    }
}
