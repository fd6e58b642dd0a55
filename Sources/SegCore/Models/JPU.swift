/// FastFCN's Joint Pyramid Upsampling neck (`mmseg/models/necks/jpu.py`):
/// ```
/// f_i = conv_layers.i.0(x_i)                 ConvModule 3×3 pad 1, in_i → mid, i in start..<end
/// f_i = resize(f_i, size(f_0))               i ≥ 1
/// y_k = dilation_layers.k.0(concat(f_...))   depthwise 3×3 dil d_k + BN (no ReLU),
///                                            then pointwise 1×1 → mid + BN + ReLU
/// out = (x_start, ..., x_{end-2}, concat(y_0, ..., y_K))
/// ```
struct JPU<B: Backend>: Sendable {
    let startLevel: Int
    let endLevel: Int
    let alignCorners: Bool
    let convLayers: [B.Conv]
    let dilationLayers: [SeparableConv<B>]
    /// Channels of each output.
    let outChannels: [Int]

    /// `features` are the channels of the backbone outputs.
    init(_ cfg: NeckConfig, features: [Int], _ l: Loader<B>) throws {
        guard cfg.type == "JPU" else {
            throw ModelConfigError("neck type '\(cfg.type)' is not supported", hint: "supported: JPU")
        }
        // mmseg's default is (512, 1024, 2048); left out, the neck takes what the backbone returns.
        let inChannels = cfg.inChannels ?? features
        guard inChannels == features else {
            throw ModelConfigError("JPU in_channels \(inChannels) but the backbone returns \(features)")
        }
        let mid = try ModelConfigError.checked(
            cfg.midChannels ?? l.weights.dim("neck.conv_layers.0.0.conv.weight", 0, default: 512,
                                             field: "neck.mid_channels"), "JPU mid_channels")
        let dilations = cfg.dilations ?? [1, 2, 4, 8]
        let start = cfg.startLevel ?? 0
        let end = cfg.endLevel ?? -1
        let stop = end == -1 ? inChannels.count : end
        startLevel = start
        endLevel = stop
        guard startLevel >= 0, endLevel <= inChannels.count, endLevel - startLevel >= 1,
              !dilations.isEmpty, dilations.allSatisfy({ $0 >= 1 }) else {
            throw ModelConfigError("JPU start_level \(startLevel), end_level \(end), dilations \(dilations) "
                                   + "do not fit \(inChannels.count) inputs")
        }
        alignCorners = cfg.alignCorners ?? false
        convLayers = try (start..<stop).map { i in
            try l.convModule("neck.conv_layers.\(i - start).0", in: inChannels[i], out: mid, kernel: 3,
                             padding: 1)
        }
        let merged = (stop - start) * mid
        dilationLayers = try dilations.enumerated().map { k, d in
            try l.separable("neck.dilation_layers.\(k).0", in: merged, out: mid, dilation: d, depthwiseReLU: false)
        }
        outChannels = Array(inChannels[start..<(stop - 1)]) + [mid * dilations.count]
    }

    func callAsFunction(_ inputs: [B.Activation], _ b: B) throws -> [B.Activation] {
        var feats = try (startLevel..<endLevel).map { try b.conv2d(inputs[$0], convLayers[$0 - startLevel]) }
        let size = b.shape(of: feats[0]).size
        for i in feats.indices.dropFirst() {
            feats[i] = b.resizeBilinear(feats[i], to: size, alignCorners: alignCorners)
        }
        let feat = b.concatChannels(feats)
        let pyramid = b.concatChannels(try dilationLayers.map { try $0(feat, b) })
        return Array(inputs[startLevel..<(endLevel - 1)]) + [pyramid]
    }
}
