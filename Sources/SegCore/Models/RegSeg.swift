// RegSeg exp48_decoder26 (Gao, "Rethinking Dilated Convolution for Real-time Semantic
// Segmentation"; upstream `RolandGao/RegSeg: model.py, blocks.py`), with upstream key names.
// Widths and the group width are read from the checkpoint, so slimmed variants load too.
// Blocks first, the network below.

/// The dilated block (Fig. 2 of the paper):
/// ```
/// s = shortcut(x)          stride 2: AvgPool(2, 2, ceil) → conv 1×1 → BN; width change: conv 1×1 → BN
/// y = relu(bn1(conv1(x)))                          1×1 cin → cout
/// y = relu(bn2(conv2(y)))  one dilation: 3×3 grouped (group width g), stride, pad = dil = d
///                          several: channels split in equal chunks, chunk j uses dilation d_j
/// y = y · sigmoid(se.conv2(relu(se.conv1(mean_HW(y)))))       SE width cin / 4, convs with bias
/// out = relu(bn3(conv3(y)) + s)                    1×1 cout → cout
/// ```
struct DBlock<B: Backend>: Sendable {
    struct Shortcut: Sendable {
        let avgPool: Bool
        let conv: B.Conv
    }

    let conv1: B.Conv
    /// One conv per dilation chunk, BN2 and ReLU folded into each.
    let conv2: [B.Conv]
    let chunk: Int
    let se1: B.Conv
    let se2: B.Conv
    let conv3: B.Conv
    let shortcut: Shortcut?
    let outChannels: Int

    /// `width` is the full-size model's output width, used only when synthesizing weights.
    init(_ l: Loader<B>, _ p: String, in cin: Int, width: Int, stride: Int, dilations: [Int]) throws {
        let w = l.weights
        let cout = try w.dim("\(p).conv1.weight", 0, default: width)
        outChannels = cout
        conv1 = try l.conv("\(p).conv1.weight", bn: "\(p).bn1", in: cin, out: cout, kernel: 1, relu: true)

        let splits = dilations.count
        let keys = splits == 1 ? ["\(p).conv2.weight"] : (0..<splits).map { "\(p).conv2.convs.\($0).weight" }
        let groupWidth = try w.dim(keys[0], 1, default: 16)
        guard groupWidth > 0, cout % splits == 0, (cout / splits) % groupWidth == 0 else {
            throw ModelConfigError("\(p): \(cout) channels do not split into \(splits) chunks of groups of "
                                   + "\(groupWidth)", hint: "check the RegSeg dilations against the checkpoint")
        }
        let chunk = cout / splits
        self.chunk = chunk
        let bn2 = try w.batchNorm("\(p).bn2", channels: cout)
        conv2 = try zip(keys, dilations).enumerated().map { j, kd in
            let range = (j * chunk)..<((j + 1) * chunk)
            let weight = try w.take(kd.0, shape: [chunk, groupWidth, 3, 3])
            return try l.folded(kd.0, weight, bias: nil, bn: (Array(bn2.scale[range]), Array(bn2.shift[range])),
                                stride: stride, padding: kd.1, dilation: kd.1, groups: chunk / groupWidth,
                                relu: true)
        }

        let seWidth = try w.dim("\(p).se.conv1.weight", 0, default: cin / 4)
        se1 = try l.conv("\(p).se.conv1.weight", bias: "\(p).se.conv1.bias", bn: nil, in: cout, out: seWidth,
                         kernel: 1, relu: true)
        se2 = try l.conv("\(p).se.conv2.weight", bias: "\(p).se.conv2.bias", bn: nil, in: seWidth, out: cout,
                         kernel: 1, relu: false)
        conv3 = try l.conv("\(p).conv3.weight", bn: "\(p).bn3", in: cout, out: cout, kernel: 1, relu: true)
        if stride != 1 || cin != cout {
            shortcut = Shortcut(
                avgPool: stride != 1,
                conv: try l.conv("\(p).shortcut.conv.weight", bn: "\(p).shortcut.bn", in: cin, out: cout,
                                 kernel: 1, relu: false))
        } else {
            shortcut = nil
        }
    }

    func callAsFunction(_ x: B.Activation, _ b: B) throws -> B.Activation {
        var s = x
        if let shortcut {
            s = try b.conv2d(shortcut.avgPool ? b.avgPool2d(x, kernel: 2, stride: 2, ceilMode: true) : x,
                             shortcut.conv)
        }
        var y = try b.conv2d(x, conv1)
        if conv2.count == 1 {
            y = try b.conv2d(y, conv2[0])
        } else {
            y = b.concatChannels(try conv2.enumerated().map { j, conv in
                try b.conv2d(b.sliceChannels(y, (j * chunk)..<((j + 1) * chunk)), conv)
            })
        }
        let squeeze = b.adaptiveAvgPool2d(y, to: Size2(height: 1, width: 1))
        y = b.mulChannels(y, b.sigmoid(try b.conv2d(b.conv2d(squeeze, se1), se2)))
        return try b.conv2d(y, conv3, residual: s)
    }
}

/// Decoder26: three 1×1 heads, add at 1/8, upsample and concatenate at 1/4.
/// ```
/// h8 = conv8(head8(x8) + resize(head16(x16), size(x8)))       ConvBnAct 3×3 pad 1
/// h4 = conv4(concat(resize(h8, size(x4)), head4(x4)))         ConvBnAct 3×3 pad 1
/// logits = classifier(h4)                                      1×1 with bias
/// ```
struct Decoder26<B: Backend>: Sendable {
    let head16: B.Conv
    let head8: B.Conv
    let head4: B.Conv
    let conv8: B.Conv
    let conv4: B.Conv
    let classifier: B.Conv

    init(_ l: Loader<B>, channels4: Int, channels8: Int, channels16: Int, classes: Int) throws {
        let w = l.weights
        func width(_ name: String, _ full: Int) throws -> Int {
            try w.dim("decoder.\(name).conv.weight", 0, default: full)
        }
        func cba(_ name: String, _ cin: Int, _ cout: Int, _ k: Int) throws -> B.Conv {
            try l.convModule("decoder.\(name)", in: cin, out: cout, kernel: k, padding: k / 2)
        }
        let w16 = try width("head16", 128), w8 = try width("head8", 128), w4 = try width("head4", 8)
        let o8 = try width("conv8", 64), o4 = try width("conv4", 64)
        guard w16 == w8 else {
            throw ModelConfigError("decoder.head16 (\(w16)) and decoder.head8 (\(w8)) widths must match to be added")
        }
        head16 = try cba("head16", channels16, w16, 1)
        head8 = try cba("head8", channels8, w8, 1)
        head4 = try cba("head4", channels4, w4, 1)
        conv8 = try cba("conv8", w8, o8, 3)
        conv4 = try cba("conv4", o8 + w4, o4, 3)
        classifier = try l.conv("decoder.classifier.weight", bias: "decoder.classifier.bias", bn: nil,
                                in: o4, out: classes, kernel: 1, relu: false)
    }

    func callAsFunction(_ x4: B.Activation, _ x8: B.Activation, _ x16: B.Activation, _ b: B) throws
        -> B.Activation {
        let h4 = try b.conv2d(x4, head4)
        var h8 = try b.conv2d(x8, head8)
        let h16 = b.resizeBilinear(try b.conv2d(x16, head16), to: b.shape(of: h8).size, alignCorners: false)
        h8 = try b.conv2d(b.add(h8, h16, relu: false), conv8)
        h8 = b.resizeBilinear(h8, to: b.shape(of: h4).size, alignCorners: false)
        return try b.conv2d(b.conv2d(b.concatChannels([h8, h4]), conv4), classifier)
    }
}

/// RegSeg: stem (ConvBnAct 3×3 s2) → stage4 (1 block, s2) → stage8 (3 blocks, s2) →
/// stage16 (1 + len(dilations) blocks, s2, the last one widening) → Decoder26.
struct RegSeg<B: Backend>: Sendable {
    /// exp48's body16 dilations: [1], [1,2], [1,4]×4, [1,14]×7.
    static var exp48Dilations: [[Int]] {
        [[1], [1, 2]] + Array(repeating: [1, 4], count: 4) + Array(repeating: [1, 14], count: 7)
    }

    let stem: B.Conv
    let stage4: DBlock<B>
    let stage8: [DBlock<B>]
    let stage16: [DBlock<B>]
    let decoder: Decoder26<B>

    init(_ cfg: ModelConfig, classes: Int, _ l: Loader<B>) throws {
        let dilations = cfg.dilations ?? Self.exp48Dilations
        guard !dilations.isEmpty, dilations.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 >= 1 } }) else {
            throw ModelConfigError("RegSeg dilations \(dilations) must be non-empty lists of positive values")
        }
        let stemWidth = try l.weights.dim("stem.conv.weight", 0, default: 32)
        stem = try l.convModule("stem", in: 3, out: stemWidth, kernel: 3, stride: 2, padding: 1)
        stage4 = try DBlock(l, "body.stage4", in: stemWidth, width: 48, stride: 2, dilations: [1])
        var width = stage4.outChannels
        var blocks8: [DBlock<B>] = []
        for j in 0..<3 {
            blocks8.append(try DBlock(l, "body.stage8.\(j)", in: width, width: 128, stride: j == 0 ? 2 : 1,
                                      dilations: [1]))
            width = blocks8[j].outChannels
        }
        var blocks16: [DBlock<B>] = []
        for (j, d) in ([[1]] + dilations).enumerated() {
            blocks16.append(try DBlock(l, "body.stage16.\(j)", in: width, width: j == dilations.count ? 320 : 256,
                                       stride: j == 0 ? 2 : 1, dilations: d))
            width = blocks16[j].outChannels
        }
        stage8 = blocks8
        stage16 = blocks16
        decoder = try Decoder26(l, channels4: stage4.outChannels, channels8: blocks8[2].outChannels,
                                channels16: width, classes: classes)
    }

    /// Returns (stem, x4, x8, x16) and the decoder's logits at 1/4 resolution.
    func callAsFunction(_ x: B.Activation, _ b: B) throws -> (features: [B.Activation], logits: B.Activation) {
        let s = try b.conv2d(x, stem)
        let x4 = try stage4(s, b)
        var x8 = x4
        for block in stage8 { x8 = try block(x8, b) }
        var x16 = x8
        for block in stage16 { x16 = try block(x16, b) }
        return ([s, x4, x8, x16], try decoder(x4, x8, x16, b))
    }
}
