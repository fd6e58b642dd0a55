import Foundation

/// Why a checkpoint's tensors do not fit a model (mlx `UpdateError` / tinygrad's shape assert).
///
/// Descriptions name the key and both shapes, e.g.
/// `weights: 'backbone.stem.0.weight' has shape [32, 3, 3, 3] but the model expects [16, 3, 3, 3] (...)`.
public struct WeightError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The model needs a key the checkpoint lacks.
        case missingKey
        /// The checkpoint has keys the model does not use (and that are not known to be unused).
        case unexpectedKeys
        /// A key exists with another shape.
        case mismatchedSize
    }

    public let kind: Kind
    /// The offending key (the first one, for `unexpectedKeys`).
    public let key: String
    /// What the model expects (nil when unknown or for unexpected keys).
    public let expected: [Int]?
    /// What the checkpoint has (nil for a missing key).
    public let actual: [Int]?
    /// Every unexpected key, for `unexpectedKeys`.
    public let keys: [String]

    public var description: String {
        let hint = "the checkpoint does not match the model description; check depth, widths and head type"
        switch kind {
        case .missingKey:
            let shape = expected.map { " (expected shape \($0))" } ?? ""
            return "weights: missing key '\(key)'\(shape) (\(hint))"
        case .mismatchedSize:
            let want = expected.map { "\($0)" } ?? "another rank"
            return "weights: '\(key)' has shape \(actual ?? []) but the model expects \(want) (\(hint))"
        case .unexpectedKeys:
            let shown = keys.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            let more = keys.count > 5 ? " and \(keys.count - 5) more" : ""
            return "weights: \(keys.count) unexpected key(s) \(shown)\(more) (\(hint))"
        }
    }
}

/// A checkpoint's float tensors, handed out by key with their expected shapes, remembering which
/// ones a model consumed so that `finish()` can reject leftovers.
///
/// Keys that are in every mmseg checkpoint but unused at inference are ignored: `auxiliary_head.*`,
/// `decode_head.se_layer.*` (EncNet's SE loss) and `*.num_batches_tracked`.
///
/// A store made with `init(synthesizingWith:)` instead invents every tensor a model asks for
/// (`RandomWeights`), and answers width questions with the full-size defaults the callers pass.
final class WeightStore {
    private(set) var tensors: [String: Tensor]
    private var used = Set<String>()
    private var synthesizer: RandomWeights?
    /// Widths read from the checkpoint's shapes because the description left them out, by config
    /// field (`backbone.stem_channels`, `decode_head.channels`, `num_classes`, ...).
    private(set) var inferredWidths: [String: Int] = [:]

    /// BatchNorm epsilon of mmcv's `build_norm_layer` and `torch.nn.BatchNorm*d`.
    static let batchNormEpsilon = 1e-5

    init(_ tensors: [String: Tensor]) {
        self.tensors = tensors
    }

    /// A store that makes up the tensors a model requests (for benchmarks without a checkpoint).
    init(synthesizingWith generator: RandomWeights) {
        tensors = [:]
        synthesizer = generator
    }

    var isSynthesizing: Bool { synthesizer != nil }

    static func isIgnored(_ key: String) -> Bool {
        key.hasPrefix("auxiliary_head.") || key.hasPrefix("decode_head.se_layer.")
            || key.hasSuffix(".num_batches_tracked")
    }

    func contains(_ key: String) -> Bool { tensors[key] != nil }

    /// The shape stored under `key` (to infer widths); throws if absent.
    func shape(_ key: String) throws -> [Int] {
        guard let t = tensors[key] else {
            throw WeightError(kind: .missingKey, key: key, expected: nil, actual: nil, keys: [])
        }
        return t.shape
    }

    /// Size of `axis` of the tensor under `key`, which must have `rank` dimensions (to infer widths).
    /// When synthesizing, `fallback` (the architecture's full-size default) is returned instead;
    /// nil means the description must give the width. A width read from the checkpoint is recorded
    /// under `field` in `inferredWidths`.
    func dim(_ key: String, _ axis: Int, rank: Int = 4, default fallback: Int?, field: String? = nil) throws -> Int {
        if isSynthesizing {
            guard let fallback else {
                throw ModelConfigError("the width read from '\(key)' is not in the model description",
                                       hint: "random weights need every width (channels, num_classes, ...) spelled out")
            }
            return fallback
        }
        let shape = try shape(key)
        guard shape.count == rank, axis < rank else {
            throw WeightError(kind: .mismatchedSize, key: key, expected: nil, actual: shape, keys: [])
        }
        if let field { inferredWidths[field] = shape[axis] }
        return shape[axis]
    }

    /// The tensor under `key`, which must have exactly `shape`.
    func take(_ key: String, shape: [Int]) throws -> Tensor {
        if synthesizer != nil, tensors[key] == nil {
            tensors[key] = synthesizer?.tensor(for: key, shape: shape)
        }
        guard let t = tensors[key] else {
            throw WeightError(kind: .missingKey, key: key, expected: shape, actual: nil, keys: [])
        }
        guard t.shape == shape else {
            throw WeightError(kind: .mismatchedSize, key: key, expected: shape, actual: t.shape, keys: [])
        }
        used.insert(key)
        return t
    }

    /// A 1-D tensor of `count` values.
    func vector(_ key: String, count: Int) throws -> [Float] {
        try take(key, shape: [count]).data
    }

    /// BatchNorm `<prefix>.{weight,bias,running_mean,running_var}` as the affine map it is at
    /// inference: `y = scale · x + shift`, `scale = weight / sqrt(var + eps)`,
    /// `shift = bias - mean · scale` (computed in Double, rounded once).
    func batchNorm(_ prefix: String, channels: Int) throws -> (scale: [Float], shift: [Float]) {
        let weight = try vector("\(prefix).weight", count: channels)
        let bias = try vector("\(prefix).bias", count: channels)
        let mean = try vector("\(prefix).running_mean", count: channels)
        let variance = try vector("\(prefix).running_var", count: channels)
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let s = Double(weight[c]) / (Double(variance[c]) + Self.batchNormEpsilon).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(bias[c]) - Double(mean[c]) * s)
        }
        return (scale, shift)
    }

    /// Throws `unexpectedKeys` when tensors other than the ignored ones were not consumed.
    func finish() throws {
        let left = tensors.keys.filter { !used.contains($0) && !Self.isIgnored($0) }.sorted()
        if let first = left.first {
            throw WeightError(kind: .unexpectedKeys, key: first, expected: nil, actual: tensors[first]?.shape,
                              keys: left)
        }
    }
}

/// Builds backend convolutions from checkpoint keys, folding BatchNorm into the conv at load time.
struct Loader<B: Backend> {
    let weights: WeightStore
    let backend: B

    /// A conv with weight `weightKey` (out, in/groups, k, k), an optional bias `biasKey` and an
    /// optional BatchNorm `bnPrefix`, folded: `w' = w · scale`, `b' = (b · scale) + shift`.
    func conv(_ weightKey: String, bias biasKey: String? = nil, bn bnPrefix: String?,
              in inChannels: Int, out: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
              dilation: Int = 1, groups: Int = 1, relu: Bool) throws -> B.Conv {
        try checkGeometry(weightKey, in: inChannels, out: out, kernel: kernel, stride: stride, padding: padding,
                          dilation: dilation, groups: groups)
        let weight = try weights.take(weightKey, shape: [out, inChannels / groups, kernel, kernel])
        let bias = try biasKey.map { try weights.vector($0, count: out) }
        let bn = try bnPrefix.map { try weights.batchNorm($0, channels: out) }
        return try folded(weightKey, weight, bias: bias, bn: bn, stride: stride, padding: padding,
                          dilation: dilation, groups: groups, relu: relu)
    }

    /// Throws unless the sizes make a convolution whose shape arithmetic cannot overflow (each at
    /// most `ModelConfigError.maxSize`, at most 2²⁸ weights), so that a wild description fails here
    /// rather than trapping in a kernel.
    private func checkGeometry(_ key: String, in inChannels: Int, out: Int, kernel: Int, stride: Int, padding: Int,
                               dilation: Int, groups: Int) throws {
        let sizes = [inChannels, out, kernel, stride, dilation, padding + 1, groups]
        guard sizes.allSatisfy({ (1...ModelConfigError.maxSize).contains($0) }), kernel <= 1 << 10,
              inChannels % groups == 0, out % groups == 0, out * (inChannels / groups) * kernel * kernel <= 1 << 28
        else {
            throw ModelConfigError("\(key): \(inChannels)→\(out) channels, kernel \(kernel), stride \(stride), "
                                   + "padding \(padding), dilation \(dilation), \(groups) groups do not make a "
                                   + "convolution")
        }
    }

    /// A conv from loaded tensors (`weight` is (OC, C/groups, K, K), from `key`) with an optional
    /// BatchNorm affine map folded in: `w' = w · scale`, `b' = b · scale + shift`.
    func folded(_ key: String, _ weight: Tensor, bias: [Float]?, bn: (scale: [Float], shift: [Float])?,
                stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1, relu: Bool) throws -> B.Conv {
        try checkGeometry(key, in: weight.shape[1] * groups, out: weight.shape[0], kernel: weight.shape[2],
                          stride: stride, padding: padding, dilation: dilation, groups: groups)
        var weight = weight
        var bias = bias
        if let bn {
            let out = weight.shape[0]
            let per = weight.count / out
            for o in 0..<out {
                for i in (o * per)..<((o + 1) * per) { weight.data[i] *= bn.scale[o] }
            }
            bias = (0..<out).map { o in (bias?[o] ?? 0) * bn.scale[o] + bn.shift[o] }
        }
        return try backend.makeConv(ConvSpec(weight: weight, bias: bias, stride: stride, padding: padding,
                                             dilation: dilation, groups: groups, relu: relu))
    }

    /// mmcv `ConvModule` (conv without bias → BN → ReLU): keys `<prefix>.conv.weight`, `<prefix>.bn.*`.
    func convModule(_ prefix: String, in inChannels: Int, out: Int, kernel: Int, stride: Int = 1,
                    padding: Int = 0, dilation: Int = 1, groups: Int = 1, relu: Bool = true) throws -> B.Conv {
        try conv("\(prefix).conv.weight", bn: "\(prefix).bn", in: inChannels, out: out, kernel: kernel,
                 stride: stride, padding: padding, dilation: dilation, groups: groups, relu: relu)
    }

    /// mmcv `DepthwiseSeparableConvModule`: 3×3 depthwise ConvModule (`<prefix>.depthwise_conv`,
    /// ReLU only if `depthwiseReLU`) then 1×1 pointwise ConvModule (`<prefix>.pointwise_conv`).
    func separable(_ prefix: String, in inChannels: Int, out: Int, dilation: Int,
                   depthwiseReLU: Bool) throws -> SeparableConv<B> {
        let dw = try convModule("\(prefix).depthwise_conv", in: inChannels, out: inChannels, kernel: 3,
                                padding: dilation, dilation: dilation, groups: inChannels, relu: depthwiseReLU)
        let pw = try convModule("\(prefix).pointwise_conv", in: inChannels, out: out, kernel: 1)
        return SeparableConv(depthwise: dw, pointwise: pw)
    }

    /// `decode_head.conv_seg`: 1×1 conv with bias, no BN, no ReLU (dropout is identity at inference).
    func convSeg(channels: Int, classes: Int) throws -> B.Conv {
        try conv("decode_head.conv_seg.weight", bias: "decode_head.conv_seg.bias", bn: nil,
                 in: channels, out: classes, kernel: 1, relu: false)
    }
}

/// A depthwise 3×3 conv followed by a pointwise 1×1 conv (BN folded into both).
struct SeparableConv<B: Backend>: Sendable {
    let depthwise: B.Conv
    let pointwise: B.Conv

    func callAsFunction(_ x: B.Activation, _ b: B) throws -> B.Activation {
        try b.separableConv(x, depthwise, pointwise)
    }
}
