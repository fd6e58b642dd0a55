/// PSPNet's pyramid pooling head (`psp_head.py`):
/// ```
/// p_s = resize(psp_modules.i.1(AdaptiveAvgPool2d(s)(x)), size(x))   ConvModule 1×1, s in pool_scales
/// y   = bottleneck(concat(x, p_1, p_2, p_3, p_6))                    ConvModule 3×3 pad 1
/// logits = conv_seg(y)
/// ```
struct PSPHead<B: Backend>: DecodeHead {
    let inputs: HeadInputs
    let poolScales: [Int]
    let pyramid: [B.Conv]
    let bottleneck: B.Conv
    let convSeg: B.Conv

    init(_ cfg: DecodeHeadConfig, features: [Int], classes: Int, _ l: Loader<B>) throws {
        inputs = try HeadInputs(cfg, features: features)
        let channels = try cfg.resolvedChannels(l.weights)
        let inChannels = inputs.inChannels
        poolScales = cfg.poolScales ?? [1, 2, 3, 6]
        guard !poolScales.isEmpty, poolScales.allSatisfy({ (1...4096).contains($0) }) else {
            throw ModelConfigError("PSPHead pool_scales \(poolScales) must lie in 1...4096")
        }
        pyramid = try poolScales.indices.map { i in
            try l.convModule("decode_head.psp_modules.\(i).1", in: inChannels, out: channels, kernel: 1)
        }
        bottleneck = try l.convModule("decode_head.bottleneck", in: inChannels + poolScales.count * channels,
                                      out: channels, kernel: 3, padding: 1)
        convSeg = try l.convSeg(channels: channels, classes: classes)
    }

    func callAsFunction(_ features: [B.Activation], _ b: B) throws -> B.Activation {
        let x = inputs.single(features, b)
        var outs = [x]
        for (scale, conv) in zip(poolScales, pyramid) {
            outs.append(try pooledContext(x, scale: scale, conv, alignCorners: inputs.alignCorners, b))
        }
        return try b.conv2d(b.conv2d(concatenating: outs, bottleneck), convSeg)
    }
}
