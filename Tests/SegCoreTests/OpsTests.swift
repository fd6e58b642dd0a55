import Foundation
import SegCore
import Testing

/// Tiny cases computed by hand (in the comments), plus naive loops as second implementations.
@Suite("Reference ops")
struct OpsTests {
    private func t(_ shape: [Int], _ values: [Float]) -> Tensor { Tensor(shape: shape, data: values) }

    private func ramp(_ shape: [Int], from start: Float = 0) -> Tensor {
        t(shape, (0..<shape.reduce(1, *)).map { start + Float($0) })
    }

    private func close(_ a: Tensor, _ b: Tensor, _ tolerance: Float = 1e-6) -> Bool {
        a.shape == b.shape && zip(a.data, b.data).allSatisfy { abs($0 - $1) <= tolerance }
    }

    private func conv(_ weight: Tensor, bias: [Float]? = nil, stride: Int = 1, padding: Int = 0,
                      dilation: Int = 1, groups: Int = 1, relu: Bool = false) -> ConvSpec {
        ConvSpec(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups,
                 relu: relu)
    }

    // MARK: conv2d

    @Test func convPlainStridePadding() {
        // x = [[1,2,3],[4,5,6],[7,8,9]], kernel 2×2 of ones: [[12,16],[24,28]].
        let x = ramp([1, 1, 3, 3], from: 1)
        #expect(Kernels.conv2d(x, conv(t([1, 1, 2, 2], [1, 1, 1, 1]))) == t([1, 1, 2, 2], [12, 16, 24, 28]))
        // 3×3 ones, stride 2, padding 1: windows centred on (0,0),(0,2),(2,0),(2,2) → same sums.
        let strided = Kernels.conv2d(x, conv(t([1, 1, 3, 3], Array(repeating: 1, count: 9)), stride: 2, padding: 1))
        #expect(strided == t([1, 1, 2, 2], [12, 16, 24, 28]))
    }

    @Test func convDilation() {
        // x = 0...24 on 5×5, 3×3 ones with dilation 2 sums rows/cols {0,2,4}: 6 + 36 + 66 = 108.
        let x = ramp([1, 1, 5, 5])
        let ones = t([1, 1, 3, 3], Array(repeating: 1, count: 9))
        #expect(Kernels.conv2d(x, conv(ones, dilation: 2)) == t([1, 1, 1, 1], [108]))
        // With padding 2 the output is 5×5; its corner sees (0,0),(0,2),(2,0),(2,2) = 0+2+10+12.
        let padded = Kernels.conv2d(x, conv(ones, padding: 2, dilation: 2))
        #expect(padded.shape == [1, 1, 5, 5])
        #expect(padded.data[0] == 24 && padded.data[12] == 108)
    }

    @Test func convGroupsDepthwiseBiasResidualReLU() {
        // groups 2: out0 = 1·1 + 2·10 = 21, out1 = 3·100 + 4·1000 = 4300.
        let grouped = Kernels.conv2d(t([1, 4, 1, 1], [1, 2, 3, 4]),
                                     conv(t([2, 2, 1, 1], [1, 10, 100, 1000]), groups: 2))
        #expect(grouped == t([1, 2, 1, 1], [21, 4300]))
        // Depthwise 2×2: ch0 [1,2,3,4]·[1,0,0,1] = 5 (+0.5), ch1 [5,6,7,8]·[0,1,1,0] = 13 (-1).
        let depthwise = Kernels.conv2d(ramp([1, 2, 2, 2], from: 1),
                                       conv(t([2, 1, 2, 2], [1, 0, 0, 1, 0, 1, 1, 0]), bias: [0.5, -1], groups: 2))
        #expect(depthwise == t([1, 2, 1, 1], [5.5, 12]))
        // relu(2x + 1 + residual): x = [1, -3] → [3, -5] + [1, 1] = [4, -4] → [4, 0].
        let fused = Kernels.conv2d(t([1, 1, 1, 2], [1, -3]), conv(t([1, 1, 1, 1], [2]), bias: [1], relu: true),
                                   residual: t([1, 1, 1, 2], [1, 1]))
        #expect(fused == t([1, 1, 1, 2], [4, 0]))
    }

    /// Direct 7-loop convolution, the second implementation for random cases.
    private func naiveConv(_ x: Tensor, _ c: ConvSpec) -> Tensor {
        let (n, ch, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oc, kh, kw) = (c.outChannels, c.kernelHeight, c.kernelWidth)
        let o = c.outputSize(for: Size2(height: h, width: w))
        let cg = ch / c.groups, ocg = oc / c.groups
        var out = Tensor(zeros: [n, oc, o.height, o.width])
        for b in 0..<n {
            for m in 0..<oc {
                let g = m / ocg
                for oy in 0..<o.height {
                    for ox in 0..<o.width {
                        var sum = Double(c.bias?[m] ?? 0)
                        for ci in 0..<cg {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = oy * c.stride - c.padding + ky * c.dilation
                                    let ix = ox * c.stride - c.padding + kx * c.dilation
                                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                    let xv = x.data[((b * ch + g * cg + ci) * h + iy) * w + ix]
                                    let wv = c.weight.data[((m * cg + ci) * kh + ky) * kw + kx]
                                    sum += Double(xv) * Double(wv)
                                }
                            }
                        }
                        out.data[((b * oc + m) * o.height + oy) * o.width + ox] = Float(sum)
                    }
                }
            }
        }
        return out
    }

    private func pseudoRandom(_ shape: [Int], seed: UInt64) -> Tensor {
        var state = seed
        let values = (0..<shape.reduce(1, *)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 40) % 2001 - 1000) / 1000
        }
        return t(shape, values)
    }

    @Test("im2col + GEMM equals a direct loop", arguments: [
        // (stride, padding, dilation, groups, kernel, column budget)
        (1, 1, 1, 1, 3, Kernels.im2colBudget), (2, 1, 1, 1, 3, Kernels.im2colBudget),
        (1, 2, 2, 2, 3, Kernels.im2colBudget), (2, 3, 1, 1, 7, Kernels.im2colBudget),
        (1, 3, 3, 6, 3, Kernels.im2colBudget), (2, 0, 1, 3, 1, Kernels.im2colBudget),
        (1, 1, 1, 1, 3, 200), (2, 2, 2, 3, 3, 1),
    ])
    func convMatchesNaive(_ p: (Int, Int, Int, Int, Int, Int)) {
        let (stride, padding, dilation, groups, kernel, budget) = p
        let x = pseudoRandom([2, 6, 11, 9], seed: 1)
        let spec = conv(pseudoRandom([6, 6 / groups, kernel, kernel], seed: 2), bias: (0..<6).map { Float($0) / 7 },
                        stride: stride, padding: padding, dilation: dilation, groups: groups)
        let ours = Kernels.conv2d(x, spec, maxColumnFloats: budget)
        #expect(close(ours, naiveConv(x, spec), 1e-5))
    }

    // MARK: pooling

    @Test func maxPoolStemGeometry() {
        // 4×4 ramp, 3×3 s2 p1: windows clipped at the border → [[5,7],[13,15]].
        let pooled = Kernels.maxPool2d(ramp([1, 1, 4, 4]), kernel: 3, stride: 2, padding: 1)
        #expect(pooled == t([1, 1, 2, 2], [5, 7, 13, 15]))
        // All negative (-1...-16): padding must not contribute a zero; the top-left element of each
        // clipped window wins: (0,0), (0,1), (1,0), (1,1) → -1, -2, -5, -6.
        let negative = t([1, 1, 4, 4], (0..<16).map { -1 - Float($0) })
        #expect(Kernels.maxPool2d(negative, kernel: 3, stride: 2, padding: 1).data == [-1, -2, -5, -6])
    }

    @Test func avgPoolCeilModeCountsInBoundsOnly() {
        // 3×3 ramp 1...9, 2×2 s2 ceil: [1,2,4,5]→3, [3,6]→4.5, [7,8]→7.5, [9]→9.
        let x = ramp([1, 1, 3, 3], from: 1)
        #expect(Kernels.avgPool2d(x, kernel: 2, stride: 2, ceilMode: true) == t([1, 1, 2, 2], [3, 4.5, 7.5, 9]))
        #expect(Kernels.avgPool2d(x, kernel: 2, stride: 2, ceilMode: false) == t([1, 1, 1, 1], [3]))
        #expect(Kernels.avgPool2d(t([1, 1, 1, 1], [4]), kernel: 2, stride: 2, ceilMode: true) == t([1, 1, 1, 1], [4]))
    }

    @Test("adaptive average pooling bins, including overlapping ones", arguments: [
        // (input length, bins, bin means of 0..<n), worked out from [floor(i·n/s), ceil((i+1)·n/s)).
        (8, 3, [1, 3.5, 6] as [Float]),                   // [0,3) [2,6) [5,8)
        (8, 6, [0.5, 1.5, 2.5, 4.5, 5.5, 6.5] as [Float]), // [0,2) [1,3) [2,4) [4,6) [5,7) [6,8)
        (10, 6, [0.5, 2, 3.5, 5.5, 7, 8.5] as [Float]),   // [0,2) [1,4) [3,5) [5,7) [6,9) [8,10)
        (12, 6, [0.5, 2.5, 4.5, 6.5, 8.5, 10.5] as [Float]),
        (5, 1, [2] as [Float]),
    ])
    func adaptiveBins(_ p: (Int, Int, [Float])) {
        let (n, bins, means) = p
        let row = Kernels.adaptiveAvgPool2d(ramp([1, 1, 1, n]), to: Size2(height: 1, width: bins))
        #expect(row == t([1, 1, 1, bins], means))
        // 2-D: value = 100·row + col, so each bin's mean is 100·(row mean) + (col mean).
        let rowMeans: [Float] = [1, 3.5, 6]                // 8 → 3
        var grid = Tensor(zeros: [1, 1, 8, n])
        for y in 0..<8 { for x in 0..<n { grid.data[y * n + x] = Float(100 * y + x) } }
        let pooled = Kernels.adaptiveAvgPool2d(grid, to: Size2(height: 3, width: bins))
        let expected = rowMeans.flatMap { r in means.map { 100 * r + $0 } }
        #expect(close(pooled, t([1, 1, 3, bins], expected), 1e-4))
    }

    // MARK: resize

    @Test("bilinear resize, align_corners false and true", arguments: [
        // (input values, output length, align_corners, expected), worked out in the comments.
        ([0, 1], 4, false, [0, 0.25, 0.75, 1]),   // src = max((d+.5)/2 - .5, 0) = 0, .25, .75, 1.25→clamped
        ([0, 1], 4, true, [0, 1.0 / 3, 2.0 / 3, 1]), // src = d/3
        ([0, 1, 2, 3, 4], 3, false, [1.0 / 3, 2, 11.0 / 3]), // scale 5/3: src = 1/3, 2, 11/3
        ([0, 1, 2, 3, 4], 3, true, [0, 2, 4]),
        ([0, 1, 2], 2, false, [0.25, 1.75]),       // scale 1.5: src = .25, 1.75
        ([0, 10, 40], 5, false, [0, 4, 10, 28, 40]), // scale .6: src = 0, .4, 1, 1.6, 2.2→clamped
        ([0, 10, 40], 5, true, [0, 5, 10, 25, 40]),  // src = d/2
        ([7], 3, false, [7, 7, 7]),
        ([7], 3, true, [7, 7, 7]),
    ] as [([Float], Int, Bool, [Float])])
    func resize1D(_ p: ([Float], Int, Bool, [Float])) {
        let (values, out, alignCorners, expected) = p
        // Along W, and the same along H (transposed layout).
        let wide = Kernels.resizeBilinear(t([1, 1, 1, values.count], values), to: Size2(height: 1, width: out),
                                          alignCorners: alignCorners)
        #expect(close(wide, t([1, 1, 1, out], expected), 1e-5))
        let tall = Kernels.resizeBilinear(t([1, 1, values.count, 1], values), to: Size2(height: out, width: 1),
                                          alignCorners: alignCorners)
        #expect(close(tall, t([1, 1, out, 1], expected), 1e-5))
    }

    @Test func resize2DBroadcastAndIdentity() {
        // A linear function 2y + x is reproduced exactly by bilinear interpolation (align_corners true).
        let x = t([1, 1, 2, 2], [0, 1, 2, 3])
        let up = Kernels.resizeBilinear(x, to: Size2(height: 3, width: 3), alignCorners: true)
        #expect(close(up, t([1, 1, 3, 3], [0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3])))
        // 1×1 → H×W is a broadcast per channel (ASPP image pool).
        let pooled = t([1, 2, 1, 1], [3, -2])
        let broadcast = Kernels.resizeBilinear(pooled, to: Size2(height: 5, width: 3), alignCorners: false)
        #expect(broadcast.data == Array(repeating: 3, count: 15) + Array(repeating: -2, count: 15))
        #expect(Kernels.resizeBilinear(x, to: Size2(height: 2, width: 2), alignCorners: false) == x)
    }

    // MARK: softmax, argmax, elementwise

    @Test func softmaxOverChannels() {
        // exp([0, ln2, ln3]) = [1, 2, 3] → [1/6, 1/3, 1/2]; a +1000 offset must not overflow
        // (1000 + ln2 is only representable to ~6e-5 in Float, hence the looser tolerance).
        let l2 = Float(log(2.0)), l3 = Float(log(3.0))
        let x = t([1, 3, 1, 2], [0, 1000, l2, 1000 + l2, l3, 1000 + l3])
        let y = Kernels.softmaxChannels(x)
        #expect(close(y, t([1, 3, 1, 2], [1.0 / 6, 1.0 / 6, 1.0 / 3, 1.0 / 3, 0.5, 0.5]), 2e-5))
    }

    @Test func argmaxTakesFirstMaximum() {
        // pixels: [1,5,5] → 1, [2,2,2] → 0, [0,1,3] → 2.
        let x = t([1, 3, 1, 3], [1, 2, 0, 5, 2, 1, 5, 2, 3])
        #expect(Kernels.argmaxChannels(x) == [1, 0, 2])
    }

    @Test func elementwiseOps() {
        let x = t([1, 2, 1, 2], [1, -2, 3, -4])
        #expect(Kernels.flipHorizontal(x) == t([1, 2, 1, 2], [-2, 1, -4, 3]))
        #expect(Kernels.relu(x).data == [1, 0, 3, 0])
        #expect(close(Kernels.sigmoid(t([1, 1, 1, 2], [0, Float(log(3.0))])), t([1, 1, 1, 2], [0.5, 0.75])))
        #expect(Kernels.mulChannels(x, t([1, 2, 1, 1], [2, -1])).data == [2, -4, -3, 4])
        #expect(Kernels.add(x, x, relu: true).data == [2, 0, 6, 0])
        let joined = Kernels.concatChannels([x, t([1, 1, 1, 2], [9, 8])])
        #expect(joined == t([1, 3, 1, 2], [1, -2, 3, -4, 9, 8]))
        #expect(Kernels.sliceChannels(joined, 1..<3) == t([1, 2, 1, 2], [3, -4, 9, 8]))
    }

    // MARK: Encoding

    @Test func encodingHandComputed() {
        // C = 1, K = 2, pixels x = [0, 2], codewords [0, 2], scale -ln3/4 for both codes.
        // Pixel 0: d² = [0, 4] → logits [0, -ln3] → A = [3/4, 1/4]; pixel 1: A = [1/4, 3/4].
        // E = [3/4·0 + 1/4·2, 1/4·(-2) + 3/4·0] = [0.5, -0.5]; BN scale [2, 1], shift [0, 1] → [1, 0.5];
        // relu, mean over codes → 0.75.
        let s = -Float(log(3.0)) / 4
        let spec = EncodingSpec(codewords: t([2, 1], [0, 2]), scale: [s, s], bnScale: [2, 1], bnShift: [0, 1])
        let out = Kernels.encoding(t([1, 1, 1, 2], [0, 2]), spec)
        #expect(close(out, t([1, 1, 1, 1], [0.75]), 1e-6))
        // Scale 0: uniform assignment, E = [1, -1] → relu → mean 0.5.
        let uniform = EncodingSpec(codewords: t([2, 1], [0, 2]), scale: [0, 0], bnScale: [1, 1], bnShift: [0, 0])
        #expect(close(Kernels.encoding(t([1, 1, 1, 2], [0, 2]), uniform), t([1, 1, 1, 1], [0.5])))
    }

    @Test func encodingMatchesMMSegFormulation() {
        // mmseg's broadcast formulation written out naively in Float.
        let (c, k, h, w) = (5, 4, 3, 2)
        let x = pseudoRandom([1, c, h, w], seed: 3)
        let codewords = pseudoRandom([k, c], seed: 4)
        let scale = pseudoRandom([k], seed: 5).data.map { -abs($0) }
        let bnScale = pseudoRandom([k], seed: 6).data, bnShift = pseudoRandom([k], seed: 7).data
        var e = [Float](repeating: 0, count: k * c)
        for i in 0..<(h * w) {
            let xi = (0..<c).map { x.data[$0 * h * w + i] }
            let logits = (0..<k).map { kk in
                scale[kk] * (0..<c).reduce(Float(0)) { $0 + pow(xi[$1] - codewords.data[kk * c + $1], 2) }
            }
            let m = logits.max()!
            let ex = logits.map { exp($0 - m) }
            let sum = ex.reduce(0, +)
            for kk in 0..<k {
                for cc in 0..<c { e[kk * c + cc] += ex[kk] / sum * (xi[cc] - codewords.data[kk * c + cc]) }
            }
        }
        let expected = (0..<c).map { cc in
            (0..<k).reduce(Float(0)) { $0 + max(bnScale[$1] * e[$1 * c + cc] + bnShift[$1], 0) } / Float(k)
        }
        let spec = EncodingSpec(codewords: codewords, scale: scale, bnScale: bnScale, bnShift: bnShift)
        #expect(close(Kernels.encoding(x, spec), t([1, c, 1, 1], expected), 1e-5))
    }

    // MARK: backend defaults

    @Test func defaultOpsRouteThroughKernels() {
        // A backend implementing only the required ops gets every other op from the reference kernels.
        struct Minimal: Backend {
            var name: String { "minimal" }
            func makeConv(_ spec: ConvSpec) throws -> ConvSpec { spec }
            func upload(_ x: Tensor) -> [Float] { x.data + [Float(x.shape[0]), Float(x.shape[1]),
                                                            Float(x.shape[2]), Float(x.shape[3])] }
            func download(_ x: [Float]) -> Tensor {
                let dims = x.suffix(4).map { Int($0) }
                return Tensor(shape: dims, data: Array(x.dropLast(4)))
            }
            func shape(of x: [Float]) -> Shape4 { Shape4(download(x).shape)! }
            func conv2d(_ x: [Float], _ conv: ConvSpec, residual: [Float]?) -> [Float] {
                upload(Kernels.conv2d(download(x), conv, residual: residual.map(download)))
            }
        }
        let b = Minimal()
        let x = ramp([1, 2, 4, 4])
        let size = Size2(height: 3, width: 5)
        #expect(b.download(b.resizeBilinear(b.upload(x), to: size, alignCorners: false))
                == Kernels.resizeBilinear(x, to: size, alignCorners: false))
        #expect(b.download(b.maxPool2d(b.upload(x), kernel: 3, stride: 2, padding: 1))
                == Kernels.maxPool2d(x, kernel: 3, stride: 2, padding: 1))
        #expect(b.argmaxChannels(b.upload(x)) == Kernels.argmaxChannels(x))
    }
}
