import Foundation
import TestSupport
import Testing
@testable import SegCore

/// FastBackend (oneDNN + our NHWC kernels) against two independent oracles: a naive direct
/// convolution written here, and the reference backend's kernels for every other op.
@Suite struct FastBackendTests {
    static let backend: FastBackend? = try? FastBackend(threads: 2, winograd: .always)

    /// Deterministic uniform values in [-1, 1) (SplitMix64), so failures reproduce.
    struct Noise {
        var state: UInt64
        mutating func next() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476C_E5B9_BA1D
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 24) * 2 - 1
        }
        mutating func tensor(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in next() })
        }
    }

    /// The largest |y − expected| relative to Σ|w·x| (`naiveConv`'s scale) over the outputs.
    static func worstRelativeError(_ y: Tensor, _ expected: Tensor, _ scale: [Float]) -> Float {
        var worst: Float = 0
        for i in expected.data.indices { worst = max(worst, abs(y.data[i] - expected.data[i]) / (scale[i] + 1e-6)) }
        return worst
    }

    /// Direct convolution, NCHW, PyTorch semantics; also returns Σ|w·x| (+|bias|+|residual|) per
    /// output, the scale the tolerance is relative to.
    static func naiveConv(_ x: Tensor, _ spec: ConvSpec, residual: Tensor?) -> (Tensor, [Float]) {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let oc = spec.outChannels, kh = spec.kernelHeight, kw = spec.kernelWidth
        let out = spec.outputSize(for: Size2(height: h, width: w))
        let cpg = c / spec.groups, opg = oc / spec.groups
        var y = [Float](repeating: 0, count: n * oc * out.height * out.width)
        var scale = y
        for b in 0..<n {
            for o in 0..<oc {
                let g = o / opg
                for oy in 0..<out.height {
                    for ox in 0..<out.width {
                        var sum = Double(spec.bias?[o] ?? 0), mag = Double(abs(spec.bias?[o] ?? 0))
                        for ci in 0..<cpg {
                            for ky in 0..<kh {
                                let iy = oy * spec.stride - spec.padding + ky * spec.dilation
                                guard iy >= 0 && iy < h else { continue }
                                for kx in 0..<kw {
                                    let ix = ox * spec.stride - spec.padding + kx * spec.dilation
                                    guard ix >= 0 && ix < w else { continue }
                                    let xv = x.data[((b * c + g * cpg + ci) * h + iy) * w + ix]
                                    let wv = spec.weight.data[((o * cpg + ci) * kh + ky) * kw + kx]
                                    sum += Double(xv * wv)
                                    mag += Double(abs(xv * wv))
                                }
                            }
                        }
                        let index = ((b * oc + o) * out.height + oy) * out.width + ox
                        if let residual {
                            sum += Double(residual.data[index])
                            mag += Double(abs(residual.data[index]))
                        }
                        y[index] = spec.relu ? Float(max(sum, 0)) : Float(sum)
                        scale[index] = Float(mag)
                    }
                }
            }
        }
        return (Tensor(shape: [n, oc, out.height, out.width], data: y), scale)
    }

    struct ConvCase: CustomStringConvertible, Sendable {
        var n: Int, c: Int, oc: Int, h: Int, w: Int, kh: Int, kw: Int
        var stride: Int, padding: Int, dilation: Int, groups: Int
        var bias: Bool, relu: Bool, residual: Bool

        init(n: Int = 1, c: Int, oc: Int, h: Int, w: Int, kh: Int = 3, kw: Int = 3, stride: Int = 1,
             padding: Int = 1, dilation: Int = 1, groups: Int = 1, bias: Bool = true, relu: Bool = true,
             residual: Bool = false) {
            (self.n, self.c, self.oc, self.h, self.w, self.kh, self.kw) = (n, c, oc, h, w, kh, kw)
            (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
            (self.bias, self.relu, self.residual) = (bias, relu, residual)
        }
        var description: String {
            "n\(n) \(c)->\(oc) \(h)x\(w) k\(kh)x\(kw) s\(stride) p\(padding) d\(dilation) g\(groups)"
                + "\(bias ? " bias" : "")\(relu ? " relu" : "")\(residual ? " residual" : "")"
        }
    }

    static let convCases: [ConvCase] = [
        ConvCase(c: 3, oc: 8, h: 17, w: 19, stride: 2),                                  // stem-like
        ConvCase(c: 16, oc: 32, h: 12, w: 11, padding: 2, dilation: 2),                  // dilated
        ConvCase(c: 16, oc: 24, h: 13, w: 13, kh: 1, kw: 1, stride: 2, padding: 0, relu: false), // downsample
        ConvCase(n: 2, c: 16, oc: 16, h: 9, w: 10, residual: true),                      // BasicBlock conv2
        ConvCase(c: 16, oc: 16, h: 9, w: 10, relu: false, residual: true),
        ConvCase(c: 32, oc: 32, h: 13, w: 10, padding: 4, dilation: 4),                 // sub-grid Winograd
        ConvCase(n: 2, c: 16, oc: 16, h: 9, w: 11, padding: 2, dilation: 2, residual: true),
        ConvCase(c: 64, oc: 64, h: 16, w: 16, relu: false),                              // Winograd
        ConvCase(c: 32, oc: 64, h: 8, w: 8, groups: 2),                                  // RegSeg-like grouped
        ConvCase(c: 20, oc: 6, h: 7, w: 9, kh: 1, kw: 1, padding: 0, relu: false),       // conv_seg
        ConvCase(c: 8, oc: 12, h: 10, w: 9, kh: 1, kw: 3, padding: 1, bias: false),      // rectangular kernel
        ConvCase(c: 140, oc: 140, h: 11, w: 12, groups: 140),                            // depthwise, tails
        ConvCase(c: 64, oc: 64, h: 20, w: 18, padding: 12, dilation: 12, groups: 64),    // ASPP depthwise
        ConvCase(c: 19, oc: 19, h: 15, w: 14, stride: 2, padding: 3, dilation: 3, groups: 19, bias: false),
        ConvCase(n: 2, c: 13, oc: 13, h: 6, w: 7, groups: 13, relu: false, residual: true),
    ]

    /// Without Winograd every dense conv takes oneDNN's direct kernel.
    static let directBackend: FastBackend? = try? FastBackend(threads: 2, winograd: .never)

    @Test("convolution matches a naive direct convolution", arguments: convCases, [true, false])
    func convolution(_ t: ConvCase, winograd: Bool) throws {
        guard let backend = winograd ? Self.backend : Self.directBackend else {
            Issue.record("oneDNN engine could not be created")
            return
        }
        var noise = Noise(state: UInt64(t.c * 1000 + t.oc))
        let x = noise.tensor([t.n, t.c, t.h, t.w])
        let spec = ConvSpec(weight: noise.tensor([t.oc, t.c / t.groups, t.kh, t.kw]),
                            bias: t.bias ? noise.tensor([t.oc]).data : nil, stride: t.stride, padding: t.padding,
                            dilation: t.dilation, groups: t.groups, relu: t.relu)
        let out = spec.outputSize(for: Size2(height: t.h, width: t.w))
        let residual = t.residual ? noise.tensor([t.n, t.oc, out.height, out.width]) : nil
        let (expected, scale) = Self.naiveConv(x, spec, residual: residual)
        let conv = try backend.makeConv(spec)
        #expect(conv.kernelKind == (spec.groups == t.c && t.c == t.oc && t.groups > 1 ? "depthwise" : "onednn"))
        // Twice: the second call reuses the cached primitive and pooled buffers.
        var worstSeen: Float = 0
        for _ in 0..<2 {
            let y = backend.download(try backend.conv2d(backend.upload(x), conv,
                                                       residual: residual.map(backend.upload)))
            #expect(y.shape == expected.shape)
            let worst = Self.worstRelativeError(y, expected, scale)
            #expect(worst <= 1e-4, "\(t): relative error \(worst)")
            worstSeen = max(worstSeen, worst)
        }
        let kernel = try conv.implementation(n: t.n, h: t.h, w: t.w)
        print("conv \(t) winograd \(winograd): \(kernel), error \(worstSeen) of Σ|w·x|")
    }

    /// A Winograd convolution over 1024 input channels runs as two parts of 512, summed in the
    /// kernel's blocked output (bias on the first, residual and ReLU at the end); the same
    /// convolution over the concatenation of two 512-channel inputs reads them in place; inputs
    /// that do not split into whole parts (768 + 256) are concatenated first. All against the
    /// naive convolution of the concatenation.
    @Test func wideConvolutionRunsInPartsAndReadsConcatenatedInputsInPlace() throws {
        guard let b = Self.backend else { Issue.record("oneDNN engine could not be created"); return }
        var noise = Noise(state: 1024)
        let (h, w) = (7, 6)
        let x = noise.tensor([1, 1024, h, w])
        let spec = ConvSpec(weight: noise.tensor([32, 1024, 3, 3]), bias: noise.tensor([32]).data, padding: 1,
                            relu: true)
        let residual = noise.tensor([1, 32, h, w])
        let conv = try b.makeConv(spec)
        #expect(try conv.implementation(n: 1, h: h, w: w).hasSuffix("in 2 parts of 512 channels"))
        func expectMatches(_ y: Tensor, _ expected: (Tensor, [Float]), _ what: String) {
            #expect(y.shape == expected.0.shape, "\(what): shape \(y.shape)")
            let worst = Self.worstRelativeError(y, expected.0, expected.1)
            #expect(worst <= 1e-4, "\(what): relative error \(worst)")
        }
        for _ in 0..<2 {  // again with the cached plans and pooled buffers
            expectMatches(b.download(try b.conv2d(b.upload(x), conv, residual: b.upload(residual))),
                          Self.naiveConv(x, spec, residual: residual), "1024 channels with a residual")
        }
        let plain = Self.naiveConv(x, spec, residual: nil)
        for split in [512, 768] {
            let first = Kernels.sliceChannels(x, 0..<split), second = Kernels.sliceChannels(x, split..<1024)
            let y = try b.conv2d(concatenating: [b.upload(first), b.upload(second)], conv)
            expectMatches(b.download(y), plain, "concatenation of \(split) + \(1024 - split) channels")
        }
    }

    /// A convolution gives the same bits for an input size whatever sizes it ran before: each
    /// layer drops its OIHW weights once an exact (f32 blocked) copy exists and recovers them from
    /// it for a new layout, so a history of other sizes must not change a value.
    @Test(arguments: [WinogradPolicy.always, .standard])
    func outputsDoNotDependOnTheSizesRunBefore(_ policy: WinogradPolicy) throws {
        // `standard`: the 3×3 layer runs direct below 32² (its OIHW copy goes) and Winograd at 64×48.
        let b = try FastBackend(threads: 2, winograd: policy)
        var noise = Noise(state: 99)
        let specs = [
            ConvSpec(weight: noise.tensor([96, 64, 1, 1]), bias: noise.tensor([96]).data, relu: true),
            ConvSpec(weight: noise.tensor([48, 32, 3, 3]), bias: nil, stride: 2, padding: 1, relu: false),
            ConvSpec(weight: noise.tensor([64, 64, 3, 3]), bias: noise.tensor([64]).data, padding: 1, relu: true),
        ]
        let sizes = [(16, 16), (9, 13), (31, 7), (64, 48)]
        for spec in specs {
            let seasoned = try b.makeConv(spec)
            var last = Tensor(shape: [1], data: [0])
            for (h, w) in sizes {
                let x = noise.tensor([1, spec.inChannels, h, w])
                last = x
                let y = b.download(try b.conv2d(b.upload(x), seasoned))
                let (expected, scale) = Self.naiveConv(x, spec, residual: nil)
                let worst = Self.worstRelativeError(y, expected, scale)
                #expect(worst <= 1e-4, "\(spec.geometry) at \(h)×\(w): relative error \(worst)")
            }
            let fresh = try b.makeConv(spec)
            let afterHistory = b.download(try b.conv2d(b.upload(last), seasoned))
            let alone = b.download(try b.conv2d(b.upload(last), fresh))
            #expect(afterHistory.data == alone.data, "\(spec.geometry): the sizes run before changed the output")
        }
    }

    /// The standard policy runs Winograd only from 32 × 32 = 1024 output pixels (31 × 33 is one
    /// short): a smaller input of the same layer (plain, dilated on sub-grids, or wide in parts)
    /// takes the direct kernel, and both match the naive convolution.
    @Test func winogradRunsOnlyWhereTheOutputIsLargeEnough() throws {
        let b = try FastBackend(threads: 2)
        var noise = Noise(state: 321)
        let specs = [
            ConvSpec(weight: noise.tensor([32, 64, 3, 3]), bias: noise.tensor([32]).data, padding: 1, relu: true),
            ConvSpec(weight: noise.tensor([32, 32, 3, 3]), bias: noise.tensor([32]).data, padding: 2, dilation: 2,
                     relu: true),
            ConvSpec(weight: noise.tensor([16, 1024, 3, 3]), bias: noise.tensor([16]).data, padding: 1, relu: false),
            // Dilated and wide: the sub-grid convolution runs in parts, which hold only their slices,
            // so the direct kernel at small sizes needs the layer's own OIHW copy.
            ConvSpec(weight: noise.tensor([16, 1024, 3, 3]), bias: noise.tensor([16]).data, padding: 2, dilation: 2,
                     relu: false),
        ]
        for spec in specs {
            let conv = try b.makeConv(spec)
            for (h, w, winograd) in [(40, 30, true), (16, 16, false), (32, 32, true), (31, 33, false), (8, 12, false)] {
                let kernel = try conv.implementation(n: 1, h: h, w: w)
                #expect(kernel.contains("wino") == winograd, "\(spec.geometry) at \(h)×\(w): \(kernel)")
                let x = noise.tensor([1, spec.inChannels, h, w])
                let y = b.download(try b.conv2d(b.upload(x), conv))
                let (expected, scale) = Self.naiveConv(x, spec, residual: nil)
                let worst = Self.worstRelativeError(y, expected, scale)
                #expect(worst <= 1e-4, "\(spec.geometry) at \(h)×\(w) (\(kernel)): relative error \(worst)")
            }
        }
        // The dilated wide layer's own copy goes to the temporary file at load (only a direct kernel
        // at small sizes reads it), not kept in memory beside the parts' slices.
        let fresh = try FastBackend(threads: 2)
        _ = try fresh.makeConv(specs[3])
        let held = fresh.heldBytes
        #expect(held.spilled + held.unspilled == specs[3].weight.data.count * MemoryLayout<Float>.stride)
    }

    /// A layer whose packed weights cannot give the OIHW values back (Winograd domain, bf16) puts
    /// them in the temporary file; a later size that needs another layout reads them back, and its
    /// output is bit for bit that of a backend that never dropped them.
    @Test(arguments: [Precision.f32, .bf16])
    func weightsWithoutAnExactCopyComeBackFromTheTemporaryFile(precision: Precision) throws {
        var noise = Noise(state: 99)
        let specs = [
            ConvSpec(weight: noise.tensor([48, 64, 3, 3]), bias: noise.tensor([48]).data, padding: 1, relu: true),
            ConvSpec(weight: noise.tensor([32, 32, 3, 3]), bias: nil, padding: 2, dilation: 2, relu: false),
        ]
        let b = try FastBackend(threads: 2, precision: precision)
        let convs = try specs.map { try b.makeConv($0) }
        // bf16 mode without AVX512-BF16 runs f32 (and says so): the Winograd layers still spill.
        for (spec, conv) in zip(specs, convs) {
            _ = b.download(try b.conv2d(b.upload(noise.tensor([1, spec.inChannels, 40, 40])), conv))
        }
        let held = b.heldBytes
        let oihwBytes = specs.reduce(0) { $0 + $1.weight.data.count * 4 }
        #expect(held.spilled == oihwBytes, "spilled \(held.spilled) bytes of \(oihwBytes)")
        #expect(held.unspilled == 0)
        for (spec, conv) in zip(specs, convs) {
            let x = noise.tensor([1, spec.inChannels, 16, 16])  // below the Winograd minimum: the direct kernel
            let fresh = try FastBackend(threads: 2, precision: precision)
            let expected = fresh.download(try fresh.conv2d(fresh.upload(x), try fresh.makeConv(spec)))
            let y = b.download(try b.conv2d(b.upload(x), conv))
            #expect(y.data.map(\.bitPattern) == expected.data.map(\.bitPattern), "\(spec.geometry) at 16×16")
        }
    }

    /// A layer keeps the primitives of its 4 most recently used input sizes: a fifth evicts the
    /// least recently used, and weight layouts only evicted primitives read go with them; a size
    /// asked for again is rebuilt (its weights from the temporary file) and gives the same bits.
    @Test func aLayerKeepsThePrimitivesOfItsLatestSizes() throws {
        let b = try FastBackend(threads: 2)
        var noise = Noise(state: 5)
        let spec = ConvSpec(weight: noise.tensor([32, 32, 3, 3]), bias: noise.tensor([32]).data, padding: 1, relu: true)
        let conv = try b.makeConv(spec)
        guard case .onednn(let dnnl) = conv.kernel else { Issue.record("not a oneDNN convolution"); return }
        let winograd = [(40, 40), (48, 36), (64, 64), (36, 44)], direct = [(16, 16), (20, 24), (12, 12), (8, 10)]
        var inputs: [Tensor] = [], outputs: [[UInt32]] = []
        for (i, (h, w)) in (winograd + direct).enumerated() {
            let x = noise.tensor([1, 32, h, w])
            inputs.append(x)
            outputs.append(b.download(try b.conv2d(b.upload(x), conv)).data.map(\.bitPattern))
            #expect(dnnl.held.plans == min(i + 1, 4), "after \(i + 1) sizes")
            if i == winograd.count - 1 { #expect(dnnl.held.inexactLayouts >= 1, "Winograd layouts held") }
        }
        #expect(dnnl.held.inexactLayouts == 0, "the Winograd layouts went with the last Winograd primitive")
        for i in [0, 4, 2] {  // evicted, held, evicted
            let again = b.download(try b.conv2d(b.upload(inputs[i]), conv)).data.map(\.bitPattern)
            #expect(again == outputs[i], "size \((winograd + direct)[i]) rebuilt")
        }
        #expect(dnnl.held.plans == 4)
    }

    /// A dilated layer whose sub-grid kernel reads and writes nChw16c gathers the sub-grids straight
    /// into that layout and scatters them back (no NHWC batch, no reorders), at sizes that leave
    /// short sub-grids, and matches the naive convolution.
    @Test func subgridsAreGatheredStraightIntoTheBlockedLayout() throws {
        let b = try FastBackend(threads: 2, winograd: .always)
        var noise = Noise(state: 17)
        for (c, oc, d, h, w) in [(32, 48, 2, 37, 30), (16, 32, 4, 13, 10), (64, 16, 3, 20, 23)] {
            let spec = ConvSpec(weight: noise.tensor([oc, c, 3, 3]), bias: noise.tensor([oc]).data, padding: d,
                                dilation: d, relu: true)
            let conv = try b.makeConv(spec)
            let kernel = try conv.implementation(n: 1, h: h, w: w)
            #expect(kernel.contains("sub-grids, gathered blocked"), "\(spec.geometry) at \(h)×\(w): \(kernel)")
            let x = noise.tensor([1, c, h, w])
            let y = b.download(try b.conv2d(b.upload(x), conv))
            let (expected, scale) = Self.naiveConv(x, spec, residual: nil)
            let worst = Self.worstRelativeError(y, expected, scale)
            #expect(worst <= 1e-5, "\(spec.geometry) at \(h)×\(w): relative error \(worst)")
        }
    }

    /// Winograd layers hand each other nChw16c: the output of one stays blocked, the next reads it
    /// as it is (plain, or gathered into sub-grids), a blocked residual is added as it is, and the
    /// first layer on another layout converts the activation in place, for every holder of it.
    /// Two images at an odd size, against the naive convolution layer by layer.
    @Test func winogradLayersHandEachOtherTheBlockedLayout() throws {
        let b = try FastBackend(threads: 2, winograd: .always)
        var noise = Noise(state: 29)
        func spec(_ oc: Int, _ c: Int, k: Int = 3, dilation d: Int = 1) -> ConvSpec {
            ConvSpec(weight: noise.tensor([oc, c, k, k]), bias: noise.tensor([oc]).data, padding: k == 3 ? d : 0,
                     dilation: d, relu: true)
        }
        let (first, second, dilated, pointwise, last) = (spec(32, 16), spec(32, 32), spec(48, 32, dilation: 2),
                                                         spec(48, 48, k: 1), spec(48, 48))
        let x = noise.tensor([2, 16, 21, 19])
        let input = b.upload(x)
        let a = try b.conv2d(input, b.makeConv(first))
        let c = try b.conv2d(a, b.makeConv(second), residual: a)
        let d = try b.conv2d(c, b.makeConv(dilated))
        #expect([a.layout, c.layout, d.layout] == [.nChw16c, .nChw16c, .nChw16c])
        let e = try b.conv2d(d, b.makeConv(pointwise), residual: d)
        #expect(e.layout == .nhwc && d.layout == .nhwc, "a direct kernel converts its input and residual in place")
        let f = try b.conv2d(e, b.makeConv(last), residual: e)
        #expect(f.layout == .nChw16c && e.layout == .nhwc, "an NHWC residual is converted into the blocked output")
        #expect(a.layout == .nChw16c, "an activation nobody converted stays blocked")
        // A direct kernel on an NHWC input with a blocked residual of its own.
        let side = spec(32, 16, k: 1)
        let h = try b.conv2d(input, b.makeConv(side), residual: c)
        #expect(h.layout == .nhwc && c.layout == .nhwc)
        // A concatenation of a blocked and an NHWC input, gathered straight into the blocked source.
        let fused = spec(32, 64)
        let g = try b.conv2d(concatenating: [f, input], b.makeConv(fused))
        #expect(g.layout == .nChw16c && f.layout == .nChw16c && input.layout == .nhwc)

        var expected = x
        for (layer, residual, y) in [(first, false, a), (second, true, c), (dilated, false, d), (pointwise, true, e),
                                     (last, true, f)] {
            let (want, scale) = Self.naiveConv(expected, layer, residual: residual ? expected : nil)
            let worst = Self.worstRelativeError(b.download(y), want, scale)
            #expect(worst <= 1e-5, "\(layer.geometry): relative error \(worst)")
            expected = want
        }
        // (N, 48 + 16, H, W): each image's channels of f, then of x.
        let plane = 21 * 19
        var joined = [Float]()
        for n in 0..<2 {
            joined += expected.data[(n * 48 * plane)..<((n + 1) * 48 * plane)]
            joined += x.data[(n * 16 * plane)..<((n + 1) * 16 * plane)]
        }
        let (want, scale) = Self.naiveConv(Tensor(shape: [2, 64, 21, 19], data: joined), fused, residual: nil)
        let worst = Self.worstRelativeError(b.download(g), want, scale)
        #expect(worst <= 1e-5, "concatenation: relative error \(worst)")
        let (afterFirst, _) = Self.naiveConv(x, first, residual: nil)
        let (afterSecond, _) = Self.naiveConv(afterFirst, second, residual: afterFirst)
        let (sideWant, sideScale) = Self.naiveConv(x, side, residual: afterSecond)
        let sideWorst = Self.worstRelativeError(b.download(h), sideWant, sideScale)
        #expect(sideWorst <= 1e-5, "blocked residual of a direct kernel: relative error \(sideWorst)")
    }

    /// Passes of one kind over Winograd layers that hand each other nChw16c (and convert in place)
    /// replay the arena: the same bits as a pass outside it, and nothing taken from the pool.
    @Test func blockedPassesReplayTheirArena() throws {
        let b = try FastBackend(threads: 2, winograd: .always)
        var noise = Noise(state: 43)
        func conv(_ oc: Int, _ c: Int, k: Int = 3, dilation d: Int = 1) throws -> FastConv {
            try b.makeConv(ConvSpec(weight: noise.tensor([oc, c, k, k]), bias: noise.tensor([oc]).data,
                                    padding: k == 3 ? d : 0, dilation: d, relu: true))
        }
        let (first, second, dilated, pointwise) = (try conv(32, 16), try conv(32, 32), try conv(32, 32, dilation: 2),
                                                   try conv(16, 32, k: 1))
        let x = noise.tensor([1, 16, 40, 36])
        func pass() throws -> Tensor {
            let a = try b.conv2d(b.upload(x), first)
            let c = try b.conv2d(a, second, residual: a)
            let d = try b.conv2d(b.maxPool2d(c, kernel: 3, stride: 1, padding: 1), dilated, residual: c)
            return b.download(try b.conv2d(d, pointwise))
        }
        let expected = try pass()
        _ = try b.withActivationArena("blocked") { try pass() }  // recorded
        let pooled = b.engine.pool.idleBytesHeld
        for _ in 0..<3 {
            #expect(try b.withActivationArena("blocked") { try pass() }.data == expected.data)
        }
        #expect(b.engine.pool.idleBytesHeld == pooled, "an arena pass took buffers from the pool")
    }

    /// nChw16c ↔ NHWC: value (n, c, y, x) lands where each layout puts it, and back bit for bit,
    /// on one thread (small) and split over two (from 65536 values); the parallel copy likewise.
    @Test func blockedLayoutConversionsPutEveryValueInItsPlace() {
        for s in [Shape4(n: 2, c: 48, h: 5, w: 7), Shape4(n: 2, c: 64, h: 33, w: 41)] {
            let nhwc = (0..<s.count).map { Float($0) }
            var blocked = [Float](repeating: -1, count: s.count), back = blocked, copy = blocked
            nhwcToNChw16c(nhwc, &blocked, s, threads: 2)
            nChw16cToNHWC(blocked, &back, s, threads: 2)
            #expect(back == nhwc, "\(s)")
            for (n, c, y, x) in [(0, 0, 0, 0), (1, s.c - 1, s.h - 1, s.w - 1), (1, 17, 2, 3), (0, 31, 4, 0)] {
                let inNHWC = ((n * s.h + y) * s.w + x) * s.c + c
                let inBlocked = (((n * s.c / 16 + c / 16) * s.h + y) * s.w + x) * 16 + c % 16
                #expect(blocked[inBlocked] == nhwc[inNHWC], "\(s) (\(n), \(c), \(y), \(x))")
            }
            parallelCopy(nhwc, &copy, count: s.count, threads: 2)
            #expect(copy == nhwc, "\(s)")
        }
    }

    /// An activation in nChw16c (as a Winograd layer leaves it) gives every other op the values
    /// its NHWC twin gives, bit for bit.
    @Test func everyOpTakesTheBlockedLayout() throws {
        let b = try FastBackend(threads: 2)
        var noise = Noise(state: 41)
        let x = noise.tensor([2, 32, 33, 40]), other = noise.tensor([2, 32, 33, 40])
        let gate = noise.tensor([2, 32, 1, 1])
        func blocked(_ t: Tensor) -> FastActivation {
            let plain = b.upload(t), copy = b.make(plain.shape, .nChw16c)
            nhwcToNChw16c(plain.pointer, copy.pointer, plain.shape, threads: 2)
            #expect(copy.layout == .nChw16c)
            return copy
        }
        let size = Size2(height: 17, width: 50)
        let ops: [(String, (FastActivation) -> FastActivation)] = [
            ("identity", { $0 }), ("flip", { b.flipHorizontal($0) }), ("relu", { b.relu($0) }),
            ("sigmoid", { b.sigmoid($0) }), ("softmax", { b.softmaxChannels($0) }),
            ("slice", { b.sliceChannels($0, 5..<21) }), ("add", { b.add($0, b.upload(other), relu: true) }),
            ("mulChannels", { b.mulChannels($0, b.upload(gate)) }),
            ("resize", { b.resizeBilinear($0, to: size, alignCorners: false) }),
            ("resizeLogits", { b.resizeLogits($0, to: size, alignCorners: true) }),
            ("maxPool", { b.maxPool2d($0, kernel: 3, stride: 2, padding: 1) }),
            ("avgPool", { b.avgPool2d($0, kernel: 2, stride: 2, ceilMode: true) }),
            ("adaptiveAvgPool", { b.adaptiveAvgPool2d($0, to: Size2(height: 3, width: 3)) }),
            ("concat", { b.concatChannels([$0, b.upload(other)]) }),
        ]
        for (name, op) in ops {
            #expect(b.download(op(blocked(x))).data == b.download(op(b.upload(x))).data, "\(name)")
        }
        #expect(b.argmaxChannels(blocked(x)) == b.argmaxChannels(b.upload(x)))
    }

    /// A residual given up (`accumulatingInto`) and held by nobody else becomes the output, added
    /// to in place, on a Winograd kernel (nChw16c) and a direct one (NHWC); one still held
    /// elsewhere, or in another layout, is left as it was. The values are those of `residual:`.
    @Test func aResidualGivenUpBecomesTheOutput() throws {
        let b = try FastBackend(threads: 2, winograd: .always)
        var noise = Noise(state: 47)
        let x = noise.tensor([2, 32, 12, 13]), r = noise.tensor([2, 32, 12, 13])
        let winograd = try b.makeConv(ConvSpec(weight: noise.tensor([32, 32, 3, 3]), bias: noise.tensor([32]).data,
                                               stride: 1, padding: 1, relu: true))
        let direct = try b.makeConv(ConvSpec(weight: noise.tensor([32, 32, 1, 1]), bias: nil, relu: true))
        for (name, conv, layout) in [("Winograd", winograd, FastActivation.Layout.nChw16c),
                                     ("direct", direct, .nhwc)] {
            let expected = b.download(try b.conv2d(b.upload(x), conv, residual: b.upload(r))).data
            func residual(_ layout: FastActivation.Layout) -> FastActivation {
                let plain = b.upload(r)
                guard layout == .nChw16c else { return plain }
                let blocked = b.make(plain.shape, .nChw16c)
                nhwcToNChw16c(plain.pointer, blocked.pointer, plain.shape, threads: 2)
                return blocked
            }
            // Given up: the output is the residual's own buffer.
            let mine = residual(layout), address = mine.pointer
            let y = try b.conv2d(b.upload(x), conv, accumulatingInto: consume mine)
            #expect(y.pointer == address && y.layout == layout, "\(name): the residual was copied")
            #expect(b.download(y).data == expected, "\(name)")
            // Still held by someone else: a new output, the residual untouched.
            let shared = residual(layout), before = b.download(shared).data
            let z = try b.conv2d(b.upload(x), conv, accumulatingInto: shared)
            #expect(z !== shared && b.download(shared).data == before, "\(name): a held residual was overwritten")
            #expect(b.download(z).data == expected, "\(name)")
            // In the other layout: converted into a new output.
            let other = residual(layout == .nhwc ? .nChw16c : .nhwc)
            let w = try b.conv2d(b.upload(x), conv, accumulatingInto: consume other)
            #expect(w.layout == layout && b.download(w).data == expected, "\(name)")
        }
    }

    /// In bf16, a depthwise convolution writes its output straight into the bf16 source of the
    /// pointwise one after it: the same bits as the two run one after the other (so the rounding is
    /// oneDNN's reorder's), on channel tails, dilation, stride 2 and two images; in f32 the two run
    /// in turn.
    @Test(.enabled(if: FastBackend.cpuHasBF16, "this CPU has no AVX512-BF16 or AMX: bf16 runs as f32"))
    func bf16SeparableConvolutionsHandTheirMapOverInBF16() throws {
        var noise = Noise(state: 53)
        let cases: [(n: Int, c: Int, oc: Int, h: Int, w: Int, stride: Int, dilation: Int)] = [
            (1, 140, 128, 11, 12, 1, 1), (2, 64, 24, 20, 18, 1, 12), (1, 19, 16, 15, 14, 2, 3), (1, 3, 8, 9, 9, 1, 1),
        ]
        for precision in [Precision.bf16, .f32] {
            let b = try FastBackend(threads: 2, precision: precision)
            for t in cases {
                let x = noise.tensor([t.n, t.c, t.h, t.w])
                let dw = try b.makeConv(ConvSpec(weight: noise.tensor([t.c, 1, 3, 3]), bias: noise.tensor([t.c]).data,
                                                 stride: t.stride, padding: t.dilation, dilation: t.dilation,
                                                 groups: t.c, relu: true))
                let pw = try b.makeConv(ConvSpec(weight: noise.tensor([t.oc, t.c, 1, 1]), bias: noise.tensor([t.oc]).data,
                                                 relu: true))
                let before = b.engine.fusedSeparable
                let fused = b.download(try b.separableConv(b.upload(x), dw, pw))
                #expect(b.engine.fusedSeparable == before + (precision == .bf16 ? 1 : 0), "\(precision) \(t)")
                let inTurn = b.download(try b.conv2d(b.conv2d(b.upload(x), dw), pw))
                #expect(fused.shape == inTurn.shape && fused.data == inTurn.data, "\(precision) \(t)")
            }
        }
    }

    /// A bf16 convolution converts an nChw16c activation straight into its bf16 copy: the same
    /// bits as from NHWC, and the activation is left blocked (not converted to NHWC first).
    @Test(.enabled(if: FastBackend.cpuHasBF16, "this CPU has no AVX512-BF16 or AMX: bf16 runs as f32"))
    func bf16ConvolutionsReadTheBlockedLayout() throws {
        let b = try FastBackend(threads: 2, precision: .bf16)
        var noise = Noise(state: 43)
        let x = noise.tensor([2, 32, 13, 14])
        let specs = [
            ConvSpec(weight: noise.tensor([24, 32, 1, 1]), bias: noise.tensor([24]).data, stride: 1, padding: 0,
                     dilation: 1, groups: 1, relu: false),
            ConvSpec(weight: noise.tensor([16, 32, 3, 3]), bias: nil, stride: 2, padding: 1, dilation: 1, groups: 1,
                     relu: true),
        ]
        for spec in specs {
            let conv = try b.makeConv(spec)
            let plain = b.upload(x), blocked = b.make(plain.shape, .nChw16c)
            nhwcToNChw16c(plain.pointer, blocked.pointer, plain.shape, threads: 2)
            let fromBlocked = b.download(try b.conv2d(blocked, conv, residual: nil))
            #expect(blocked.layout == .nChw16c, "\(spec.weight.shape): the source was converted to NHWC first")
            #expect(fromBlocked.data == b.download(try b.conv2d(plain, conv, residual: nil)).data,
                    "\(spec.weight.shape)")
        }
    }

    /// The arena's layout: buffers live at the same time never share a byte, offsets are 64-byte
    /// aligned, and where placing the largest first wastes bytes, placing by bytes × lifetime
    /// reaches the live peak (the smallest block possible).
    @Test func arenaLayoutNeverSharesLiveBytesAndReachesThePeakWhereLargestFirstDoesNot() {
        typealias Buffer = ArenaRecorder.Buffer
        func peak(_ buffers: [Buffer]) -> Int {
            let end = (buffers.map { max($0.start, $0.end ?? 0) }.max() ?? 0) + 1
            return (0...end).map { t in
                buffers.filter { $0.start <= t && t < ($0.end ?? end) }.reduce(0) { $0 + $1.bytes }
            }.max() ?? 0
        }
        func check(_ buffers: [Buffer], _ what: String) -> Int {
            let (offsets, bytes) = ActivationArena.layout(buffers)
            let end = (buffers.map { max($0.start, $0.end ?? 0) }.max() ?? 0) + 1
            for i in buffers.indices {
                #expect(offsets[i] % 64 == 0 && offsets[i] + buffers[i].bytes <= bytes, "\(what): buffer \(i)")
                for j in buffers.indices where j > i {
                    let (a, b) = (buffers[i], buffers[j])
                    guard (a.start..<(a.end ?? end)).overlaps(b.start..<(b.end ?? end)) else { continue }
                    let bytesOverlap = (offsets[i]..<(offsets[i] + a.bytes)).overlaps(offsets[j]..<(offsets[j] + b.bytes))
                    #expect(!bytesOverlap, "\(what): buffers \(i) and \(j) are live together and share bytes")
                }
            }
            #expect(bytes >= peak(buffers), "\(what)")
            return bytes
        }
        // Largest first puts the two 4-unit buffers at 0 and the 1-unit one above them: 7 units.
        let unit = 65536
        let tricky = [Buffer(bytes: unit, start: 1, end: 6), Buffer(bytes: 4 * unit, start: 2, end: 3),
                      Buffer(bytes: 4 * unit, start: 6, end: 8), Buffer(bytes: 2 * unit, start: 5, end: 7)]
        #expect(check(tricky, "tricky") == 6 * unit)
        var noise = Noise(state: 3)
        for trial in 0..<20 {
            let buffers = (0..<30).map { k -> Buffer in
                let start = 2 * k, length = 1 + Int((noise.next() + 1) * 20)
                let held = noise.next() > 0.9
                return Buffer(bytes: 64 * (1 + Int((noise.next() + 1) * 1000)), start: start,
                              end: held ? nil : start + length)
            }
            _ = check(buffers, "random \(trial)")
        }
    }

    @Test func weightSpillGivesBackTheBitsItWasGiven() throws {
        let spill = try #require(WeightSpill())
        let first: [Float] = [0, -0, 1, .pi, -.infinity, .leastNonzeroMagnitude, Float(bitPattern: 0x7FC0_1234)]
        let second = (0..<100_000).map { Float($0) * 0.5 - 7 }
        let a = try #require(spill.write(first)), b = try #require(spill.write(second))
        #expect(spill.bytes == (first.count + second.count) * 4)
        #expect(try #require(spill.read(b)) == second)
        #expect(try #require(spill.read(a)).map(\.bitPattern) == first.map(\.bitPattern))
        #expect(WeightSpill(directory: "/nonexistent/aerialseg") == nil, "no file where the folder does not exist")
    }

    /// Compares a fast op with the reference kernel: max |difference| ≤ tolerance.
    func expectClose(_ fast: Tensor, _ reference: Tensor, _ what: String, tolerance: Float = 1e-5) {
        #expect(fast.shape == reference.shape, "\(what): shape \(fast.shape) vs \(reference.shape)")
        guard fast.shape == reference.shape else { return }
        var worst: Float = 0
        for i in fast.data.indices { worst = max(worst, abs(fast.data[i] - reference.data[i])) }
        #expect(worst <= tolerance, "\(what): max |diff| \(worst)")
    }

    @Test func poolingMatchesReference() throws {
        guard let b = Self.backend else { Issue.record("oneDNN engine could not be created"); return }
        var noise = Noise(state: 7)
        for shape in [[1, 64, 17, 20], [2, 5, 8, 10], [1, 20, 6, 6]] {
            let x = noise.tensor(shape), fx = b.upload(x)
            expectClose(b.download(b.maxPool2d(fx, kernel: 3, stride: 2, padding: 1)),
                        Kernels.maxPool2d(x, kernel: 3, stride: 2, padding: 1), "maxPool \(shape)", tolerance: 0)
            for ceil in [false, true] {
                expectClose(b.download(b.avgPool2d(fx, kernel: 2, stride: 2, ceilMode: ceil)),
                            Kernels.avgPool2d(x, kernel: 2, stride: 2, ceilMode: ceil), "avgPool \(shape) \(ceil)")
            }
            for bins in [1, 2, 3, 6] {
                let size = Size2(height: bins, width: bins)
                expectClose(b.download(b.adaptiveAvgPool2d(fx, to: size)), Kernels.adaptiveAvgPool2d(x, to: size),
                            "adaptiveAvgPool \(shape) \(bins)")
            }
        }
        // An nChw16c input (a Winograd layer's output) is max-pooled as it is, into nChw16c.
        let x = noise.tensor([2, 32, 65, 70]), fx = b.upload(x)  // large enough to split over threads
        let blocked = b.make(fx.shape, .nChw16c)
        nhwcToNChw16c(fx.pointer, blocked.pointer, fx.shape, threads: 2)
        let pooled = b.maxPool2d(blocked, kernel: 3, stride: 2, padding: 1)
        #expect(pooled.layout == .nChw16c)
        expectClose(b.download(pooled), Kernels.maxPool2d(x, kernel: 3, stride: 2, padding: 1), "maxPool nChw16c",
                    tolerance: 0)
    }

    @Test func resizeMatchesReference() throws {
        guard let b = Self.backend else { Issue.record("oneDNN engine could not be created"); return }
        var noise = Noise(state: 11)
        // Channels ≥ 16 take the NHWC kernel, fewer the planar one; 1×1 is the ASPP broadcast.
        let cases: [([Int], Size2)] = [
            ([1, 32, 8, 8], Size2(height: 16, width: 16)), ([1, 20, 9, 7], Size2(height: 5, width: 13)),
            ([2, 6, 8, 8], Size2(height: 32, width: 30)), ([1, 3, 7, 9], Size2(height: 4, width: 4)),
            ([1, 128, 1, 1], Size2(height: 6, width: 5)), ([1, 7, 1, 1], Size2(height: 3, width: 3)),
        ]
        for (shape, size) in cases {
            let x = noise.tensor(shape)
            for align in [false, true] {
                let y = b.resizeBilinear(b.upload(x), to: size, alignCorners: align)
                let expected = Kernels.resizeBilinear(x, to: size, alignCorners: align)
                expectClose(b.download(y), expected, "resize \(shape)→\(size) align \(align)")
                // Ops after a planar (NCHW) resize see the same values.
                expectClose(b.download(b.flipHorizontal(y)), Kernels.flipHorizontal(expected), "flip after resize")
                expectClose(b.download(b.relu(y)), Kernels.relu(expected), "relu after resize")
                #expect(b.argmaxChannels(y) == Kernels.argmaxChannels(expected))
            }
        }
    }

    /// The logits' resize writes NCHW planes whatever the class count, so `withNCHW` hands them over
    /// without a copy (the buffer it passes is the activation's own), with the reference's values.
    @Test func logitsResizeWritesPlanesReadInPlace() throws {
        guard let b = Self.backend else { Issue.record("oneDNN engine could not be created"); return }
        var noise = Noise(state: 17)
        for (shape, size) in [([1, 150, 8, 8], Size2(height: 64, width: 60)), ([1, 16, 7, 9], Size2(height: 28, width: 36)),
                              ([1, 6, 8, 8], Size2(height: 32, width: 32))] {
            let x = noise.tensor(shape)
            for align in [false, true] {
                let y = b.resizeLogits(b.upload(x), to: size, alignCorners: align)
                #expect(y.layout == .nchw, "resizeLogits \(shape) gave \(y.layout)")
                let expected = Kernels.resizeBilinear(x, to: size, alignCorners: align)
                b.withNCHW(y) { values in
                    #expect(values.baseAddress == UnsafePointer(y.pointer), "withNCHW copied the logits of \(shape)")
                    expectClose(Tensor(shape: expected.shape, data: Array(values)), expected, "resizeLogits \(shape)")
                }
            }
        }
    }

    @Test func elementwiseAndChannelOpsMatchReference() throws {
        guard let b = Self.backend else { Issue.record("oneDNN engine could not be created"); return }
        var noise = Noise(state: 13)
        let a = noise.tensor([2, 21, 5, 7]), c = noise.tensor([2, 21, 5, 7]), d = noise.tensor([2, 12, 5, 7])
        let gate = noise.tensor([2, 21, 1, 1])
        let fa = b.upload(a), fc = b.upload(c), fd = b.upload(d)
        expectClose(b.download(b.concatChannels([fa, fd, fc])), Kernels.concatChannels([a, d, c]), "concat")
        expectClose(b.download(b.sliceChannels(fa, 3..<17)), Kernels.sliceChannels(a, 3..<17), "slice")
        for relu in [false, true] {
            expectClose(b.download(b.add(fa, fc, relu: relu)), Kernels.add(a, c, relu: relu), "add \(relu)")
        }
        expectClose(b.download(b.mulChannels(fa, b.upload(gate))), Kernels.mulChannels(a, gate), "mulChannels")
        expectClose(b.download(b.sigmoid(fa)), Kernels.sigmoid(a), "sigmoid")
        expectClose(b.download(b.relu(fa)), Kernels.relu(a), "relu")
        expectClose(b.download(b.softmaxChannels(fa)), Kernels.softmaxChannels(a), "softmax")
        expectClose(b.download(b.flipHorizontal(fa)), Kernels.flipHorizontal(a), "flip")
        #expect(b.argmaxChannels(fa) == Kernels.argmaxChannels(a))
        #expect(b.download(fa) == a, "upload/download round trip")
        let spec = EncodingSpec(codewords: noise.tensor([4, 21]), scale: (0..<4).map { _ in -noise.next() * 0.5 },
                                bnScale: [1, 0.5, 2, 1], bnShift: [0, 0.1, -0.1, 0.2])
        expectClose(b.download(b.encoding(fa, spec)), Kernels.encoding(a, spec), "encoding")
    }

    /// Passes of one kind after the first take their buffers from one arena (nothing from the
    /// pool), whose buffers that were not live together share bytes, with the results of passes
    /// run without it.
    @Test func passesOfOneKindShareOneArena() throws {
        let b = try FastBackend(threads: 2)  // its own pool and arenas: other tests run alongside
        var noise = Noise(state: 5)
        let conv = try b.makeConv(ConvSpec(weight: noise.tensor([32, 16, 3, 3]), bias: nil, padding: 1, relu: true))
        let x = noise.tensor([1, 16, 24, 20])
        func pass() throws -> Tensor {
            let wide = b.resizeBilinear(try b.conv2d(b.upload(x), conv), to: Size2(height: 48, width: 40),
                                        alignCorners: false)
            return b.download(b.add(wide, wide, relu: false))
        }
        let expected = try pass()
        let pooled = b.engine.pool.idleBytesHeld
        for _ in 0..<3 {
            #expect(try b.withActivationArena("chain") { try pass() }.data == expected.data)
        }
        #expect(b.engine.pool.idleBytesHeld == pooled, "an arena pass took buffers from the pool")
        let floats = 16 * 24 * 20 + 32 * 24 * 20 + 2 * 32 * 48 * 40
        let arena = b.engine.arenas.idleBytes
        #expect(arena >= 2 * 32 * 48 * 40 * 4 && arena < floats * 4, "arena of \(arena) bytes for \(floats * 4)")
    }

    /// A buffer still held from an earlier pass keeps its values: the next pass of the kind does
    /// not hand its bytes out again (that buffer comes from the pool instead).
    @Test func aBufferHeldAcrossPassesIsNotReused() throws {
        let b = try FastBackend(threads: 2)
        var noise = Noise(state: 6)
        let conv = try b.makeConv(ConvSpec(weight: noise.tensor([16, 8, 3, 3]), bias: nil, padding: 1, relu: false))
        let first = noise.tensor([1, 8, 12, 10]), second = noise.tensor([1, 8, 12, 10])
        try b.withActivationArena("held") { _ = b.download(try b.conv2d(b.upload(first), conv)) }  // recorded
        var held: FastActivation?
        try b.withActivationArena("held") { held = try b.conv2d(b.upload(first), conv) }
        let before = b.download(held!)
        let other = try b.withActivationArena("held") { b.download(try b.conv2d(b.upload(second), conv)) }
        #expect(b.download(held!).data == before.data, "the next pass wrote over a held buffer")
        #expect(other.data == b.download(try b.conv2d(b.upload(second), conv)).data)
    }

    @Test func buffersAreRecycled() throws {
        guard let b = Self.backend else { Issue.record("oneDNN engine could not be created"); return }
        let x = Tensor(zeros: [1, 4, 3, 3])
        var first: UnsafeMutablePointer<Float>?
        do { first = b.upload(x).pointer }
        // The first buffer went back to the pool when its activation died; the next one reuses it.
        #expect(b.upload(x).pointer == first)
    }
}

/// FastBackend under concurrent use (its parity with mmseg is `ModelParityTests`, on both backends).
@Suite struct FastBackendConcurrencyTests {
    /// Two threads running one model on one backend get the serial result (convolutions share
    /// primitives and buffers behind a lock; the other ops and the buffer pool run concurrently).
    @Test(.enabled(if: Fixtures.hasShared("fixtures/mmseg/dlv3p_r18_d8_potsdam"), "needs ../shared/fixtures/mmseg/dlv3p_r18_d8_potsdam")) func concurrentInferenceMatchesSerial() async throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/dlv3p_r18_d8_potsdam")
        let oracle = try Oracle(folder)
        let weights = try Checkpoint.load(path: folder.appendingPathComponent("weights.safetensors").path)
        let net = try TestBackend.onednn.model(oracle.config, weights.floatTensors())
        let input = try oracle.tensor(try #require(oracle.array("96x80", "input")))
        let serial = try net.logits(input)
        let results = try await withThrowingTaskGroup(of: Tensor.self) { group in
            for _ in 0..<4 { group.addTask { try net.logits(input) } }
            return try await group.reduce(into: [Tensor]()) { $0.append($1) }
        }
        for result in results {
            let worst = maxAbsDiff(result, serial)
            #expect(worst <= 1e-6, "concurrent run differs from the serial one by \(worst)")
        }
    }
}
