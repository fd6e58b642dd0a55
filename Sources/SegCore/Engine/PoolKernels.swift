extension Kernels {
    /// x (N,C,H,W) → (N,C,OH,OW) for the pooling kernels: `out[plane, oy, ox] = reduce(x_plane,
    /// window(oy, ox))`, where the window is the in-bounds rows and columns output (oy, ox) covers
    /// and `x_plane` is one H×W plane (row stride W).
    private static func pool(_ x: Tensor, _ s: Shape4, to o: Size2, window: (Int, Int) -> (Range<Int>, Range<Int>),
                             reduce: (UnsafePointer<Float>, Range<Int>, Range<Int>) -> Float) -> Tensor {
        var out = [Float](repeating: 0, count: s.n * s.c * o.height * o.width)
        x.data.withUnsafeBufferPointer { v in
            guard let base = v.baseAddress else { return }
            for plane in 0..<(s.n * s.c) {
                let src = base + plane * s.h * s.w
                for oy in 0..<o.height {
                    for ox in 0..<o.width {
                        let (rows, cols) = window(oy, ox)
                        out[(plane * o.height + oy) * o.width + ox] = reduce(src, rows, cols)
                    }
                }
            }
        }
        return Tensor(shape: [s.n, s.c, o.height, o.width], data: out)
    }

    /// Max pooling, floor mode: x (N,C,H,W) → (N,C,OH,OW), `OH = floor((H + 2p - k)/s) + 1`.
    /// Padded positions are -inf, so they never win (ResNet's stem pool: k 3, s 2, p 1).
    public static func maxPool2d(_ x: Tensor, kernel k: Int, stride s: Int, padding p: Int) -> Tensor {
        let shape = shape4(x, .maxPool2d)
        let oh = (shape.h + 2 * p - k) / s + 1, ow = (shape.w + 2 * p - k) / s + 1
        precondition(oh > 0 && ow > 0 && p * 2 <= k, "maxPool2d: bad geometry for \(shape)")
        let w = shape.w
        return pool(x, shape, to: Size2(height: oh, width: ow)) { oy, ox in
            (max(oy * s - p, 0)..<min(oy * s - p + k, shape.h), max(ox * s - p, 0)..<min(ox * s - p + k, w))
        } reduce: { v, rows, cols in
            var m = -Float.infinity
            for iy in rows {
                for ix in cols { m = max(m, v[iy * w + ix]) }
            }
            return m
        }
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
        let w = shape.w
        return pool(x, shape, to: Size2(height: oh, width: ow)) { oy, ox in
            ((oy * s)..<min(oy * s + k, shape.h), (ox * s)..<min(ox * s + k, w))
        } reduce: { v, rows, cols in
            var sum: Float = 0
            for iy in rows {
                for ix in cols { sum += v[iy * w + ix] }
            }
            return sum / Float(rows.count * cols.count)
        }
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
        precondition(size.height > 0 && size.width > 0, "adaptiveAvgPool2d: empty output size \(size)")
        return pool(x, s, to: size) { oy, ox in
            (adaptiveBin(oy, bins: size.height, length: s.h), adaptiveBin(ox, bins: size.width, length: s.w))
        } reduce: { v, rows, cols in
            var sum = 0.0
            for iy in rows {
                for ix in cols { sum += Double(v[iy * s.w + ix]) }
            }
            return Float(sum / Double(rows.count * cols.count))
        }
    }
}
