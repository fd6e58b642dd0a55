import Foundation
import SegCore
import TestSupport
import Testing

/// Failures that depend on what a user hands us (image size, model description) come out as thrown
/// errors with a one-line description, never as a trap: on both backends, and through
/// `SegmentationModel` with the input's shape attached.
@Suite("Inference errors")
struct InferenceErrorTests {
    /// The committed DeepLabV3+ fixture's description and weights.
    static func localModel() throws -> (config: ModelConfig, weights: [String: Tensor])? {
        let folder = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")
        let file = folder.appendingPathComponent("weights.safetensors")
        guard FileManager.default.fileExists(atPath: file.path) else {
            print("skipped: \(file.path) is missing")
            return nil
        }
        return (try Oracle(folder).config, try Checkpoint.load(path: file.path).floatTensors())
    }

    static func runConv<B: Backend>(_ b: B, _ x: Tensor, _ spec: ConvSpec) throws -> Tensor {
        b.download(try b.conv2d(b.upload(x), b.makeConv(spec)))
    }

    static func runConv(_ backend: TestBackend, _ x: Tensor, _ spec: ConvSpec) throws -> Tensor {
        switch backend {
        case .reference: return try runConv(ReferenceBackend(), x, spec)
        case .onednn: return try runConv(try #require(FastBackendTests.backend), x, spec)
        }
    }

    /// A 3×3 unpadded conv on 2×2 would give 0×0 (2 - 3 + 1); on 3×3 it gives 1×1.
    @Test("conv2d throws on an input smaller than its window, then still runs", arguments: TestBackend.allCases)
    func convInputTooSmall(backend: TestBackend) throws {
        for dilation in [1, 2] {
            let spec = ConvSpec(weight: Tensor(zeros: [16, 16, 3, 3]), bias: nil, dilation: dilation, relu: false)
            let error = #expect(throws: SegmentationError.self) {
                try Self.runConv(backend, Tensor(zeros: [1, 16, 2, 2 * dilation]), spec)
            }
            let least = 2 * dilation + 1
            #expect(error?.description.contains("needs an input of at least \(least)×\(least), got 2×\(2 * dilation)")
                    == true, "\(error.map { "\($0)" } ?? "no error")")
            let y = try Self.runConv(backend, Tensor(zeros: [1, 16, least, least]), spec)
            #expect(y.shape == [1, 16, 1, 1])
        }
    }

    /// Every layer of the seed architectures pads enough that any H, W ≥ 1 yields a map ≥ 1×1, so
    /// odd and tiny tiles (a GeoTIFF's last column of tiles) run, with logits of the input's size.
    @Test("every seed model runs on tiny and odd sizes", .enabled(if: Fixtures.hasShared("fixtures/mmseg"), "needs ../shared/fixtures/mmseg"), arguments: ModelParityTests.models, TestBackend.allCases)
    func tinyAndOddSizes(model: String, backend: TestBackend) throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/\(model)")
        let oracle = try Oracle(folder)
        let weights = try Checkpoint.load(path: folder.appendingPathComponent("weights.safetensors").path)
        let net = try backend.model(oracle.config, weights.floatTensors())
        for (h, w) in [(1, 1), (1, 7), (5, 3), (33, 17)] {
            let logits = try net.flippedLogits(Tensor(zeros: [1, 3, h, w]))
            #expect(logits.shape == [1, net.numClasses, h, w], "\(model) \(h)×\(w)")
            let finite = logits.data.allSatisfy(\.isFinite)
            #expect(finite, "\(model) \(h)×\(w)")
        }
    }

    /// The reference backend, except that convolutions over inputs `failingWidth` wide throw: a
    /// stand-in for oneDNN refusing to build a primitive for a new size.
    struct FailingBackend: Backend {
        struct Refused: Error, CustomStringConvertible {
            let description: String
        }

        let failingWidth: Int
        var name: String { "failing" }
        func makeConv(_ spec: ConvSpec) throws -> ConvSpec { spec }
        func upload(_ x: Tensor) -> Tensor { x }
        func download(_ x: Tensor) -> Tensor { x }
        func shape(of x: Tensor) -> Shape4 { ReferenceBackend().shape(of: x) }
        func conv2d(_ x: Tensor, _ conv: ConvSpec, residual: Tensor?) throws -> Tensor {
            if shape(of: x).w == failingWidth { throw Refused(description: "no kernel for width \(failingWidth)") }
            return try ReferenceBackend().conv2d(x, conv, residual: residual)
        }
    }

    @Test("a backend's conv error surfaces from forward, logits and flippedLogits with the input shape")
    func backendErrorSurfaces() throws {
        guard let local = try Self.localModel() else { return }
        let model = try SegmentationModel(config: local.config, weights: local.weights,
                                          backend: FailingBackend(failingWidth: 40))
        let input = Tensor(zeros: [1, 3, 24, 40])
        let runs: [(String, () throws -> Void)] = [
            ("forward", { _ = try model.forward(input) }),
            ("logits", { _ = try model.logits(input) }),
            ("flippedLogits", { _ = try model.flippedLogits(input) }),
        ]
        for (name, run) in runs {
            let error = #expect(throws: SegmentationError.self, "\(name)") { try run() }
            guard case .inferenceFailed(let shape, let reason)? = error else {
                Issue.record("\(name): expected inferenceFailed, got \(error.map { "\($0)" } ?? "nothing")")
                continue
            }
            #expect(shape == Shape4(n: 1, c: 3, h: 24, w: 40))
            #expect(reason is FailingBackend.Refused)
            let text = "\(error.map { "\($0)" } ?? "")"
            #expect(text == "segmentation of a [1, 3, 24, 40] input failed: no kernel for width 40")
        }
        // Other sizes still run on the same model.
        #expect(try model.logits(Tensor(zeros: [1, 3, 24, 48])).shape == [1, 6, 24, 48])
    }

    @Test("inputs that are not N×3×H×W and empty resize targets are rejected")
    func invalidInputs() throws {
        guard let local = try Self.localModel() else { return }
        let model = try SegmentationModel(config: local.config, weights: local.weights, backend: ReferenceBackend())
        #expect(model.inputChannels == 3)
        for shape in [[1, 4, 8, 8], [1, 3, 0, 8], [3, 8, 8]] {
            #expect(throws: SegmentationError.self, "\(shape)") { try model.logits(Tensor(zeros: shape)) }
        }
        let logits = Tensor(zeros: [1, 6, 4, 4])
        #expect(throws: SegmentationError.self) { try model.resizeLogits(logits, to: Size2(height: 0, width: 4)) }
        #expect(try model.resizeLogits(logits, to: Size2(height: 2, width: 3)).shape == [1, 6, 2, 3])
    }

    /// Descriptions that used to reach a trap (an overflow, or a concat of unequal maps) now
    /// fail while the model is built.
    @Test("descriptions whose sizes make no network are rejected at build time")
    func impossibleDescriptions() throws {
        guard let config = try Self.localModel()?.config else { return }
        var hugeDilation = config
        hugeDilation.decodeHead?.dilations = [1, 1 << 40]
        var hugeChannels = config
        hugeChannels.decodeHead?.channels = 1 << 40
        var hugeStride = config
        hugeStride.backbone?.strides = [1, 1 << 50, 1, 1]
        var evenKernel = config
        evenKernel.decodeHead = DecodeHeadConfig(type: "FCNHead", inIndex: .one(3), channels: 8, numClasses: 6)
        evenKernel.decodeHead?.kernelSize = 2
        var evenKernelNoConcat = evenKernel
        evenKernelNoConcat.decodeHead?.concatInput = false
        for (name, bad) in [("dilation", hugeDilation), ("channels", hugeChannels), ("stride", hugeStride),
                            ("even kernel", evenKernel)] {
            #expect(throws: ModelConfigError.self, "\(name)") {
                try SegmentationModel.randomWeights(config: bad, seed: 1)
            }
        }
        // mmseg runs an even kernel without concat_input (the map grows by one); so do we.
        let weights = try SegmentationModel.randomWeights(config: evenKernelNoConcat, seed: 1)
        let model = try SegmentationModel(config: evenKernelNoConcat, weights: weights, backend: ReferenceBackend())
        #expect(try model.logits(Tensor(zeros: [1, 3, 16, 16])).shape == [1, 6, 16, 16])
    }
}
