extension Kernels {
    /// Where output index `i` of one axis reads from: `value = w0·in[i0] + w1·in[i1]`.
    public struct LinearTap: Equatable, Sendable {
        public var i0: Int
        public var i1: Int
        public var w0: Float
        public var w1: Float
    }

    /// PyTorch's bilinear source indices and weights for one axis (float32 throughout, as
    /// `area_pixel_compute_source_index` + `guard_index_and_lambda` in aten `UpSample.h`).
    ///
    /// align_corners false: `scale = in/out`, `src = max((dst + 0.5)·scale - 0.5, 0)`;
    /// align_corners true: `scale = (in-1)/(out-1)` (0 when out is 1), `src = dst·scale`.
    /// Then `i0 = min(floor(src), in-1)`, `i1 = i0 + (i0 < in-1)`, `w1 = clamp(src - i0, 0, 1)`,
    /// `w0 = 1 - w1`. Equal sizes are the identity; a length-1 input is a broadcast.
    public static func linearTaps(input: Int, output: Int, alignCorners: Bool) -> [LinearTap] {
        precondition(input > 0 && output > 0, "resize: empty axis \(input)→\(output)")
        if input == output {
            return (0..<output).map { LinearTap(i0: $0, i1: $0, w0: 1, w1: 0) }
        }
        let scale: Float = alignCorners
            ? (output > 1 ? Float(input - 1) / Float(output - 1) : 0)
            : Float(input) / Float(output)
        return (0..<output).map { dst in
            let src: Float = alignCorners ? scale * Float(dst) : max(scale * (Float(dst) + 0.5) - 0.5, 0)
            let i0 = min(Int(src.rounded(.down)), input - 1)
            let w1 = min(max(src - Float(i0), 0), 1)
            return LinearTap(i0: i0, i1: i0 + (i0 < input - 1 ? 1 : 0), w0: 1 - w1, w1: w1)
        }
    }

    /// Bilinear resize, exactly `F.interpolate(x, size, mode='bilinear', align_corners=...)`:
    /// x (N,C,H,W) → (N,C,size.height,size.width),
    /// `out = wy0·(wx0·v[y0,x0] + wx1·v[y0,x1]) + wy1·(wx0·v[y1,x0] + wx1·v[y1,x1])`.
    public static func resizeBilinear(_ x: Tensor, to size: Size2, alignCorners: Bool) -> Tensor {
        let s = shape4(x, .resizeBilinear)
        if s.size == size { return x }
        let ys = linearTaps(input: s.h, output: size.height, alignCorners: alignCorners)
        let xs = linearTaps(input: s.w, output: size.width, alignCorners: alignCorners)
        let oh = size.height, ow = size.width
        var out = [Float](repeating: 0, count: s.n * s.c * oh * ow)
        x.data.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { y in
                for plane in 0..<(s.n * s.c) {
                    let src = plane * s.h * s.w
                    let dst = plane * oh * ow
                    for (oy, ty) in ys.enumerated() {
                        let r0 = src + ty.i0 * s.w, r1 = src + ty.i1 * s.w
                        for (ox, tx) in xs.enumerated() {
                            let top = tx.w0 * v[r0 + tx.i0] + tx.w1 * v[r0 + tx.i1]
                            let bottom = tx.w0 * v[r1 + tx.i0] + tx.w1 * v[r1 + tx.i1]
                            y[dst + oy * ow + ox] = ty.w0 * top + ty.w1 * bottom
                        }
                    }
                }
            }
        }
        return Tensor(shape: [s.n, s.c, oh, ow], data: out)
    }
}
