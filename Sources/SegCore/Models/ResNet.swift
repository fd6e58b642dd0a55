// mmseg ResNet backbones (`mmseg/models/backbones/resnet.py`, `mmseg/models/utils/res_layer.py`):
// `ResNet` (V1b, 7×7 stem), `ResNetV1c` (3×3 deep stem), `ResNetV1d` (deep stem + avg_down).
// Blocks first, the network below.

/// The shortcut of a block whose stride or width changes: [AvgPool(s, s, ceil) when avg_down] →
/// conv 1×1 (stride s unless avg_down) → BN. Keys `downsample.0` (+ `.1` BN), or with avg_down
/// `downsample.1` conv + `downsample.2` BN.
struct Downsample<B: Backend>: Sendable {
    let avgPool: Int?
    let conv: B.Conv

    func callAsFunction(_ x: B.Activation, _ b: B) throws -> B.Activation {
        guard let k = avgPool else { return try b.conv2d(x, conv) }
        return try b.conv2d(k > 1 ? b.avgPool2d(x, kernel: k, stride: k, ceilMode: true) : x, conv)
    }
}

/// R-18/34 block: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
/// conv1 is 3×3 with the stride and the dilation; conv2 is 3×3, padding 1, **never dilated**.
struct BasicBlock<B: Backend>: Sendable {
    let conv1: B.Conv
    let conv2: B.Conv
    let downsample: Downsample<B>?

    init(_ l: Loader<B>, _ p: String, inplanes: Int, planes: Int, stride: Int, dilation: Int,
         downsample: Downsample<B>?) throws {
        conv1 = try l.conv("\(p).conv1.weight", bn: "\(p).bn1", in: inplanes, out: planes, kernel: 3,
                           stride: stride, padding: dilation, dilation: dilation, relu: true)
        conv2 = try l.conv("\(p).conv2.weight", bn: "\(p).bn2", in: planes, out: planes, kernel: 3,
                           padding: 1, relu: true)
        self.downsample = downsample
    }

    func callAsFunction(_ x: consuming B.Activation, _ b: B) throws -> B.Activation {
        let identity = try downsample?(x, b) ?? copy x
        let y = try b.conv2d(consume x, conv1)
        return try b.conv2d(y, conv2, accumulatingInto: consume identity)
    }
}

/// R-50/101/152 block: 1×1 → 3×3 (stride and dilation, style `pytorch`) → 1×1 (×4 channels),
/// `relu(bn3(conv3(...)) + shortcut(x))`. Style `caffe` puts the stride on conv1 instead.
struct Bottleneck<B: Backend>: Sendable {
    static var expansion: Int { 4 }
    let conv1: B.Conv
    let conv2: B.Conv
    let conv3: B.Conv
    let downsample: Downsample<B>?

    init(_ l: Loader<B>, _ p: String, inplanes: Int, planes: Int, stride: Int, dilation: Int, caffe: Bool,
         downsample: Downsample<B>?) throws {
        conv1 = try l.conv("\(p).conv1.weight", bn: "\(p).bn1", in: inplanes, out: planes, kernel: 1,
                           stride: caffe ? stride : 1, relu: true)
        conv2 = try l.conv("\(p).conv2.weight", bn: "\(p).bn2", in: planes, out: planes, kernel: 3,
                           stride: caffe ? 1 : stride, padding: dilation, dilation: dilation, relu: true)
        conv3 = try l.conv("\(p).conv3.weight", bn: "\(p).bn3", in: planes, out: planes * Self.expansion,
                           kernel: 1, relu: true)
        self.downsample = downsample
    }

    func callAsFunction(_ x: consuming B.Activation, _ b: B) throws -> B.Activation {
        let identity = try downsample?(x, b) ?? copy x
        let y = try b.conv2d(b.conv2d(consume x, conv1), conv2)
        return try b.conv2d(y, conv3, accumulatingInto: consume identity)
    }
}

enum ResidualBlock<B: Backend>: Sendable {
    case basic(BasicBlock<B>)
    case bottleneck(Bottleneck<B>)

    /// Takes `x` over, so a block can write its output over its shortcut where nobody else holds it.
    func callAsFunction(_ x: consuming B.Activation, _ b: B) throws -> B.Activation {
        switch self {
        case .basic(let block): return try block(x, b)
        case .bottleneck(let block): return try block(x, b)
        }
    }
}

/// A ResNet returning the outputs of the stages in `out_indices` (stride 4, 8, 16, 32 unless dilated).
struct ResNet<B: Backend>: Sendable {
    enum Depth: Int, CaseIterable {
        case resnet18 = 18, resnet34 = 34, resnet50 = 50, resnet101 = 101, resnet152 = 152

        var layerBlockSizes: [Int] {
            switch self {
            case .resnet18: return [2, 2, 2, 2]
            case .resnet34: return [3, 4, 6, 3]
            case .resnet50: return [3, 4, 6, 3]
            case .resnet101: return [3, 4, 23, 3]
            case .resnet152: return [3, 8, 36, 3]
            }
        }

        var usesBottleneck: Bool { rawValue >= 50 }
        var expansion: Int { usesBottleneck ? Bottleneck<B>.expansion : 1 }
    }

    /// Stem convs (conv+BN+ReLU each), followed by MaxPool 3×3 s2 p1.
    let stem: [B.Conv]
    let stages: [[ResidualBlock<B>]]
    let outIndices: [Int]
    /// Channels of the input image (`in_channels`, default 3).
    let inChannels: Int
    /// Output channels of each returned feature, in `outIndices` order.
    let outChannels: [Int]

    init(_ cfg: BackboneConfig, _ l: Loader<B>) throws {
        guard let depth = Depth(rawValue: cfg.depth) else {
            throw ModelConfigError("backbone depth \(cfg.depth) is not one of 18, 34, 50, 101, 152")
        }
        let (deepStem, avgDown): (Bool, Bool)
        switch cfg.type {
        case "ResNet", "ResNetV1b": (deepStem, avgDown) = (cfg.deepStem ?? false, cfg.avgDown ?? false)
        case "ResNetV1c": (deepStem, avgDown) = (true, false)
        case "ResNetV1d": (deepStem, avgDown) = (true, true)
        default: throw ModelConfigError("backbone type '\(cfg.type)' is not supported",
                                        hint: "supported: ResNet, ResNetV1c, ResNetV1d")
        }
        let stages = cfg.numStages ?? 4
        let strides = Array((cfg.strides ?? [1, 2, 2, 2]).prefix(stages))
        let dilations = Array((cfg.dilations ?? [1, 1, 1, 1]).prefix(stages))
        outIndices = cfg.outIndices ?? [0, 1, 2, 3]
        guard (1...4).contains(stages), strides.count == stages, dilations.count == stages,
              strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }),
              outIndices.allSatisfy({ (0..<stages).contains($0) }), !outIndices.isEmpty else {
            throw ModelConfigError("backbone num_stages \(stages), strides \(strides), dilations \(dilations), "
                                   + "out_indices \(outIndices) are inconsistent")
        }
        let caffe: Bool
        switch cfg.style ?? "pytorch" {
        case "pytorch": caffe = false
        case "caffe": caffe = true
        case let other: throw ModelConfigError("backbone style '\(other)' is neither pytorch nor caffe")
        }
        let blocks = Array(depth.layerBlockSizes.prefix(stages))
        if let grid = cfg.multiGrid, grid.count != blocks[stages - 1] {
            throw ModelConfigError("multi_grid \(grid) needs one dilation per block of the last stage "
                                   + "(\(blocks[stages - 1]))")
        }
        let contract = cfg.contractDilation ?? false
        let w = l.weights
        let p = "backbone"
        let firstKey = deepStem ? "\(p).stem.0.weight" : "\(p).conv1.weight"
        let inputChannels = try ModelConfigError.checked(
            cfg.inChannels ?? w.dim(firstKey, 1, default: 3, field: "backbone.in_channels"), "backbone in_channels")
        inChannels = inputChannels
        let stemKey = deepStem ? "\(p).stem.6.weight" : "\(p).conv1.weight"
        let stemWidth = try ModelConfigError.checked(
            cfg.stemChannels ?? w.dim(stemKey, 0, default: 64, field: "backbone.stem_channels"), "backbone stem_channels")
        let base = try ModelConfigError.checked(
            cfg.baseChannels ?? w.dim("\(p).layer1.0.conv1.weight", 0, default: 64, field: "backbone.base_channels"),
            "backbone base_channels")

        if deepStem {
            let half = stemWidth / 2
            stem = [
                try l.conv("\(p).stem.0.weight", bn: "\(p).stem.1", in: inputChannels, out: half, kernel: 3,
                           stride: 2, padding: 1, relu: true),
                try l.conv("\(p).stem.3.weight", bn: "\(p).stem.4", in: half, out: half, kernel: 3,
                           padding: 1, relu: true),
                try l.conv("\(p).stem.6.weight", bn: "\(p).stem.7", in: half, out: stemWidth, kernel: 3,
                           padding: 1, relu: true),
            ]
        } else {
            stem = [try l.conv("\(p).conv1.weight", bn: "\(p).bn1", in: inputChannels, out: stemWidth, kernel: 7,
                               stride: 2, padding: 3, relu: true)]
        }

        var inplanes = stemWidth
        var built: [[ResidualBlock<B>]] = []
        var widths: [Int] = []
        for i in 0..<stages {
            let planes = base << i
            let out = planes * depth.expansion
            let grid = i == stages - 1 ? cfg.multiGrid : nil
            var layer: [ResidualBlock<B>] = []
            for j in 0..<blocks[i] {
                let prefix = "\(p).layer\(i + 1).\(j)"
                let stride = j == 0 ? strides[i] : 1
                let dilation: Int
                if let grid {
                    dilation = grid[j]
                } else if j == 0 && contract && dilations[i] > 1 {
                    dilation = dilations[i] / 2
                } else {
                    dilation = dilations[i]
                }
                var downsample: Downsample<B>? = nil
                if j == 0 && (stride != 1 || inplanes != out) {
                    let convIndex = avgDown ? 1 : 0
                    downsample = Downsample(
                        avgPool: avgDown ? stride : nil,
                        conv: try l.conv("\(prefix).downsample.\(convIndex).weight",
                                         bn: "\(prefix).downsample.\(convIndex + 1)", in: inplanes, out: out,
                                         kernel: 1, stride: avgDown ? 1 : stride, relu: false))
                }
                if depth.usesBottleneck {
                    layer.append(.bottleneck(try Bottleneck(l, prefix, inplanes: inplanes, planes: planes,
                                                            stride: stride, dilation: dilation, caffe: caffe,
                                                            downsample: downsample)))
                } else {
                    layer.append(.basic(try BasicBlock(l, prefix, inplanes: inplanes, planes: planes, stride: stride,
                                                       dilation: dilation, downsample: downsample)))
                }
                inplanes = out
            }
            built.append(layer)
            widths.append(out)
        }
        self.stages = built
        outChannels = (0..<stages).filter(outIndices.contains).map { widths[$0] }
    }

    func callAsFunction(_ input: B.Activation, _ b: B) throws -> [B.Activation] {
        var x = input
        for conv in stem { x = try b.conv2d(x, conv) }
        x = b.maxPool2d(x, kernel: 3, stride: 2, padding: 1)
        var outs: [B.Activation] = []
        for (i, stage) in stages.enumerated() {
            for block in stage { x = try block(consume x, b) }
            if outIndices.contains(i) { outs.append(x) }
        }
        return outs
    }
}
