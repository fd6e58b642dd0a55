/// EncNet's head (`enc_head.py`, Encoding layer in `mmseg/models/utils/encoding.py`):
/// ```
/// feat = bottleneck(inputs[-1])                                   ConvModule 3×3 pad 1
///        (add_lateral: fusion(concat(feat, resize(lateral_convs.i(inputs[i])...))))
/// e    = mean_k relu(BN_K(Encoding(encoding_project(feat))))      (N,C,1,1); see `EncodingSpec`
/// g    = sigmoid(fc.0(e))                                         Linear C→C as a 1×1 conv
/// out  = relu(feat + feat · g)
/// logits = conv_seg(out)
/// ```
/// The SE-loss branch (`se_layer`) is training-only and not built.
struct EncHead<B: Backend>: DecodeHead {
    let inputs: HeadInputs
    let bottleneck: B.Conv
    let lateralConvs: [B.Conv]
    let fusion: B.Conv?
    let encodingProject: B.Conv
    let encoding: EncodingSpec
    let fc: B.Conv
    let convSeg: B.Conv

    init(_ cfg: DecodeHeadConfig, features: [Int], classes: Int, _ l: Loader<B>) throws {
        inputs = try HeadInputs(cfg, features: features, forceMultiple: true)
        let channels = try cfg.resolvedChannels(l.weights)
        let codes = try ModelConfigError.checked(cfg.numCodes ?? 32, "EncHead num_codes")
        let p = "decode_head"
        let w = l.weights
        let levels = inputs.channels
        bottleneck = try l.convModule("\(p).bottleneck", in: levels[levels.count - 1], out: channels, kernel: 3,
                                      padding: 1)
        if cfg.addLateral ?? false {
            lateralConvs = try levels.dropLast().enumerated().map { i, c in
                try l.convModule("\(p).lateral_convs.\(i)", in: c, out: channels, kernel: 1)
            }
            fusion = try l.convModule("\(p).fusion", in: levels.count * channels, out: channels, kernel: 3,
                                      padding: 1)
        } else {
            lateralConvs = []
            fusion = nil
        }
        let m = "\(p).enc_module"
        encodingProject = try l.convModule("\(m).encoding_project", in: channels, out: channels, kernel: 1)
        let bn = try w.batchNorm("\(m).encoding.1", channels: codes)
        encoding = EncodingSpec(
            codewords: try w.take("\(m).encoding.0.codewords", shape: [codes, channels]),
            scale: try w.vector("\(m).encoding.0.scale", count: codes),
            bnScale: bn.scale, bnShift: bn.shift)
        let fcWeight = try w.take("\(m).fc.0.weight", shape: [channels, channels])
        fc = try l.backend.makeConv(ConvSpec(
            weight: Tensor(shape: [channels, channels, 1, 1], data: fcWeight.data),
            bias: try w.vector("\(m).fc.0.bias", count: channels), relu: false))
        convSeg = try l.convSeg(channels: channels, classes: classes)
    }

    func callAsFunction(_ features: [B.Activation], _ b: B) throws -> B.Activation {
        let xs = inputs.select(features, b)
        var feat = try b.conv2d(xs[xs.count - 1], bottleneck)
        if let fusion {
            let size = b.shape(of: feat).size
            let laterals = try zip(xs, lateralConvs).map { x, conv in
                b.resizeBilinear(try b.conv2d(x, conv), to: size, alignCorners: inputs.alignCorners)
            }
            feat = try b.conv2d(concatenating: [feat] + laterals, fusion)
        }
        let e = b.encoding(try b.conv2d(feat, encodingProject), encoding)
        let gate = b.sigmoid(try b.conv2d(e, fc))
        return try b.conv2d(b.add(feat, b.mulChannels(feat, gate), relu: true), convSeg)
    }
}
