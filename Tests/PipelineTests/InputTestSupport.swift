import Foundation
import GeoIO
import Pipeline
import SegCore
import Testing
import TestSupport

/// A temporary folder for the input tests: derived rasters (made with GDAL's own tools), small
/// pipelines, and in-process `aerialseg run` jobs on them.
struct InputWorkspace {
    let dir: URL

    init(_ label: String) { dir = Fixtures.temporaryDirectory("aerialseg-\(label)") }

    /// A Python with numpy and osgeo.gdal (python3-gdal, installed by `.ci/setup`), or nil.
    static let python: String? = NumpyOracle.python

    /// Runs a Python script (`sys.argv[1...]` = `arguments`) with numpy and osgeo.gdal; returns its stdout.
    @discardableResult
    func python(_ script: String, _ arguments: [String]) throws -> String {
        try tool(try #require(Self.python), ["-c", script] + arguments)
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Runs a GDAL (or other) command-line tool; it must succeed.
    @discardableResult
    func tool(_ name: String, _ arguments: [String]) throws -> String {
        let result = try Tool.run(name, arguments)
        try #require(result.status == 0, "\(name) \(arguments): \(result.stderr)")
        return result.stdout
    }

    /// `gdal_translate -q ARGS SOURCE NAME` into the folder; returns the new file's path.
    func translate(_ source: String, to name: String, _ arguments: [String]) throws -> String {
        try tool("gdal_translate", ["-q"] + arguments + [source, path(name)])
        return path(name)
    }

    /// A `size`² piece of the local 8-bit orthophoto (2048², blank white in its lower-left half), from
    /// its busy upper-right part; every run test starts from it.
    func ortho(size: Int = 512) throws -> String {
        let (x, y) = (min(1400, 2048 - size), min(64, 2048 - size))
        return try translate(Fixtures.local("rasters/ortho_10cm.tif").path, to: "ortho\(size).tif",
                             ["-srcwin", "\(x)", "\(y)", "\(size)", "\(size)"])
    }

    /// Band-sequential values of a raster (all bands), read back through `gdal_translate -of ENVI`.
    func raw<T>(_ raster: String, as type: T.Type) throws -> [T] {
        let out = path(UUID().uuidString + ".raw")
        try tool("gdal_translate", ["-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ", raster, out])
        return try Data(contentsOf: URL(fileURLWithPath: out)).withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }

    /// Per-channel mean and std for `channels` inputs: mmseg's ImageNet values, then 110 / 57.
    static func normalisation(_ channels: Int) -> (mean: [Double], std: [Double]) {
        let mean = [123.675, 116.28, 103.53] + Array(repeating: 110, count: max(0, channels - 3))
        let std = [58.395, 57.12, 57.375] + Array(repeating: 57, count: max(0, channels - 3))
        return (Array(mean.prefix(channels)), Array(std.prefix(channels)))
    }

    /// A pipeline with the small fixture model (DeepLabV3+ R-18 at 1/16 widths) taking `channels`
    /// input channels, the given `input:` block (a YAML flow mapping) and one mean-blended tiling.
    func pipeline(channels: Int = 3, input: String? = nil, crop: Int = 256, stride: Int = 192) throws -> String {
        let json = try OracleFixture.small().json
        var backbone = try #require(json["backbone"] as? [String: Any])
        backbone["in_channels"] = channels
        let (mean, std) = Self.normalisation(channels)
        let model: [String: Any] = ["backbone": backbone, "decode_head": json["decode_head"] as Any,
                                    "data_preprocessor": ["mean": mean, "std": std, "bgr_to_rgb": true]]
        var yaml = "model: " + String(decoding: try JSONSerialization.data(withJSONObject: model), as: UTF8.self)
            + "\ntiling: {crop: \(crop), stride: \(stride), blend: mean}\n"
        if let input { yaml += "input: \(input)\n" }
        let file = path("pipeline-\(UUID().uuidString.prefix(8)).yaml")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The small fixture model's checkpoint (3 input channels). With random weights that model
    /// labels the orthophoto all alike, which would make label comparisons prove little.
    static let checkpoint = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam/checkpoint.pth").path

    /// `aerialseg run`'s job on `input`, in-process, with `checkpoint` or else the model's random
    /// weights (the one place to adapt when random weights need an explicit setting). Returns the
    /// labels and float32 confidence read back from the COGs, the result, and the job (for its model).
    func run(_ pipeline: String, _ input: String, bands: [Int]? = nil, checkpoint: String? = nil) throws
        -> (labels: [UInt8], confidence: [Float], result: RunResult, job: SegmentationJob)
    {
        let out = path("out-\(UUID().uuidString.prefix(8))")
        var options = RunOptions(pipeline: try PipelineConfig.load(path: pipeline), outputDirectory: out)
        options.checkpoint = checkpoint
        options.randomWeights = checkpoint == nil
        options.bands = bands
        options.preview = .none
        options.confidence = .float32
        let job = try SegmentationJob(options: options)
        let result = try job.run(input: input)
        let names = job.outputNames(for: input)
        let labels = try readAll("\(out)/\(names.labels)").map { UInt8($0) }
        return (labels, try readAll("\(out)/\(names.confidence)"), result, job)
    }
}

/// Labels of `logits` (1, C, H, W) and, per pixel, the max softmax probability and the margin
/// between the two best logits.
func labelsAndMargins(_ logits: Tensor) -> (labels: [UInt8], probabilities: [Float], margins: [Float]) {
    let classes = logits.shape[1], n = logits.shape[2] * logits.shape[3]
    let stats = softmaxStats(logits.data, classes: classes)
    precondition(stats.count == n)
    return (stats.map { UInt8($0.label) }, stats.map(\.probability), stats.map(\.margin))
}
