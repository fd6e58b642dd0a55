/// DeepLabV3's ASPP head (`aspp_head.py`) and DeepLabV3+'s `DepthwiseSeparableASPPHead`
/// (`sep_aspp_head.py`):
/// ```
/// pool  = resize(image_pool.1(mean_HW(x)), size(x))          1×1 → H×W broadcast
/// a_i   = aspp_modules.i(x)     dilation 1: ConvModule 1×1; d > 1: ConvModule 3×3 pad d dil d
///                               (DeepLabV3+: depthwise-separable 3×3, BN+ReLU after both convs)
/// y     = bottleneck(concat(pool, a_0, ..., a_n))             ConvModule 3×3 pad 1
/// DeepLabV3+ only:
///   c1  = c1_bottleneck(features[0])                          ConvModule 1×1 (backbone output 0!)
///   y   = sep_bottleneck.1(sep_bottleneck.0(concat(resize(y, size(c1)), c1)))
/// logits = conv_seg(y)
/// ```
struct ASPPHead<B: Backend>: DecodeHead {
    enum Branch: Sendable {
        case plain(B.Conv)
        case separable(SeparableConv<B>)
    }

    /// DeepLabV3+'s low-level decoder.
    struct LowLevel: Sendable {
        let c1Bottleneck: B.Conv?
        let sepBottleneck: [SeparableConv<B>]
    }

    let inputs: HeadInputs
    let imagePool: B.Conv
    let branches: [Branch]
    let bottleneck: B.Conv
    let lowLevel: LowLevel?
    let convSeg: B.Conv

    init(_ cfg: DecodeHeadConfig, features: [Int], classes: Int, separable: Bool, _ l: Loader<B>) throws {
        inputs = try HeadInputs(cfg, features: features)
        let channels = try cfg.resolvedChannels(l.weights)
        let inChannels = inputs.inChannels
        let dilations = cfg.dilations ?? [1, 6, 12, 18]
        guard !dilations.isEmpty, dilations.allSatisfy({ $0 >= 1 }) else {
            throw ModelConfigError("ASPP dilations \(dilations) must be positive")
        }
        let p = "decode_head"
        imagePool = try l.convModule("\(p).image_pool.1", in: inChannels, out: channels, kernel: 1)
        branches = try dilations.enumerated().map { i, d in
            if d == 1 {
                return .plain(try l.convModule("\(p).aspp_modules.\(i)", in: inChannels, out: channels, kernel: 1))
            }
            if separable {
                return .separable(try l.separable("\(p).aspp_modules.\(i)", in: inChannels, out: channels,
                                                  dilation: d, depthwiseReLU: true))
            }
            return .plain(try l.convModule("\(p).aspp_modules.\(i)", in: inChannels, out: channels, kernel: 3,
                                           padding: d, dilation: d))
        }
        bottleneck = try l.convModule("\(p).bottleneck", in: (dilations.count + 1) * channels, out: channels,
                                      kernel: 3, padding: 1)
        if separable {
            let c1Key = "\(p).c1_bottleneck.conv.weight"
            let c1In = try cfg.c1InChannels
                ?? (l.weights.contains(c1Key) || l.weights.isSynthesizing
                    ? l.weights.dim(c1Key, 1, default: nil, field: "decode_head.c1_in_channels") : 0)
            let c1Out = try cfg.c1Channels
                ?? (c1In > 0 ? l.weights.dim(c1Key, 0, default: nil, field: "decode_head.c1_channels") : 0)
            if c1In > 0 && features[0] != c1In {
                throw ModelConfigError("c1_in_channels \(c1In) but backbone output 0 has \(features[0]) channels")
            }
            let c1 = c1In > 0 ? try l.convModule("\(p).c1_bottleneck", in: c1In, out: c1Out, kernel: 1) : nil
            lowLevel = LowLevel(c1Bottleneck: c1, sepBottleneck: [
                try l.separable("\(p).sep_bottleneck.0", in: channels + (c1 == nil ? 0 : c1Out), out: channels,
                                dilation: 1, depthwiseReLU: true),
                try l.separable("\(p).sep_bottleneck.1", in: channels, out: channels, dilation: 1,
                                depthwiseReLU: true),
            ])
        } else {
            lowLevel = nil
        }
        convSeg = try l.convSeg(channels: channels, classes: classes)
    }

    func callAsFunction(_ features: [B.Activation], _ b: B) throws -> B.Activation {
        let x = inputs.single(features, b)
        var outs = [try pooledContext(x, scale: 1, imagePool, alignCorners: inputs.alignCorners, b)]
        for branch in branches {
            switch branch {
            case .plain(let conv): outs.append(try b.conv2d(x, conv))
            case .separable(let conv): outs.append(try conv(x, b))
            }
        }
        var y = try b.conv2d(concatenating: outs, bottleneck)
        // The branches' outputs go now, not when the function returns: DeepLabV3+'s decoder works
        // at 4× their size and would hold them through its peak (10 MiB of a 56 MiB pass at 512²).
        outs.removeAll()
        if let lowLevel {
            if let c1Bottleneck = lowLevel.c1Bottleneck {
                let c1 = try b.conv2d(features[0], c1Bottleneck)
                y = b.resizeBilinear(y, to: b.shape(of: c1).size, alignCorners: inputs.alignCorners)
                y = b.concatChannels([y, c1])
            }
            for conv in lowLevel.sepBottleneck { y = try conv(y, b) }
        }
        return try b.conv2d(y, convSeg)
    }
}
