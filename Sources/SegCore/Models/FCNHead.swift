/// FCN head (`mmseg/models/decode_heads/fcn_head.py`):
/// ```
/// y = convs.{n-1}(... convs.0(x))                 ConvModule k×k, pad (k/2)·dil, dil
/// y = conv_cat(concat(x, y))   if concat_input    ConvModule k×k, pad k/2
/// logits = conv_seg(y)
/// ```
/// `num_convs = 0` makes `convs` the identity (and needs in_channels == channels).
struct FCNHead<B: Backend>: DecodeHead {
    let inputs: HeadInputs
    let convs: [B.Conv]
    let convCat: B.Conv?
    let convSeg: B.Conv

    init(_ cfg: DecodeHeadConfig, features: [Int], classes: Int, _ l: Loader<B>) throws {
        inputs = try HeadInputs(cfg, features: features)
        let channels = try cfg.resolvedChannels(l.weights)
        let numConvs = cfg.numConvs ?? 2
        let kernel = cfg.kernelSize ?? 3
        let dilation = cfg.dilation ?? 1
        let inChannels = inputs.inChannels
        let concat = cfg.concatInput ?? true
        // An even kernel grows the map by `dilation`, so conv_cat could not concatenate it with x
        // (mmseg fails there too).
        guard numConvs >= 0, kernel >= 1, dilation >= 1, numConvs > 0 || inChannels == channels,
              kernel % 2 == 1 || numConvs == 0 || !concat else {
            throw ModelConfigError("FCNHead num_convs \(numConvs), kernel_size \(kernel), dilation \(dilation), "
                                   + "concat_input \(concat), in_channels \(inChannels), channels \(channels) "
                                   + "are inconsistent")
        }
        convs = try (0..<numConvs).map { i in
            try l.convModule("decode_head.convs.\(i)", in: i == 0 ? inChannels : channels, out: channels,
                             kernel: kernel, padding: kernel / 2 * dilation, dilation: dilation)
        }
        convCat = concat
            ? try l.convModule("decode_head.conv_cat", in: inChannels + channels, out: channels, kernel: kernel,
                               padding: kernel / 2)
            : nil
        convSeg = try l.convSeg(channels: channels, classes: classes)
    }

    func callAsFunction(_ features: [B.Activation], _ b: B) throws -> B.Activation {
        let x = inputs.single(features, b)
        var y = x
        for conv in convs { y = try b.conv2d(y, conv) }
        if let convCat { y = try b.conv2d(concatenating: [x, y], convCat) }
        return try b.conv2d(y, convSeg)
    }
}
