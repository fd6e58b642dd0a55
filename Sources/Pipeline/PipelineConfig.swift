import Foundation
import Limits
import SegCore
import Yams

/// A pipeline file (`Pipelines/*.yaml`): the model (mmseg field names), its classes and palette,
/// how raster bands become the network input, and how the image is tiled.
///
/// Every field but `model` has a default, documented on it. Keys are snake_case, as in mmseg configs.
public struct PipelineConfig: Codable, Sendable {
    /// A name for reports; defaults to the file stem.
    public var name: String?
    /// The mmseg config this pipeline transcribes (documentation only).
    public var mmsegConfig: String?
    /// The network, with mmsegmentation's own field names (`backbone`, `neck`, `decode_head`, ...).
    public var model: ModelConfig
    /// Class names in label order; the checkpoint's meta wins when it has some.
    public var classes: [String]?
    /// One `[r, g, b]` per class; the checkpoint's meta wins when it has one.
    public var palette: [[Int]]?
    /// How raster bands become the network input. Default: bands 1,2,3 as RGB, values used as read,
    /// the model's `data_preprocessor` mean/std.
    public var input: InputConfig?
    /// Sliding-window settings. Default: 512 crops, stride 341 (⅔ of the crop), mean blending.
    public var tiling: TilingConfig?
    /// Polygons of the labels: when present, `aerialseg run` also writes `<stem>.vectors.<format>`.
    /// Default: absent (no vectors).
    public var vectors: VectorsConfig?
    /// The model's weights (.pth or .safetensors): a path relative to the pipeline file, or absolute.
    /// `--checkpoint` overrides it. Default: none, and then `run` and `serve` refuse to start unless
    /// given `--checkpoint` (or `--random-weights`, for tests and benchmarks).
    public var checkpoint: String?
    /// SHA-256 of the checkpoint file (64 hex digits, as `sha256sum` prints), checked before the run.
    /// Default: not checked. Ignored when `--checkpoint` names another file.
    public var checkpointSHA256: String?
    /// The arithmetic of the convolutions: `f32` (default, mmseg parity) or `bf16` (faster on CPUs
    /// with AVX512-BF16; see README "Precision"). `--precision` overrides it.
    public var precision: Precision?
    /// The pipeline file this was loaded from (not a YAML key); relative `checkpoint` paths resolve
    /// against its folder.
    public var sourcePath: String?

    /// In the order pipeline files list them (`import-config` writes them so).
    enum CodingKeys: String, CodingKey {
        case name
        case mmsegConfig = "mmseg_config"
        case checkpoint
        case checkpointSHA256 = "checkpoint_sha256"
        case model, classes, palette, input, tiling, vectors, precision
    }

    /// `checkpoint` as a path usable from the current directory (relative to the pipeline file).
    public var resolvedCheckpoint: String? {
        guard let checkpoint else { return nil }
        if checkpoint.hasPrefix("/") { return checkpoint }
        let folder = sourcePath.map { ($0 as NSString).deletingLastPathComponent } ?? ""
        return folder.isEmpty ? checkpoint : (folder as NSString).appendingPathComponent(checkpoint)
    }

    /// Raster bands → network input: bands are read, scaled (`scale`), invalid pixels filled
    /// (`nodata_fill`), then normalised with `(x - mean) / std`.
    public struct InputConfig: Codable, Sendable {
        /// 1-based raster bands read, in the order the model expects them; as many as the model's input
        /// channels (the backbone's `in_channels`). Three bands are taken as R, G, B (reversed for a
        /// BGR-trained model); other counts go in as listed. Default [1, 2, 3].
        public var bands: [Int]?
        /// Per-channel mean and std on scaled values (after band selection). Default: the model's
        /// `data_preprocessor`, else mmseg's ImageNet values.
        public var mean: [Double]?
        public var std: [Double]?
        /// How raster values map onto the model's range (`none`, `{from: .., to: ..}`,
        /// `{percentile: .., to: ..}`). Default `none`: values used as read.
        public var scale: InputScale?
        /// The value invalid pixels (nodata, alpha, mask, NaN, ±Inf) get in the network input, after
        /// scaling. Default: none set — nodata and masked pixels keep their stored values (scaled like
        /// the others), non-finite ones are 0 before scaling. They are labelled 255 either way.
        public var nodataFill: Double?

        enum CodingKeys: String, CodingKey {
            case bands, mean, std, scale
            case nodataFill = "nodata_fill"
        }

        public init(bands: [Int]? = nil, mean: [Double]? = nil, std: [Double]? = nil, scale: InputScale? = nil,
                    nodataFill: Double? = nil) {
            self.bands = bands
            self.mean = mean
            self.std = std
            self.scale = scale
            self.nodataFill = nodataFill
        }
    }

    /// Sliding windows.
    public struct TilingConfig: Codable, Sendable {
        /// Crop size in pixels (square). Default 512.
        public var crop: Int?
        /// Step between windows. Default ⅔ of the crop, rounded down.
        public var stride: Int?
        /// `mean` (mmseg's plain average) or `hann`. Default `mean`.
        public var blend: String?
    }

    /// The `vectors:` block: how `aerialseg run` polygonizes its labels (as `aerialseg vectorize`).
    public struct VectorsConfig: Codable, Sendable {
        /// `gpkg`, `shp` or `geojson`. Default `gpkg`.
        public var format: String?
        /// Regions smaller than this many map units² merge into their largest neighbour first. Default: none.
        public var minArea: Double?
        /// Topology-preserving simplification tolerance in map units. Default: none.
        public var simplify: Double?
        /// 4 or 8 (pixels joined through corners too). Default 4.
        public var connectivity: Int?
        /// Class ids not written as polygons (nodata, 255, never is). Default: none.
        public var exclude: [Int]?

        enum CodingKeys: String, CodingKey {
            case format, simplify, connectivity, exclude
            case minArea = "min_area"
        }

        public init(format: String? = nil, minArea: Double? = nil, simplify: Double? = nil,
                    connectivity: Int? = nil, exclude: [Int]? = nil) {
            self.format = format
            self.minArea = minArea
            self.simplify = simplify
            self.connectivity = connectivity
            self.exclude = exclude
        }
    }

    /// Largest pipeline file read: 1 MiB (the seed pipelines are under 2 KiB; YAML takes ~20× its
    /// size in memory while decoding, so a 50 MB file would take a GiB).
    public static let maxFileBytes = 1 << 20

    /// Loads and validates a pipeline file.
    public static func load(path: String) throws -> PipelineConfig {
        let data = try readConfigFile(path, limit: maxFileBytes, kind: "pipeline file")
        var config = try decode(data, path: path)
        if config.name == nil { config.name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension }
        config.sourcePath = path
        try config.validate(path: path)
        return config
    }

    /// Decodes pipeline YAML (not yet validated); errors name `path`. The entry point for bytes that
    /// come from elsewhere than a file (the fuzzer, a request).
    public static func decode(_ data: Data, path: String) throws -> PipelineConfig {
        do {
            return try YAMLDecoder().decode(PipelineConfig.self, from: data)
        } catch DecodingError.dataCorrupted(let context) where context.underlyingError != nil {
            throw PipelineError(path: path, reason: "malformed YAML: \(oneLine(context.underlyingError!))",
                                hint: "check indentation and quoting")
        } catch let error as DecodingError {
            throw PipelineError(path: path, reason: "invalid pipeline: \(describe(error))",
                                hint: "see the pipeline schema in README.md")
        } catch {
            throw PipelineError(path: path, reason: "malformed YAML: \(oneLine(error))", hint: "check indentation and quoting")
        }
    }

    /// Rejects inconsistent settings before any work starts.
    public func validate(path: String) throws {
        func fail(_ reason: String, _ hint: String) -> PipelineError { PipelineError(path: path, reason: reason, hint: hint) }
        if let classes, let palette, classes.count != palette.count {
            throw fail("\(classes.count) classes but \(palette.count) palette colours", "give one [r, g, b] per class")
        }
        if let palette, palette.contains(where: { $0.count != 3 || $0.contains { !(0...255).contains($0) } }) {
            throw fail("palette entries must be [r, g, b] with values 0...255", "e.g. [0, 128, 0]")
        }
        let bands = input?.bands ?? [1, 2, 3]
        if bands.isEmpty || bands.contains(where: { $0 < 1 }) {
            throw fail("input bands \(bands) must be 1-based band numbers", "e.g. bands: [1, 2, 3]")
        }
        for (name, values) in [("mean", input?.mean), ("std", input?.std)] {
            if let values, values.count != bands.count {
                throw fail("input \(name) has \(values.count) values for \(bands.count) bands", "one value per band")
            }
        }
        if let std = input?.std, std.contains(where: { $0 <= 0 }) { throw fail("input std must be positive", "") }
        if let problem = input?.scale?.problem {
            throw fail(problem, "e.g. scale: {from: [0, 10000], to: [0, 255]} or {percentile: [2, 98], to: [0, 255]}")
        }
        if let fill = input?.nodataFill, !fill.isFinite {
            throw fail("input nodata_fill \(fill) must be a finite number", "e.g. nodata_fill: 0")
        }
        try checkSizes(path: path)
        let crop = tiling?.crop ?? 512
        if crop < 32 { throw fail("crop \(crop) is smaller than 32 pixels", "use 512 or 896") }
        if let stride = tiling?.stride, stride <= 0 || stride > crop {
            throw fail("stride \(stride) must be in 1...\(crop) (the crop)", "windows must overlap or touch")
        }
        if let blend = tiling?.blend, !["mean", "hann"].contains(blend) {
            throw fail("unknown blend '\(blend)'", "use mean or hann")
        }
        if let vectors { try vectors.validate(fail) }
        if let checkpoint, checkpoint.isEmpty { throw fail("checkpoint is empty", "give a .pth or .safetensors path") }
        if let sha = checkpointSHA256 {
            guard sha.count == 64, sha.allSatisfy(\.isHexDigit) else {
                throw fail("checkpoint_sha256 '\(sha.prefix(80))' is not 64 hex digits", "use the output of sha256sum FILE")
            }
            guard checkpoint != nil else {
                throw fail("checkpoint_sha256 without checkpoint", "name the file it belongs to with checkpoint:")
            }
        }
        if model.decodeHead == nil && !model.isRegSeg {
            throw fail("model has no decode_head", "transcribe the mmseg config's model dict")
        }
    }
}

extension PipelineConfig {
    /// Largest crop a pipeline or `--crop` may give: 8192² pixels through any seed model need tens of
    /// GiB; the memory budget then decides for the model at hand (`SegmentationJob.checkMemory`).
    public static let maxCrop = 8192

    /// Class counts and the crop against their limits, before anything is sized by them.
    func checkSizes(path: String) throws {
        let limit = SegmentationModel.maxClasses
        let why = "labels are 8-bit with 255 as nodata"
        let counts = [("num_classes", model.numClasses), ("decode_head.num_classes", model.decodeHead?.numClasses),
                      ("classes", classes?.count), ("palette", palette?.count)]
        for case let (field, count?) in counts {
            try SizeLimitError.check(count, atMost: limit, what: field, path: path, reason: why,
                                     hint: "a model with more classes cannot be run")
        }
        if let crop = tiling?.crop {
            try SizeLimitError.check(crop, atMost: Self.maxCrop, what: "tiling.crop", path: path,
                                     reason: "a crop goes through the model whole",
                                     hint: "mmseg models are trained on 512–1024 crops; use one of those")
        }
    }
}

extension PipelineConfig.VectorsConfig {
    func validate(_ fail: (String, String) -> PipelineError) throws {
        if let format, !["gpkg", "shp", "geojson"].contains(format.lowercased()) {
            throw fail("vectors: unknown format '\(format)'", "use gpkg, shp or geojson")
        }
        if let minArea, !(minArea > 0 && minArea.isFinite) {
            throw fail("vectors: min_area \(minArea) must be positive", "an area in map units², e.g. 10")
        }
        if let simplify, !(simplify >= 0 && simplify.isFinite) {
            throw fail("vectors: simplify \(simplify) must be zero or positive", "a distance in map units, e.g. 0.5")
        }
        if let connectivity, connectivity != 4 && connectivity != 8 {
            throw fail("vectors: connectivity \(connectivity) must be 4 or 8",
                       "4 joins pixels by edges, 8 also by corners")
        }
        if let exclude, exclude.contains(where: { !(0...255).contains($0) }) {
            throw fail("vectors: exclude \(exclude) must list class ids 0...255", "e.g. exclude: [0]")
        }
    }
}

extension PipelineConfig {
    /// Runs `body` (building this pipeline's model) with SegCore's `ModelConfigError`, which knows no
    /// file ("model config: ..."), turned into a `PipelineError` naming the pipeline file.
    public func namingModelErrors<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ModelConfigError {
            throw PipelineError(path: sourcePath ?? name ?? "pipeline", reason: "model: \(error.reason)",
                                hint: error.hint)
        }
    }
}

/// The bytes of a small text file (a pipeline, a class list), refused before reading when larger
/// than `limit` (the file's size is checked first, so a huge file is never loaded).
func readConfigFile(_ path: String, limit: Int, kind: String) throws -> Data {
    let attributes = try? FileManager.default.attributesOfItem(atPath: path)  // nil: reported just below
    guard let size = attributes?[.size] as? Int, let handle = FileHandle(forReadingAtPath: path) else {
        throw PipelineError(path: path, reason: "cannot read the \(kind)", hint: "check the path")
    }
    defer { try? handle.close() }  // read-only: closing cannot lose data
    try SizeLimitError.check(size, atMost: limit, what: "size in bytes", path: path,
                             reason: "a \(kind) is a few KiB", hint: "is it the right file?")
    do {
        return try handle.readToEnd() ?? Data()
    } catch {
        throw PipelineError(path: path, reason: "cannot read the \(kind): \(oneLine(error))", hint: "check the path")
    }
}


/// A DecodingError in words: which key, what was wrong.
func describe(_ error: DecodingError) -> String {
    func path(_ context: DecodingError.Context) -> String {
        let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        return keys.isEmpty ? "top level" : keys.joined(separator: ".")
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "missing key '\(key.stringValue)' at \(path(context))"
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
        return "\(path(context)): \(context.debugDescription)"
    @unknown default:
        return oneLine(error)
    }
}
