import Foundation
import Pipeline
import Tiling

/// One model the server offers: a pipeline file and the network built from its `checkpoint:`.
public struct ServedModel: Sendable {
    /// The pipeline file's stem.
    public let name: String
    public let pipeline: PipelineConfig
    /// Loaded once at start; every job and prediction runs on it (its convolutions serialise themselves).
    public let loaded: LoadedModel

    /// `RunOptions` for a job on this model writing into `outputDirectory`, as `aerialseg run` builds them.
    func runOptions(outputDirectory: String, settings: JobSettings, threads: Int) -> RunOptions {
        var options = RunOptions(pipeline: pipeline, outputDirectory: outputDirectory)
        options.tta = settings.tta
        options.blend = settings.blend
        options.confidence = settings.confidence
        options.threads = threads
        if let vectors = settings.vectors {
            options.pipeline.vectors = vectors.config(base: pipeline.vectors)
        }
        return options
    }

    /// What `GET /v1/models` says of the model.
    var summary: ModelSummary {
        let options = RunOptions(pipeline: pipeline, outputDirectory: "")
        let model = pipeline.model
        let parts = [model.backbone.map { "\($0.type)-\($0.depth)" }, model.neck?.type, model.decodeHead?.type]
        let architecture = model.isRegSeg ? "RegSeg" : parts.compactMap { $0 }.joined(separator: " + ")
        return ModelSummary(name: name, architecture: architecture, classes: loaded.classes, palette: loaded.palette,
                            crop: options.resolvedCrop, stride: options.resolvedStride, bands: options.resolvedBands,
                            blend: options.resolvedBlend.rawValue, weights: loaded.weightsLabel,
                            checkpointSHA256: loaded.checkpointSHA256)
    }
}

/// The `GET /v1/models` entry of one model.
struct ModelSummary: Codable, Sendable {
    var name: String
    var architecture: String
    var classes: [String]
    var palette: [[Int]]
    var crop: Int
    var stride: Int
    var bands: [Int]
    var blend: String
    var weights: String
    var checkpointSHA256: String?

    enum CodingKeys: String, CodingKey {
        case name, architecture, classes, palette, crop, stride, bands, blend, weights
        case checkpointSHA256 = "checkpoint_sha256"
    }
}

/// The models of a server, by name, loaded once at start.
public struct ModelRegistry: Sendable {
    public let models: [String: ServedModel]

    /// Loads every pipeline and its weights (the pipeline's `checkpoint:`; a pipeline naming none is
    /// refused with `WeightsSource.resolve`'s error) and checks, as `run` does, that a window through
    /// each model fits the memory budget. Two pipelines with the same stem are refused.
    public static func load(pipelines: [String], threads: Int, precision: Precision? = nil) throws -> ModelRegistry {
        var models: [String: ServedModel] = [:]
        for path in pipelines {
            let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            guard models[name] == nil else {
                throw PipelineError(path: path, reason: "a second model named '\(name)'",
                                    hint: "models are named by their pipeline file's stem; rename one")
            }
            let pipeline = try PipelineConfig.load(path: path)
            let weights = try WeightsSource.resolve(pipeline: pipeline, checkpoint: nil, randomWeights: false)
            let loaded = try ModelLoading.load(pipeline, weights: weights, backend: .onednn, threads: threads,
                                               precision: precision ?? pipeline.precision ?? .f32)
            // Building a job validates the tiling and bands once, at start, and one window through the
            // model must fit the memory budget, as `run` checks before any input.
            try SegmentationJob(options: RunOptions(pipeline: pipeline, outputDirectory: ""), loaded: loaded)
                .checkModelMemory()
            models[name] = ServedModel(name: name, pipeline: pipeline, loaded: loaded)
        }
        return ModelRegistry(models: models)
    }

    public init(models: [String: ServedModel]) { self.models = models }

    /// The model called `name`, or a 404.
    func model(_ name: String) throws -> ServedModel {
        guard let model = models[name] else {
            throw APIError(.notFound, "no model named '\(name)'",
                           hint: "GET /v1/models lists them: " + models.keys.sorted().joined(separator: ", "))
        }
        return model
    }
}
