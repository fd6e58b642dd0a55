import Foundation
import SegCore

/// `aerialseg bench`: time one model on square tiles.
public struct BenchmarkOptions: Sendable {
    /// A pipeline file describing the model.
    public var pipeline: String
    /// Real weights; random weights of the right shapes when nil (labelled so in the report).
    public var checkpoint: String?
    /// Tile sizes (square). Default [512].
    public var sizes: [Int] = [512]
    /// Timed runs per size, after one warm-up run. Default 5.
    public var runs: Int = 5
    /// "onednn" (default) or "reference".
    public var backend = ComputeBackend.onednn
    /// Threads for the fast backend. Default 2.
    public var threads: Int = 2
    /// Overrides the pipeline's `precision:` (default f32).
    public var precision: Precision?
    /// Time every convolution during the timed runs (`--profile`).
    public var profile = false

    public init(pipeline: String) { self.pipeline = pipeline }
}

/// One size's timing.
public struct BenchmarkResult: Codable, Sendable {
    public var model: String
    public var backend: String
    /// The convolutions' arithmetic: "f32", or "bf16" (f32 when the CPU has no bf16).
    public var precision: String = "f32"
    public var weights: String
    public var size: Int
    public var runs: Int
    /// Median and fastest run, milliseconds per tile (whole-tile inference incl. the final resize).
    public var medianMs: Double
    public var minMs: Double
    /// The untimed first tile of this size: primitives created, weights packed for them, memory
    /// touched for the first time (what a one-tile job or a server's first request of a size pays).
    public var firstMs: Double?
    public var tilesPerSecond: Double
    /// Convolution work per tile (2 FLOP per multiply-accumulate) and the rate achieved at the median.
    public var convGFLOP: Double
    public var gflopsPerSecond: Double
    /// Peak resident memory of the process so far.
    public var peakRSSMiB: Double
    /// With `--profile`: every convolution in layer order, per timed run, and the rest of the
    /// forward pass (pooling, resize, concatenation, ...) as the mean run less the convolutions.
    public var profile: [LayerProfile]?
    public var otherMs: Double?
    /// With `--profile` on the fast backend, after the runs: its idle activation arenas, idle
    /// pooled buffers and the convolutions' shared buffers (MiB).
    public var arenasMiB: Double?
    public var pooledMiB: Double?
    public var sharedMiB: Double?
    /// Exact weight copies in the temporary file, and those kept in memory for want of one (MiB).
    public var spilledMiB: Double?
    public var unspilledMiB: Double?
}

/// One convolution of `bench --profile`, averaged over the timed runs.
public struct LayerProfile: Codable, Sendable {
    /// Layer order, kernel and channels ("3×3 s1 d2 512→512"), input and output (C×H×W).
    public var index: Int
    public var layer: String
    public var input: String
    public var output: String
    /// The kernel that ran and its arithmetic ("brgconv:avx512_core, bf16", "…, f32 Winograd").
    public var kernel: String
    public var ms: Double
    /// Direct-convolution work (2 FLOP per multiply-accumulate) and its rate.
    public var gflop: Double
    public var gflopsPerSecond: Double
    /// The layer's reordered weights, and the scratch it asks of the backend's shared buffers
    /// (which are grown to the largest request, so the peak counts the largest, not the sum).
    public var weightsMiB: Double
    public var scratchMiB: Double
}

/// What `bench --profile` reports of one convolution besides its time.
struct ConvKernelReport: Sendable {
    var kernel: String
    var weightBytes: Int
    var scratchBytes: Int
}

public enum Benchmark {
    public static func run(_ options: BenchmarkOptions) throws -> [BenchmarkResult] {
        let config = try PipelineConfig.load(path: options.pipeline)
        // Random weights by default: timing does not depend on the values, and the report says so.
        let weights = options.checkpoint.map { WeightsSource.checkpoint(path: $0, expectedSHA256: nil) } ?? .random
        let name = config.name ?? "model"
        switch options.backend {
        case .reference:
            return try measure(ConvCounter(base: ReferenceBackend()) { conv, _ in
                ConvKernelReport(kernel: "im2col + OpenBLAS, f32", weightBytes: conv.weight.data.count * 4, scratchBytes: 0)
            },
                               config, weights, name, options)
        case .onednn:
            let precision = options.precision ?? config.precision ?? .f32
            let fast = try FastBackend(threads: options.threads, precision: precision)
            let backend = ConvCounter(base: fast) { conv, s in
                let memory = conv.memoryUse(n: s.n, h: s.h, w: s.w)
                return ConvKernelReport(kernel: conv.profileDescription(n: s.n, h: s.h, w: s.w),
                                        weightBytes: memory.weights, scratchBytes: memory.scratch)
            }
            var results = try measure(backend, config, weights, name, options)
            if options.profile, !results.isEmpty {
                let held = fast.heldBytes, mib = 1024.0 * 1024
                results[results.count - 1].arenasMiB = Double(held.arenas) / mib
                results[results.count - 1].pooledMiB = Double(held.pooled) / mib
                results[results.count - 1].sharedMiB = Double(held.shared) / mib
                results[results.count - 1].spilledMiB = Double(held.spilled) / mib
                results[results.count - 1].unspilledMiB = Double(held.unspilled) / mib
            }
            return results
        }
    }

    private static func measure<B: Backend>(
        _ backend: ConvCounter<B>, _ config: PipelineConfig, _ weights: WeightsSource, _ name: String,
        _ options: BenchmarkOptions
    ) throws -> [BenchmarkResult] {
        let loaded = try config.namingModelErrors { try ModelLoading.load(config, weights: weights, on: { backend }) }
        let model = loaded.model
        let weightsLabel = loaded.weightsLabel == "random" ? "random (--checkpoint for real ones)" : loaded.weightsLabel
        for size in options.sizes {  // all sizes up front: refuse before timing any
            try SegmentationModel.checkInferenceMemory(height: size, width: size, classes: model.numClasses,
                                                       path: "--size \(size)")
        }
        var results: [BenchmarkResult] = []
        for size in options.sizes {
            var generator = SplitMix64(seed: UInt64(size))
            let channels = model.inputChannels
            let input = Tensor(shape: [1, channels, size, size],
                               data: (0..<(channels * size * size)).map { _ in Float(generator.nextUnit() * 4 - 2) })
            backend.counter.reset()
            // As `run` does: the logits read where the backend left them, not downloaded into a copy.
            let first = ContinuousClock.now
            _ = try model.withLogits(input) { $0.count }  // warm-up: primitives, caches, first-touch memory
            let firstMs = milliseconds(ContinuousClock.now - first)
            let macs = backend.counter.value
            if options.profile { backend.counter.startProfiling() }
            var times: [Double] = []
            for _ in 0..<max(options.runs, 1) {
                let start = ContinuousClock.now
                _ = try model.withLogits(input) { $0.count }
                times.append(milliseconds(ContinuousClock.now - start))
            }
            times.sort()
            let median = times.count % 2 == 1 ? times[times.count / 2]
                : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            let gflop = 2 * Double(macs) / 1e9
            var result = BenchmarkResult(
                model: name, backend: backend.name, precision: model.precision.rawValue, weights: weightsLabel, size: size, runs: times.count,
                medianMs: median, minMs: times[0], tilesPerSecond: 1000 / median, convGFLOP: gflop,
                gflopsPerSecond: gflop / (median / 1000), peakRSSMiB: peakResidentMiB())
            result.firstMs = firstMs
            if options.profile {
                let runs = Double(times.count)
                let layers = backend.counter.layers.map { t in
                    let ms = t.seconds / runs * 1e3, work = 2 * Double(t.macs) / runs / 1e9
                    let report = backend.describe(t.conv.base, t.input), mib = 1024.0 * 1024
                    return LayerProfile(index: t.conv.index, layer: t.conv.layer,
                                        input: "\(t.input.c)×\(t.input.h)×\(t.input.w)",
                                        output: "\(t.output.c)×\(t.output.h)×\(t.output.w)",
                                        kernel: report.kernel, ms: ms, gflop: work,
                                        gflopsPerSecond: ms > 0 ? work / (ms / 1e3) : 0,
                                        weightsMiB: Double(report.weightBytes) / mib,
                                        scratchMiB: Double(report.scratchBytes) / mib)
                }
                result.profile = layers
                result.otherMs = times.reduce(0, +) / runs - layers.reduce(0) { $0 + $1.ms }
                backend.counter.profile.withLock { $0 = nil }
            }
            results.append(result)
        }
        return results
    }

    /// `--profile`'s table: one line per convolution in layer order, then the rest of the pass.
    public static func describeProfile(_ r: BenchmarkResult) -> String {
        guard let layers = r.profile else { return "" }
        let total = layers.reduce(0) { $0 + $1.ms } + (r.otherMs ?? 0)
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        var lines = [pad("   #", 6) + pad("layer", 24) + pad("input", 15) + pad("output", 15)
                     + "       ms   GFLOP  GFLOP/s  share  weights  scratch  kernel"]
        for l in layers {
            lines.append(String(format: "%4d  ", l.index) + pad(l.layer, 24) + pad(l.input, 15) + pad(l.output, 15)
                         + String(format: "%9.2f %7.2f %8.0f %5.1f%% %6.1fM %7.1fM  ", l.ms, l.gflop,
                                  l.gflopsPerSecond, 100 * l.ms / max(total, 1e-9), l.weightsMiB, l.scratchMiB)
                         + l.kernel)
        }
        let convMs = layers.reduce(0) { $0 + $1.ms }
        lines.append(String(format: "convolutions %.1f ms (%.1f%%), everything else %.1f ms (%.1f%%), mean run %.1f ms",
                            convMs, 100 * convMs / max(total, 1e-9), r.otherMs ?? 0,
                            100 * (r.otherMs ?? 0) / max(total, 1e-9), total))
        lines.append(String(format: "weights %.0f MiB in all; largest scratch %.0f MiB (shared by every layer)",
                            layers.reduce(0) { $0 + $1.weightsMiB }, layers.map(\.scratchMiB).max() ?? 0))
        if let arenas = r.arenasMiB, let pooled = r.pooledMiB, let shared = r.sharedMiB {
            lines.append(String(format: "held after the runs (every size): activation arenas %.0f MiB, pooled buffers "
                                + "%.0f MiB, shared convolution buffers %.0f MiB", arenas, pooled, shared))
        }
        if let spilled = r.spilledMiB, let unspilled = r.unspilledMiB {
            lines.append(String(format: "exact weight copies for new layouts (Winograd and bf16 layers): %.0f MiB in a "
                                + "temporary file, %.0f MiB in memory", spilled, unspilled))
        }
        return lines.joined(separator: "\n")
    }

    /// One line per result.
    public static func describe(_ r: BenchmarkResult) -> String {
        let first = r.firstMs.map { String(format: "; first tile %.0f", $0) } ?? ""
        return String(format: "%@ %d×%d [%@ %@, %@ weights]: %.1f ms/tile (median of %d, min %.1f%@), "
                      + "%.2f tiles/s, %.1f GFLOP conv → %.0f GFLOP/s, peak RSS %.0f MiB",
                      r.model, r.size, r.size, r.backend, r.precision, r.weights, r.medianMs, r.runs, r.minMs, first,
                      r.tilesPerSecond, r.convGFLOP, r.gflopsPerSecond, r.peakRSSMiB)
    }

    private static func milliseconds(_ elapsed: Duration) -> Double {
        Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15
    }
}

/// Peak resident set size of this process's memory in MiB: `VmHWM` of /proc/self/status where
/// there is one. Not `getrusage`: on Linux its `ru_maxrss` keeps the peak of the parent that forked
/// us (a benchmark script holding other runtimes reported its own 1.3 GiB as ours).
func peakResidentMiB() -> Double {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kib = Double(line.split(separator: " ").dropFirst().first ?? "") {
        return kib / 1024
    }
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
