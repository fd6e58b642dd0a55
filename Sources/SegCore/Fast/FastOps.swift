import CDNNL
import CKernels
import Foundation

// FastBackend's non-convolution ops on NHWC activations. Shapes in comments are logical NCHW;
// memory is (N, H, W, C). Channel loops are contiguous, so the C loops in CKernels and plain Swift
// loops vectorise; row loops are split over the libgomp team when the map is large.

/// Below this many output values an op runs on the calling thread only.
private let parallelThreshold = 1 << 16

extension FastBackend {
    func make(_ shape: Shape4, _ layout: FastActivation.Layout = .nhwc) -> FastActivation {
        FastActivation(shape: shape, layout: layout, pool: engine.pool)
    }

    /// `body(index, count)` on the team when `work` is large enough, inline otherwise.
    func split(_ work: Int, _ body: (_ index: Int, _ count: Int) -> Void) {
        parallelRun(threads: work >= parallelThreshold ? engine.threads : 1, body)
    }

    /// Brings an NCHW tensor (N,C,H,W) in, reordered to NHWC.
    public func upload(_ x: Tensor) -> FastActivation {
        let s = Kernels.shape4(x, .conv2d)
        let out = make(s)
        x.data.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress else { return }
            reorderImages(base, out.pointer, s, toNHWC: true)
        }
        return out
    }

    /// An NCHW activation (the logits' resize writes NCHW planes) is read in place.
    public func withNCHW<T>(_ x: FastActivation, _ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        guard x.layout == .nchw else { return try download(x).data.withUnsafeBufferPointer(body) }
        return try body(UnsafeBufferPointer(start: x.pointer, count: x.shape.count))
    }

    /// Returns an activation as an NCHW tensor (N,C,H,W).
    public func download(_ x: FastActivation) -> Tensor {
        let s = x.shape
        var data = [Float](repeating: 0, count: s.count)
        data.withUnsafeMutableBufferPointer { dst in
            guard let base = dst.baseAddress else { return }
            switch x.layout {
            case .nchw:
                base.update(from: x.pointer, count: s.count)
            case .nhwc, .nChw16c:
                reorderImages(nhwc(x).pointer, base, s, toNHWC: false)
            }
        }
        return Tensor(shape: s.dims, data: data)
    }

    /// The activation in NHWC: itself when it already is, or converted in place from nChw16c
    /// (so other holders of it, such as a later residual, find it NHWC too); an NCHW copy.
    func nhwc(_ x: FastActivation) -> FastActivation {
        switch x.layout {
        case .nhwc: return x
        case .nChw16c:
            x.convertToNHWC(pool: engine.pool, threads: engine.threads)
            return x
        case .nchw:
            let out = make(x.shape)
            reorderImages(x.pointer, out.pointer, x.shape, toNHWC: true)
            return out
        }
    }

    /// x (N,C,H,W) → (N,C,OH,OW), `OH = floor((H + 2p - k)/s) + 1`; padding never wins.
    /// An nChw16c input (the ResNet stem's Winograd output) is pooled as it is, into nChw16c: each
    /// of its (image, channel block) planes is an H×W×16 NHWC image.
    public func maxPool2d(_ x: FastActivation, kernel k: Int, stride: Int, padding p: Int) -> FastActivation {
        let x = x.layout == .nChw16c ? x : nhwc(x), s = x.shape
        let oh = (s.h + 2 * p - k) / stride + 1, ow = (s.w + 2 * p - k) / stride + 1
        precondition(oh > 0 && ow > 0 && p * 2 <= k, "maxPool2d: bad geometry for \(s)")
        let out = make(Shape4(n: s.n, c: s.c, h: oh, w: ow), x.layout)
        let (planes, c) = x.layout == .nChw16c ? (s.n * s.c / 16, 16) : (s.n, s.c)
        let level = engine.level
        split(planes * oh * ow * c) { index, count in
            let rows = chunk(oh, index, count)
            for plane in 0..<planes {
                aerialseg_maxpool_nhwc(x.pointer + plane * s.h * s.w * c, out.pointer + plane * oh * ow * c,
                                       Int32(s.h), Int32(s.w), Int32(c), Int32(rows.lowerBound),
                                       Int32(rows.upperBound), Int32(ow), Int32(k), Int32(stride), Int32(p), level)
            }
        }
        return out
    }

    /// x (N,C,H,W) → (N,C,OH,OW): mean of each window's in-bounds values, no padding.
    public func avgPool2d(_ x: FastActivation, kernel k: Int, stride st: Int, ceilMode: Bool) -> FastActivation {
        let x = nhwc(x), s = x.shape
        let oh = Kernels.pooledLength(s.h, kernel: k, stride: st, ceilMode: ceilMode)
        let ow = Kernels.pooledLength(s.w, kernel: k, stride: st, ceilMode: ceilMode)
        precondition(oh > 0 && ow > 0, "avgPool2d: input \(s) smaller than the \(k)×\(k) window")
        let out = make(Shape4(n: s.n, c: s.c, h: oh, w: ow))
        windowMean(x, out) { oy, ox in
            ((oy * st)..<min(oy * st + k, s.h), (ox * st)..<min(ox * st + k, s.w))
        }
        return out
    }

    /// x (N,C,H,W) → (N,C,oh,ow), PyTorch `AdaptiveAvgPool2d` bins (`Kernels.adaptiveBin`).
    public func adaptiveAvgPool2d(_ x: FastActivation, to size: Size2) -> FastActivation {
        let x = nhwc(x), s = x.shape
        precondition(size.height > 0 && size.width > 0, "adaptiveAvgPool2d: empty output size \(size)")
        let out = make(Shape4(n: s.n, c: s.c, h: size.height, w: size.width))
        windowMean(x, out) { oy, ox in
            (Kernels.adaptiveBin(oy, bins: size.height, length: s.h),
             Kernels.adaptiveBin(ox, bins: size.width, length: s.w))
        }
        return out
    }

    /// out[n, oy, ox, :] = mean of x over `window(oy, ox)` (rows, cols), summed in Double as the
    /// reference does, so the two backends agree to float rounding.
    private func windowMean(_ x: FastActivation, _ out: FastActivation,
                            _ window: (Int, Int) -> (Range<Int>, Range<Int>)) {
        let s = x.shape, o = out.shape, c = s.c
        var sum = [Double](repeating: 0, count: c)
        sum.withUnsafeMutableBufferPointer { acc in
            guard let acc = acc.baseAddress else { return }
            for n in 0..<s.n {
                for oy in 0..<o.h {
                    for ox in 0..<o.w {
                        let (rows, cols) = window(oy, ox)
                        acc.update(repeating: 0, count: c)
                        for iy in rows {
                            for ix in cols {
                                let p = x.pointer + ((n * s.h + iy) * s.w + ix) * c
                                for i in 0..<c { acc[i] += Double(p[i]) }
                            }
                        }
                        let q = out.pointer + ((n * o.h + oy) * o.w + ox) * c
                        let area = Double(rows.count * cols.count)
                        for i in 0..<c { q[i] = Float(acc[i] / area) }
                    }
                }
            }
        }
    }

    /// x (N,C,H,W) → (N,C,size), PyTorch bilinear (`Kernels.linearTaps`). Outputs with fewer than
    /// 16 channels (logits) are written as NCHW planes, ready for `download`.
    public func resizeBilinear(_ x: FastActivation, to size: Size2, alignCorners: Bool) -> FastActivation {
        let x = nhwc(x), s = x.shape
        if s.size == size { return x }
        let ys = Kernels.linearTaps(input: s.h, output: size.height, alignCorners: alignCorners)
        let xs = Kernels.linearTaps(input: s.w, output: size.width, alignCorners: alignCorners)
        let oh = size.height, ow = size.width
        if s.c < 16 { return resizePlanar(x, ys: ys, xs: xs, to: size) }
        let out = make(Shape4(n: s.n, c: s.c, h: oh, w: ow))
        let x0 = xs.map { Int32($0.i0) }, x1 = xs.map { Int32($0.i1) }
        let w0 = xs.map(\.w0), w1 = xs.map(\.w1)
        let level = engine.level, c = s.c
        for n in 0..<s.n {
            let src = x.pointer + n * s.h * s.w * c, dst = out.pointer + n * oh * ow * c
            split(oh * ow * c) { index, count in
                for oy in chunk(oh, index, count) {
                    let t = ys[oy]
                    aerialseg_resize_row(src + t.i0 * s.w * c, src + t.i1 * s.w * c, t.w0, t.w1, x0, x1, w0, w1,
                                         dst + oy * ow * c, Int32(ow), Int32(c), level)
                }
            }
        }
        return out
    }

    /// The logits' resize straight into NCHW planes (`resizePlanar`, whatever the channel count), so
    /// that `withNCHW` hands them over in place: no NHWC map of classes × H × W floats, and no
    /// transpose of it.
    public func resizeLogits(_ x: FastActivation, to size: Size2, alignCorners: Bool) -> FastActivation {
        let x = nhwc(x), s = x.shape
        if s.size == size { return x }
        return resizePlanar(x, ys: Kernels.linearTaps(input: s.h, output: size.height, alignCorners: alignCorners),
                            xs: Kernels.linearTaps(input: s.w, output: size.width, alignCorners: alignCorners), to: size)
    }

    /// Separable bilinear resize into NCHW planes: each source row is resized along W once, then
    /// output rows blend two of those — the same products, in the same order, as the reference.
    private func resizePlanar(_ x: FastActivation, ys: [Kernels.LinearTap], xs: [Kernels.LinearTap],
                              to size: Size2) -> FastActivation {
        let s = x.shape, c = s.c, oh = size.height, ow = size.width
        let out = make(Shape4(n: s.n, c: c, h: oh, w: ow), .nchw)
        let planes = s.n * c
        let pool = engine.pool
        split(planes * oh * ow) { index, count in
            let rowsBuffer = pool.take(s.h * ow)
            let rows = rowsBuffer.pointer
            for plane in chunk(planes, index, count) {
                let n = plane / c, ch = plane % c
                let src = x.pointer + n * s.h * s.w * c + ch
                for iy in 0..<s.h {
                    let line = src + iy * s.w * c, r = rows + iy * ow
                    for (ox, t) in xs.enumerated() { r[ox] = t.w0 * line[t.i0 * c] + t.w1 * line[t.i1 * c] }
                }
                let dst = out.pointer + plane * oh * ow
                for (oy, t) in ys.enumerated() {
                    let top = rows + t.i0 * ow, bottom = rows + t.i1 * ow, y = dst + oy * ow
                    for ox in 0..<ow { y[ox] = t.w0 * top[ox] + t.w1 * bottom[ox] }
                }
            }
        }
        return out
    }

    /// [(N,C_i,H,W)] → (N,ΣC_i,H,W) in order.
    public func concatChannels(_ xs: [FastActivation]) -> FastActivation {
        precondition(!xs.isEmpty, "concatChannels needs at least one activation")
        let parts = xs.map(nhwc), first = parts[0].shape
        for part in parts {
            precondition(part.shape.n == first.n && part.shape.size == first.size,
                         "concatChannels: \(part.shape) does not match \(first)")
        }
        let total = parts.reduce(0) { $0 + $1.shape.c }
        let out = make(Shape4(n: first.n, c: total, h: first.h, w: first.w))
        let pixels = first.n * first.h * first.w
        split(pixels * total) { index, count in
            for p in chunk(pixels, index, count) {
                var offset = 0
                for part in parts {
                    let c = part.shape.c
                    (out.pointer + p * total + offset).update(from: part.pointer + p * c, count: c)
                    offset += c
                }
            }
        }
        return out
    }

    /// x (N,C,H,W) → (N,range.count,H,W).
    public func sliceChannels(_ x: FastActivation, _ range: Range<Int>) -> FastActivation {
        let x = nhwc(x), s = x.shape
        precondition(range.lowerBound >= 0 && range.upperBound <= s.c && !range.isEmpty,
                     "sliceChannels: \(range) outside 0..<\(s.c)")
        let out = make(Shape4(n: s.n, c: range.count, h: s.h, w: s.w))
        let pixels = s.n * s.h * s.w, k = range.count
        split(pixels * k) { index, count in
            for p in chunk(pixels, index, count) {
                (out.pointer + p * k).update(from: x.pointer + p * s.c + range.lowerBound, count: k)
            }
        }
        return out
    }

    /// a + b, both (N,C,H,W), then ReLU if asked.
    public func add(_ a: FastActivation, _ b: FastActivation, relu: Bool) -> FastActivation {
        let a = nhwc(a), b = nhwc(b)
        precondition(a.shape == b.shape, "add: \(a.shape) vs \(b.shape)")
        let out = make(a.shape)
        addArrays(a.pointer, b.pointer, out.pointer, count: a.shape.count, relu: relu)
        return out
    }

    /// x += r (same shape, x NHWC, r NHWC), then ReLU if asked.
    func addInPlace(_ x: FastActivation, _ r: FastActivation, relu: Bool) {
        addArrays(x.pointer, r.pointer, x.pointer, count: x.shape.count, relu: relu)
    }

    private func addArrays(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                           count: Int, relu: Bool) {
        let level = engine.level
        split(count) { index, parts in
            let r = chunk(count, index, parts)
            aerialseg_add_relu(a + r.lowerBound, b + r.lowerBound, y + r.lowerBound, r.count, relu ? 1 : 0, level)
        }
    }

    /// x (N,C,H,W) · gate (N,C,1,1) broadcast over H and W.
    public func mulChannels(_ x: FastActivation, _ gate: FastActivation) -> FastActivation {
        let x = nhwc(x), gate = nhwc(gate), s = x.shape
        precondition(gate.shape == Shape4(n: s.n, c: s.c, h: 1, w: 1), "mulChannels: gate \(gate.shape) for \(s)")
        let out = make(s)
        let hw = s.h * s.w, c = s.c
        split(s.count) { index, count in
            for p in chunk(s.n * hw, index, count) {
                let g = gate.pointer + (p / hw) * c, src = x.pointer + p * c, dst = out.pointer + p * c
                for i in 0..<c { dst[i] = src[i] * g[i] }
            }
        }
        return out
    }

    /// Elementwise 1 / (1 + e^-x).
    public func sigmoid(_ x: FastActivation) -> FastActivation {
        map(x) { 1 / (1 + expf(-$0)) }
    }

    /// Elementwise max(x, 0).
    public func relu(_ x: FastActivation) -> FastActivation {
        map(x) { max($0, 0) }
    }

    private func map(_ x: FastActivation, _ f: (Float) -> Float) -> FastActivation {
        let out = make(x.shape, x.layout)
        let count = x.shape.count
        split(count) { index, parts in
            for i in chunk(count, index, parts) { out.pointer[i] = f(x.pointer[i]) }
        }
        return out
    }

    /// Softmax over C: `exp(x - max_c x) / Σ_c exp(x - max_c x)` per pixel.
    public func softmaxChannels(_ x: FastActivation) -> FastActivation {
        let x = nhwc(x), s = x.shape, c = s.c
        let out = make(s)
        let pixels = s.n * s.h * s.w
        split(s.count) { index, count in
            for p in chunk(pixels, index, count) {
                let src = x.pointer + p * c, dst = out.pointer + p * c
                var m = -Float.infinity
                for i in 0..<c { m = max(m, src[i]) }
                var sum: Float = 0
                for i in 0..<c {
                    let e = expf(src[i] - m)
                    dst[i] = e
                    sum += e
                }
                for i in 0..<c { dst[i] /= sum }
            }
        }
        return out
    }

    /// (N,C,H,W) → N·H·W labels, row-major (N,H,W); ties go to the lowest channel.
    public func argmaxChannels(_ x: FastActivation) -> [Int32] {
        let x = nhwc(x), s = x.shape, c = s.c
        let pixels = s.n * s.h * s.w
        var labels = [Int32](repeating: 0, count: pixels)
        labels.withUnsafeMutableBufferPointer { out in
            guard let out = out.baseAddress else { return }
            split(s.count) { index, count in
                for p in chunk(pixels, index, count) {
                    let v = x.pointer + p * c
                    var best = v[0], label = 0
                    for i in 1..<max(c, 1) where v[i] > best {
                        best = v[i]
                        label = i
                    }
                    out[p] = Int32(label)
                }
            }
        }
        return labels
    }

    /// Reverses the W axis (NHWC or NCHW; nChw16c is converted first).
    public func flipHorizontal(_ x: FastActivation) -> FastActivation {
        let x = x.layout == .nChw16c ? nhwc(x) : x
        let s = x.shape, out = make(s, x.layout)
        // A row is `w` elements of `run` floats: NHWC rows hold pixels of C values, NCHW rows scalars.
        let (rows, run) = x.layout == .nhwc ? (s.n * s.h, s.c) : (s.n * s.c * s.h, 1)
        split(s.count) { index, count in
            for row in chunk(rows, index, count) {
                let src = x.pointer + row * s.w * run, dst = out.pointer + row * s.w * run
                for i in 0..<s.w { (dst + i * run).update(from: src + (s.w - 1 - i) * run, count: run) }
            }
        }
        return out
    }
}

/// Each of the N images of logical shape `s`: NCHW → NHWC (`toNHWC`), or NHWC → NCHW.
func reorderImages(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ s: Shape4, toNHWC: Bool) {
    let plane = s.h * s.w, image = s.c * plane
    for n in 0..<s.n {
        transpose(src + n * image, dst + n * image, rows: toNHWC ? s.c : plane, cols: toNHWC ? plane : s.c)
    }
}

/// dst (cols, rows) = transpose of src (rows, cols), in 32×32 tiles to stay in cache.
func transpose(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    let tile = 32
    for r0 in stride(from: 0, to: rows, by: tile) {
        let r1 = min(r0 + tile, rows)
        for c0 in stride(from: 0, to: cols, by: tile) {
            let c1 = min(c0 + tile, cols)
            for r in r0..<r1 {
                for c in c0..<c1 { dst[c * rows + r] = src[r * cols + c] }
            }
        }
    }
}
