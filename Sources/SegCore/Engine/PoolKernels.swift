extension Kernels {
    /// Max pooling, floor mode: x (N,C,H,W) → (N,C,OH,OW), `OH = floor((H + 2p - k)/s) + 1`.
    /// Padded positions are -inf, so they never win (ResNet's stem pool: k 3, s 2, p 1).
    public static func maxPool2d(_ x: Tensor, kernel k: Int, stride s: Int, padding p: Int) -> Tensor {
        let shape = shape4(x, .maxPool2d)
        let oh = (shape.h + 2 * p - k) / s + 1, ow = (shape.w + 2 * p - k) / s + 1
        precondition(oh > 0 && ow > 0 && p * 2 <= k, "maxPool2d: bad geometry for \(shape)")
        var out = [Float](repeating: 0, count: shape.n * shape.c * oh * ow)
        x.data.withUnsafeBufferPointer { v in
            for plane in 0..<(shape.n * shape.c) {
                let src = plane * shape.h * shape.w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var m = -Float.infinity
                        for iy in max(oy * s - p, 0)..<min(oy * s - p + k, shape.h) {
                            for ix in max(ox * s - p, 0)..<min(ox * s - p + k, shape.w) {
                                m = max(m, v[src + iy * shape.w + ix])
                            }
                        }
                        out[(plane * oh + oy) * ow + ox] = m
                    }
                }
            }
        }
        return Tensor(shape: [shape.n, shape.c, oh, ow], data: out)
    }

    /// Output length of an unpadded pooling window along one axis (PyTorch `pooling_output_shape`):
    /// floor mode `floor((n - k)/s) + 1`; ceil mode `ceil((n - k)/s) + 1`, minus one if the last
    /// window would start past the input.
    static func pooledLength(_ n: Int, kernel k: Int, stride s: Int, ceilMode: Bool) -> Int {
        let numerator = n - k + (ceilMode ? s - 1 : 0)
        var out = (numerator >= 0 ? numerator / s : -((-numerator + s - 1) / s)) + 1
        if ceilMode && (out - 1) * s >= n { out -= 1 }
        return out
    }

    /// Average pooling without padding: x (N,C,H,W) → (N,C,OH,OW); each window's sum is divided
    /// by its number of in-bounds elements, which differs from k² only for the partial edge windows
    /// that `ceilMode` adds (RegSeg's `AvgPool2d(2, 2, ceil_mode=True)`).
    public static func avgPool2d(_ x: Tensor, kernel k: Int, stride s: Int, ceilMode: Bool) -> Tensor {
        let shape = shape4(x, .avgPool2d)
        let oh = pooledLength(shape.h, kernel: k, stride: s, ceilMode: ceilMode)
        let ow = pooledLength(shape.w, kernel: k, stride: s, ceilMode: ceilMode)
        precondition(oh > 0 && ow > 0, "avgPool2d: input \(shape) smaller than the \(k)×\(k) window")
        var out = [Float](repeating: 0, count: shape.n * shape.c * oh * ow)
        x.data.withUnsafeBufferPointer { v in
            for plane in 0..<(shape.n * shape.c) {
                let src = plane * shape.h * shape.w
                for oy in 0..<oh {
                    let y0 = oy * s, y1 = min(y0 + k, shape.h)
                    for ox in 0..<ow {
                        let x0 = ox * s, x1 = min(x0 + k, shape.w)
                        var sum: Float = 0
                        for iy in y0..<y1 {
                            for ix in x0..<x1 { sum += v[src + iy * shape.w + ix] }
                        }
                        out[(plane * oh + oy) * ow + ox] = sum / Float((y1 - y0) * (x1 - x0))
                    }
                }
            }
        }
        return Tensor(shape: [shape.n, shape.c, oh, ow], data: out)
    }

    /// Bin `i` of `bins` over an axis of length `n`: `[floor(i·n/bins), ceil((i+1)·n/bins))`.
    /// Neighbouring bins overlap when `bins` does not divide `n` (8→3, 8→6, 10→6).
    public static func adaptiveBin(_ i: Int, bins: Int, length n: Int) -> Range<Int> {
        (i * n / bins)..<(((i + 1) * n + bins - 1) / bins)
    }

    /// PyTorch `AdaptiveAvgPool2d`: x (N,C,H,W) → (N,C,oh,ow), plain mean over each bin
    /// (see `adaptiveBin`); 1×1 is the global mean. Sums are accumulated in Double.
    public static func adaptiveAvgPool2d(_ x: Tensor, to size: Size2) -> Tensor {
        let s = shape4(x, .adaptiveAvgPool2d)
        let oh = size.height, ow = size.width
        precondition(oh > 0 && ow > 0, "adaptiveAvgPool2d: empty output size \(size)")
        var out = [Float](repeating: 0, count: s.n * s.c * oh * ow)
        x.data.withUnsafeBufferPointer { v in
            for plane in 0..<(s.n * s.c) {
                let src = plane * s.h * s.w
                for oy in 0..<oh {
                    let rows = adaptiveBin(oy, bins: oh, length: s.h)
                    for ox in 0..<ow {
                        let cols = adaptiveBin(ox, bins: ow, length: s.w)
                        var sum = 0.0
                        for iy in rows {
                            for ix in cols { sum += Double(v[src + iy * s.w + ix]) }
                        }
                        out[(plane * oh + oy) * ow + ox] = Float(sum / Double(rows.count * cols.count))
                    }
                }
            }
        }
        return Tensor(shape: [s.n, s.c, oh, ow], data: out)
    }
}
