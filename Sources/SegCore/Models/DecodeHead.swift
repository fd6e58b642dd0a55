/// An mmseg decode head: multi-level features in, class logits at the feature resolution out
/// (`BaseDecodeHead.forward`; the resize to the input size happens in `SegmentationModel`).
protocol DecodeHead<B>: Sendable {
    associatedtype B: Backend
    func callAsFunction(_ inputs: [B.Activation], _ b: B) throws -> B.Activation
}

/// Which features a head reads (`BaseDecodeHead._transform_inputs`): one (`in_index` an int),
/// several (`multiple_select`), or several resized to the first and concatenated (`resize_concat`).
struct HeadInputs: Sendable {
    enum Transform: Sendable { case single, multipleSelect, resizeConcat }

    let transform: Transform
    /// Resolved (non-negative) indices into the features.
    let indices: [Int]
    /// Channels of each selected feature.
    let channels: [Int]
    let alignCorners: Bool

    /// Channels the head's first layer sees (the sum for `resize_concat`).
    var inChannels: Int { transform == .resizeConcat ? channels.reduce(0, +) : channels[0] }

    /// Resolves `in_index` / `in_channels` / `input_transform` against the channels of the features
    /// the head will receive, throwing when the description disagrees with them.
    init(_ cfg: DecodeHeadConfig, features: [Int], forceMultiple: Bool = false) throws {
        switch forceMultiple ? "multiple_select" : cfg.inputTransform {
        case nil: transform = .single
        case "multiple_select": transform = .multipleSelect
        case "resize_concat": transform = .resizeConcat
        case let other?: throw ModelConfigError("decode_head input_transform '\(other)' is not supported")
        }
        let raw = cfg.inIndex?.values ?? (transform == .single ? [-1] : Array(features.indices))
        guard !raw.isEmpty, transform != .single || raw.count == 1 else {
            let transform = cfg.inputTransform ?? "None"
            throw ModelConfigError("decode_head in_index \(raw) does not fit input_transform \(transform)")
        }
        var indices: [Int] = []
        for i in raw {
            guard (-features.count..<features.count).contains(i) else {
                throw ModelConfigError("decode_head in_index \(i) is outside the \(features.count) features")
            }
            indices.append(i < 0 ? i + features.count : i)
        }
        self.indices = indices
        channels = indices.map { features[$0] }
        if let declared = cfg.inChannels?.values, declared != channels {
            throw ModelConfigError("decode_head in_channels \(declared) but the selected features have \(channels)")
        }
        alignCorners = cfg.alignCorners ?? false
    }

    /// The selected features, in `in_index` order.
    func select<B: Backend>(_ inputs: [B.Activation], _ b: B) -> [B.Activation] {
        indices.map { inputs[$0] }
    }

    /// The one input of a single-input head (`resize_concat` merges the selection into one).
    func single<B: Backend>(_ inputs: [B.Activation], _ b: B) -> B.Activation {
        let xs = select(inputs, b)
        guard transform == .resizeConcat else { return xs[0] }
        let size = b.shape(of: xs[0]).size
        return b.concatChannels(xs.map { b.resizeBilinear($0, to: size, alignCorners: alignCorners) })
    }
}

/// `resize(conv(AdaptiveAvgPool2d(scale)(x)), size(x))`: x (N,C,H,W) → (N,OC,H,W), ASPP's image
/// pool (scale 1) and one PSP pyramid level.
func pooledContext<B: Backend>(_ x: B.Activation, scale: Int, _ conv: B.Conv, alignCorners: Bool, _ b: B) throws
    -> B.Activation {
    let pooled = try b.conv2d(b.adaptiveAvgPool2d(x, to: Size2(height: scale, width: scale)), conv)
    return b.resizeBilinear(pooled, to: b.shape(of: x).size, alignCorners: alignCorners)
}

/// Builds the head named by `decode_head.type`.
/// `features` are the channels of the backbone (or neck) outputs the head receives.
func makeDecodeHead<B: Backend>(_ cfg: DecodeHeadConfig, features: [Int], classes: Int,
                                _ l: Loader<B>) throws -> any DecodeHead<B> {
    switch cfg.type {
    case "FCNHead": return try FCNHead(cfg, features: features, classes: classes, l)
    case "ASPPHead": return try ASPPHead(cfg, features: features, classes: classes, separable: false, l)
    case "DepthwiseSeparableASPPHead":
        return try ASPPHead(cfg, features: features, classes: classes, separable: true, l)
    case "PSPHead": return try PSPHead(cfg, features: features, classes: classes, l)
    case "EncHead": return try EncHead(cfg, features: features, classes: classes, l)
    default:
        throw ModelConfigError("decode_head type '\(cfg.type)' is not supported",
                               hint: "supported: FCNHead, ASPPHead, DepthwiseSeparableASPPHead, PSPHead, EncHead")
    }
}

extension DecodeHeadConfig {
    /// `channels`, or the input width of `conv_seg` in the checkpoint.
    func resolvedChannels(_ w: WeightStore) throws -> Int {
        try ModelConfigError.checked(
            channels ?? w.dim("decode_head.conv_seg.weight", 1, default: nil, field: "decode_head.channels"),
            "decode_head channels")
    }
}
