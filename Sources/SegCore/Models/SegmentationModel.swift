import Limits
import Synchronization
/// Outputs of one forward pass, as NCHW tensors (for parity checks and debugging).
public struct ForwardResult: Sendable {
    /// Backbone outputs in `out_indices` order (RegSeg: stem, 1/4, 1/8, 1/16).
    public var backbone: [Tensor]
    /// Neck outputs (empty without a neck).
    public var neck: [Tensor]
    /// The decode head's logits at feature resolution, before any resize.
    public var decodeRaw: Tensor
}

/// A network over some backend, as the model's type-erased core.
protocol SegmentationNetwork<B>: Sendable {
    associatedtype B: Backend
    /// Backbone, neck and head outputs for an input already in the backend.
    func forward(_ x: B.Activation, _ b: B) throws
        -> (backbone: [B.Activation], neck: [B.Activation], decode: B.Activation)
}

/// mmseg's `EncoderDecoder`: backbone → optional neck → decode head.
struct EncoderDecoder<B: Backend>: SegmentationNetwork {
    let backbone: ResNet<B>
    let neck: JPU<B>?
    let head: any DecodeHead<B>

    func forward(_ x: B.Activation, _ b: B) throws
        -> (backbone: [B.Activation], neck: [B.Activation], decode: B.Activation) {
        let feats = try backbone(x, b)
        let necked = try neck.map { try $0(feats, b) } ?? []
        return (feats, necked, try head(neck == nil ? feats : necked, b))
    }
}

extension RegSeg: SegmentationNetwork {
    func forward(_ x: B.Activation, _ b: B) throws
        -> (backbone: [B.Activation], neck: [B.Activation], decode: B.Activation) {
        let (features, logits) = try self(x, b)
        return (features, [], logits)
    }
}

/// What `SegmentationModel` needs from a network bound to its backend.
private protocol ModelRunner: Sendable {
    func forward(_ x: Tensor) throws -> ForwardResult
    func logits(_ x: Tensor, flip: Bool, alignCorners: Bool) throws -> Tensor
    /// `logits`, handed to `body` as NCHW values without a copy where the backend allows.
    func withLogits<T>(_ x: Tensor, flip: Bool, alignCorners: Bool,
                       _ body: (UnsafeBufferPointer<Float>) throws -> T) throws -> T
    /// Peak activation bytes of `logits(x)` on the fast backend (`ActivationMeter`); nil on others.
    func activationPeak(_ x: Tensor, alignCorners: Bool) throws -> Int?
}

private struct BoundNetwork<N: SegmentationNetwork>: ModelRunner {
    let network: N
    let backend: N.B
    /// Distinct per built model: its passes' arenas are its own (`withActivationArena`).
    let identity = BoundNetworkIdentity.next()

    func forward(_ x: Tensor) throws -> ForwardResult {
        let out = try network.forward(backend.upload(x), backend)
        return ForwardResult(backbone: out.backbone.map(backend.download), neck: out.neck.map(backend.download),
                             decodeRaw: backend.download(out.decode))
    }

    func logits(_ x: Tensor, flip: Bool, alignCorners: Bool) throws -> Tensor {
        try backend.withActivationArena(arenaKey(x, flip: flip)) {
            backend.download(try resized(x, flip: flip, alignCorners: alignCorners))
        }
    }

    func withLogits<T>(_ x: Tensor, flip: Bool, alignCorners: Bool,
                       _ body: (UnsafeBufferPointer<Float>) throws -> T) throws -> T {
        try backend.withActivationArena(arenaKey(x, flip: flip)) {
            try backend.withNCHW(try resized(x, flip: flip, alignCorners: alignCorners), body)
        }
    }

    /// Passes of one kind take the same buffers in the same order: same input shape, same flip.
    private func arenaKey(_ x: Tensor, flip: Bool) -> String { "model \(identity) \(x.shape) flip \(flip)" }

    private func resized(_ x: Tensor, flip: Bool, alignCorners: Bool) throws -> N.B.Activation {
        let b = backend
        var input = b.upload(x)
        let size = b.shape(of: input).size
        if flip { input = b.flipHorizontal(input) }
        var y = b.resizeLogits(try network.forward(input, b).decode, to: size, alignCorners: alignCorners)
        if flip { y = b.flipHorizontal(y) }
        return y
    }

    func activationPeak(_ x: Tensor, alignCorners: Bool) throws -> Int? {
        guard backend is FastBackend else { return nil }
        return try ActivationMeter.measure { try withLogits(x, flip: false, alignCorners: alignCorners) { _ in } }
    }
}

/// A segmentation model ready to run: built from an mmseg-style description, with a checkpoint's
/// weights (BatchNorm folded), on a backend.
///
/// Inputs and outputs are NCHW `Tensor`s: the input is the normalised N×C×H×W image (C =
/// `inputChannels`, see `preprocess`), logits are N×classes×H×W. The model is immutable and can be
/// shared between threads if its backend's convolutions can.
public final class SegmentationModel: Sendable {
    public let config: ModelConfig
    /// Number of output classes (channels of the logits).
    public let numClasses: Int
    /// align_corners of the resizes applied to the logits (mmseg `decode_head.align_corners`).
    public let alignCorners: Bool
    /// How images become inputs.
    public let preprocessing: Preprocessing
    /// Name of the backend the model runs on.
    public let backendName: String
    /// The precision its convolutions run in (bf16 only where asked for and the CPU has it).
    public let precision: Precision
    /// Channels of the network input (the backbone's `in_channels`; 3 for RGB images).
    public let inputChannels: Int
    /// Widths the description left out and the checkpoint's shapes gave, by mmseg config field
    /// (`backbone.stem_channels`, `backbone.in_channels`, `decode_head.channels`, `num_classes`, ...).
    public let inferredWidths: [String: Int]
    /// Weight and bias values of the model (floats), as loaded.
    public let parameterCount: Int
    private let runner: any ModelRunner
    private let footprints = Mutex<[Size2: Int]>([:])

    /// Builds the network `config` describes and maps `weights` (checkpoint key → float tensor,
    /// e.g. `Checkpoint.floatTensors()`) onto it.
    ///
    /// Throws `ModelConfigError` for a description that cannot be built and `WeightError` naming
    /// the key (and both shapes) for a missing, mis-shaped or unexpected tensor. Keys unused at
    /// inference (`auxiliary_head.*`, `decode_head.se_layer.*`, `*.num_batches_tracked`) are ignored.
    public init<B: Backend>(config: ModelConfig, weights: [String: Tensor], backend: B) throws {
        let store = WeightStore(weights)
        let built = try Self.build(config, store, backend)
        try store.finish()
        inferredWidths = store.inferredWidths
        parameterCount = weights.values.reduce(0) { $0 + $1.data.count }
        self.config = config
        backendName = backend.name
        precision = backend.precision
        alignCorners = config.resolvedAlignCorners
        numClasses = built.classes
        inputChannels = built.inputChannels
        preprocessing = built.preprocessing
        runner = built.runner
    }

    /// Random weights with every key and shape the described model needs (deterministic per
    /// `seed`), for benchmarks without a checkpoint. Widths the description leaves out take the
    /// full-size defaults (ResNet stem/base 64, RegSeg exp48_decoder26); head `channels`,
    /// `num_classes` and DeepLabV3+'s `c1_*` must be given. Conv weights are uniform with variance
    /// 1/fan_in, BatchNorm statistics near the identity, so activations stay finite.
    public static func randomWeights(config: ModelConfig, seed: UInt64) throws -> [String: Tensor] {
        let store = WeightStore(synthesizingWith: RandomWeights(seed: seed))
        _ = try build(config, store, ReferenceBackend())
        return store.tensors
    }

    private static func build<B: Backend>(_ config: ModelConfig, _ store: WeightStore, _ backend: B) throws
        -> (runner: any ModelRunner, classes: Int, inputChannels: Int, preprocessing: Preprocessing) {
        let loader = Loader(weights: store, backend: backend)
        if config.isRegSeg {
            let classes = try checkedClasses(config.numClasses
                ?? store.dim("decoder.classifier.weight", 0, default: nil, field: "num_classes"))
            let preprocessing = try config.dataPreprocessor.map { try Preprocessing($0) } ?? .imagenetUnit
            let network = try RegSeg(config, classes: classes, loader)
            return (BoundNetwork(network: network, backend: backend), classes, 3, preprocessing)
        }
        guard let backboneConfig = config.backbone, let headConfig = config.decodeHead else {
            throw ModelConfigError("the description has no backbone or no decode_head",
                                   hint: "give mmseg's model dict, or type 'RegSeg'")
        }
        let classes = try checkedClasses(headConfig.numClasses ?? config.numClasses
            ?? store.dim("decode_head.conv_seg.weight", 0, default: nil, field: "num_classes"))
        let backbone = try ResNet(backboneConfig, loader)
        let preprocessing = try Self.preprocessing(config, channels: backbone.inChannels)
        let neck = try config.neck.map { try JPU($0, features: backbone.outChannels, loader) }
        let head = try makeDecodeHead(headConfig, features: neck?.outChannels ?? backbone.outChannels,
                                      classes: classes, loader)
        let network = EncoderDecoder(backbone: backbone, neck: neck, head: head)
        return (BoundNetwork(network: network, backend: backend), classes, backbone.inChannels, preprocessing)
    }

    /// The `data_preprocessor`'s normalisation, else mmseg's ImageNet values (3 channels only: other
    /// channel counts need their own mean and std).
    private static func preprocessing(_ config: ModelConfig, channels: Int) throws -> Preprocessing {
        if let cfg = config.dataPreprocessor { return try Preprocessing(cfg, channels: channels) }
        guard channels == 3 else {
            throw ModelConfigError("backbone in_channels \(channels) needs data_preprocessor mean and std with "
                                   + "\(channels) values", hint: "ImageNet's defaults are for 3 channels")
        }
        return .mmseg
    }

    /// Most classes a model may have: AerialSeg writes labels as 8-bit values with 255 as nodata.
    public static let maxClasses = 255

    /// `classes` (from the description or the checkpoint's head) when it is in `1...maxClasses`.
    private static func checkedClasses(_ classes: Int) throws -> Int {
        guard (1...maxClasses).contains(classes) else {
            throw ModelConfigError("num_classes \(classes) is outside 1...\(maxClasses) (labels are 8-bit with 255 "
                                   + "as nodata)", hint: "a model with more classes cannot be run")
        }
        return classes
    }

    /// Runs `body` on `input` once it is checked to be N×`inputChannels`×H×W with N, H, W ≥ 1;
    /// what the network throws (a layer's `unsupportedSize`, a backend's `DNNLError`) comes out as
    /// `SegmentationError.inferenceFailed` naming the input shape.
    private func run<T>(_ input: Tensor, _ body: () throws -> T) throws -> T {
        guard let s = Shape4(input.shape), s.n >= 1, s.c == inputChannels, s.h >= 1, s.w >= 1 else {
            throw SegmentationError.invalidInput("tensor of shape \(input.shape) is not N×\(inputChannels)×H×W")
        }
        do {
            return try body()
        } catch {
            throw SegmentationError.inferenceFailed(input: s, reason: error)
        }
    }

    /// Backbone, neck and raw decode-head outputs for a normalised N×C×H×W input.
    /// Throws `SegmentationError` (`invalidInput`, or `inferenceFailed` when a layer cannot run).
    public func forward(_ input: Tensor) throws -> ForwardResult {
        try run(input) { try runner.forward(input) }
    }

    /// Whole-image inference (mmseg `encode_decode`, §6.2–6.3): the head's logits resized
    /// (bilinear, `alignCorners`) to the input's H×W. Works on any crop, for slide inference.
    /// Throws like `forward`.
    public func logits(_ input: Tensor) throws -> Tensor {
        try run(input) { try runner.logits(input, flip: false, alignCorners: alignCorners) }
    }

    /// Bytes one `withLogits` call on an `height`×`width` input holds at its peak beyond the weights
    /// and the backend's fixed buffers: the most activation bytes live at once (counted by the fast
    /// backend while a zero input runs through, once per size; the resized logits included) plus the
    /// input tensor. Depends on the network and the size only, not on the CPU or the threads. On the
    /// reference backend, `estimatedInferenceBytes`.
    public func activationFootprint(height: Int, width: Int) throws -> Int {
        let size = Size2(height: height, width: width)
        if let known = footprints.withLock({ $0[size] }) { return known }
        let input = Tensor(shape: [1, inputChannels, height, width],
                           data: [Float](repeating: 0, count: inputChannels * height * width))
        let measured = try run(input) { try runner.activationPeak(input, alignCorners: alignCorners) }
        let edges = MemoryBudget.product(inputChannels, height, width, MemoryLayout<Float>.stride)
        let bytes = measured.map { MemoryBudget.sum($0, edges) }
            ?? Self.estimatedInferenceBytes(height: height, width: width, classes: numClasses)
        footprints.withLock { $0[size] = bytes }
        return bytes
    }

    /// `logits(input)` (or `flippedLogits` with `flip`) handed to `body` as (N, classes, H, W) values,
    /// without the copy into a `Tensor` where the backend holds them so already: one map of
    /// classes × H × W floats less at the peak, and no copy per window.
    public func withLogits<T>(_ input: Tensor, flip: Bool = false,
                              _ body: (UnsafeBufferPointer<Float>) throws -> T) throws -> T {
        // Only the network's errors become `inferenceFailed`; `body`'s own come out as they are.
        var result: Result<T, any Error>?
        try run(input) {
            try runner.withLogits(input, flip: flip, alignCorners: alignCorners) { values in
                result = Result { try body(values) }
            }
        }
        return try result!.get()
    }

    /// Horizontal-flip inference: flip the input, run `logits`, flip the logits back.
    public func flippedLogits(_ input: Tensor) throws -> Tensor {
        try run(input) { try runner.logits(input, flip: true, alignCorners: alignCorners) }
    }

    /// The network input for an H×W×C 8-bit image in `order` (see `Preprocessing`).
    public func preprocess(_ pixels: [UInt8], height: Int, width: Int, order: ChannelOrder) throws -> Tensor {
        try preprocessing(pixels, height: height, width: width, order: order)
    }

    /// Logits resized to the original image size (mmseg `postprocess_result`, §6.5).
    /// Throws `invalidInput` unless `logits` is N×C×H×W and `size` is at least 1×1.
    public func resizeLogits(_ logits: Tensor, to size: Size2) throws -> Tensor {
        guard let s = Shape4(logits.shape), min(s.n, s.c, s.h, s.w) >= 1, min(size.height, size.width) >= 1 else {
            throw SegmentationError.invalidInput("cannot resize logits of shape \(logits.shape) to \(size)")
        }
        return Kernels.resizeBilinear(logits, to: size, alignCorners: alignCorners)
    }

    /// Per-pixel labels of N×C×H×W logits, row-major N×H×W; ties go to the lower class index.
    public static func argmax(_ logits: Tensor) -> [Int32] {
        Kernels.argmaxChannels(logits)
    }
}

/// Numbers the built models (`BoundNetwork.identity`).
private enum BoundNetworkIdentity {
    private static let counter = Atomic<Int>(0)
    static func next() -> Int { counter.add(1, ordering: .relaxed).newValue }
}
