import ArgumentParser
import Foundation
import Pipeline

/// `aerialseg bench PIPELINE.yaml [--checkpoint FILE] [--size 512] [--size 896] [--runs N]`
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the segmentation model of a pipeline on square tiles (ms/tile, tiles/s, GFLOP/s, peak memory).")

    @Argument(help: "A pipeline file (Pipelines/*.yaml) describing the model.")
    var pipeline: String

    @Option(help: "Checkpoint with real weights (default: random weights of the right shapes).")
    var checkpoint: String?

    @Option(help: "Tile size in pixels; repeat for several.")
    var size: [Int] = []

    @Option(help: "Timed runs per size (after one warm-up).")
    var runs = 5

    @Option(help: "onednn (fast, default) or reference (im2col + OpenBLAS, the test oracle).")
    var backend = ComputeBackend.onednn

    @Option(help: "Threads.")
    var threads = 2

    @Option(help: "Convolution arithmetic: f32 or bf16 (default: the pipeline's precision:, else f32).")
    var precision: Precision?

    @Flag(help: "Time every convolution: per layer ms, GFLOP/s and the kernel and arithmetic that ran.")
    var profile = false

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if size.contains(where: { $0 < 32 }) { throw ValidationError("--size must be at least 32") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() async throws {
        var options = BenchmarkOptions(pipeline: pipeline)
        options.checkpoint = checkpoint
        options.sizes = size.isEmpty ? [512] : size
        options.runs = runs
        options.backend = backend
        options.threads = threads
        options.precision = precision
        options.profile = profile
        do {
            let results = try Benchmark.run(options)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(results), as: UTF8.self))
            } else {
                for result in results {
                    print(Benchmark.describe(result))
                    if profile { print(Benchmark.describeProfile(result)) }
                }
            }
        } catch {
            throw fail(error)
        }
    }
}
