extension Kernels {
    /// Most floats one im2col band may hold (32 MiB); taller outputs are processed in row bands.
    public static let im2colBudget = 8 << 20

    /// Convolution as im2col + GEMM (ggml's BLAS path), then bias, residual and ReLU.
    ///
    /// x is (N,C,H,W), weight is (OC, C/groups, KH, KW), residual is (N,OC,OH,OW),
    /// out is (N,OC,OH,OW) with `OH = floor((H + 2p - d(KH-1) - 1)/s) + 1` (same for OW).
    /// Per image and group: `out_g (OC/g, OH·OW) = W_g (OC/g, C/g·KH·KW) · cols_g (C/g·KH·KW, OH·OW)`.
    /// A 1×1 stride-1 unpadded conv multiplies the input directly (no im2col); otherwise the im2col
    /// buffer holds at most `maxColumnFloats` values (whole output rows, at least one).
    public static func conv2d(_ x: Tensor, _ spec: ConvSpec, residual: Tensor? = nil,
                              maxColumnFloats: Int = im2colBudget) -> Tensor {
        guard let s = Shape4(x.shape) else { preconditionFailure("conv2d input must be NCHW, got \(x.shape)") }
        let groups = spec.groups
        precondition(groups >= 1 && s.c % groups == 0 && spec.outChannels % groups == 0,
                     "conv2d: \(s.c) input / \(spec.outChannels) output channels do not split into \(groups) groups")
        precondition(spec.weight.shape[1] * groups == s.c,
                     "conv2d: weight \(spec.weight.shape) expects \(spec.inChannels) input channels, got \(s.c)")
        let o = spec.outputSize(for: s.size)
        precondition(o.height > 0 && o.width > 0, "conv2d: input \(s.size) too small for \(spec.weight.shape)")
        let oc = spec.outChannels, kh = spec.kernelHeight, kw = spec.kernelWidth
        let ocg = oc / groups, kdim = s.c / groups * kh * kw
        let ohw = o.height * o.width, hw = s.h * s.w
        if let r = residual {
            precondition(r.shape == [s.n, oc, o.height, o.width], "conv2d: residual \(r.shape) does not match output")
        }

        var out = [Float](repeating: 0, count: s.n * oc * ohw)
        let pointwise = kh == 1 && kw == 1 && spec.stride == 1 && spec.padding == 0
        spec.weight.data.withUnsafeBufferPointer { w in
            x.data.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { yp in
                    guard let w = w.baseAddress, let xb = xp.baseAddress, let y = yp.baseAddress else { return }
                    if pointwise {
                        for n in 0..<s.n {
                            for g in 0..<groups {
                                sgemm(m: ocg, n: hw, k: kdim,
                                      a: w + g * ocg * kdim, lda: kdim,
                                      b: xb + (n * s.c + g * kdim) * hw, ldb: hw,
                                      c: y + (n * oc + g * ocg) * ohw, ldc: ohw)
                            }
                        }
                        return
                    }
                    let rows = s.c * kh * kw
                    let band = max(1, min(o.height, maxColumnFloats / max(1, rows * o.width)))
                    var cols = [Float](repeating: 0, count: rows * band * o.width)
                    cols.withUnsafeMutableBufferPointer { cp in
                        guard let c = cp.baseAddress else { return }
                        for n in 0..<s.n {
                            var y0 = 0
                            while y0 < o.height {
                                let y1 = min(y0 + band, o.height)
                                let width = (y1 - y0) * o.width
                                im2col(xb + n * s.c * hw, s, spec, rows: y0..<y1, out: o, into: c)
                                for g in 0..<groups {
                                    sgemm(m: ocg, n: width, k: kdim,
                                          a: w + g * ocg * kdim, lda: kdim,
                                          b: c + g * kdim * width, ldb: width,
                                          c: y + (n * oc + g * ocg) * ohw + y0 * o.width, ldc: ohw)
                                }
                                y0 = y1
                            }
                        }
                    }
                }
            }
        }
        epilogue(&out, channels: oc, plane: ohw, bias: spec.bias, residual: residual?.data, relu: spec.relu)
        return Tensor(shape: [s.n, oc, o.height, o.width], data: out)
    }

    /// Unfolds output rows `rows` of one image into `cols` (C·KH·KW, rows.count·OW); row index
    /// `(c·KH + ki)·KW + kj` (PyTorch weight order), zeros where the window leaves the input.
    private static func im2col(_ x: UnsafePointer<Float>, _ s: Shape4, _ spec: ConvSpec,
                               rows: Range<Int>, out o: Size2, into cols: UnsafeMutablePointer<Float>) {
        let kh = spec.kernelHeight, kw = spec.kernelWidth
        let stride = spec.stride, pad = spec.padding, dil = spec.dilation
        let width = rows.count * o.width
        for c in 0..<s.c {
            let plane = x + c * s.h * s.w
            for ki in 0..<kh {
                for kj in 0..<kw {
                    let dst = cols + ((c * kh + ki) * kw + kj) * width
                    // Output columns whose input column ix = ox·s - p + kj·d lies inside [0, W).
                    let offset = kj * dil - pad
                    let first = offset >= 0 ? 0 : min(o.width, (-offset + stride - 1) / stride)
                    let last = s.w - 1 - offset < 0 ? 0 : min(o.width, (s.w - 1 - offset) / stride + 1)
                    for (r, oy) in rows.enumerated() {
                        let row = dst + r * o.width
                        let iy = oy * stride - pad + ki * dil
                        guard iy >= 0 && iy < s.h, first < last else {
                            row.update(repeating: 0, count: o.width)
                            continue
                        }
                        let src = plane + iy * s.w + offset
                        if first > 0 { row.update(repeating: 0, count: first) }
                        if stride == 1 {
                            (row + first).update(from: src + first, count: last - first)
                        } else {
                            for ox in first..<last { row[ox] = src[ox * stride] }
                        }
                        if last < o.width { (row + last).update(repeating: 0, count: o.width - last) }
                    }
                }
            }
        }
    }

    /// out[n,c,:] = relu?(out[n,c,:] + bias[c] + residual[n,c,:]), in place.
    static func epilogue(_ out: inout [Float], channels: Int, plane: Int, bias: [Float]?,
                         residual: [Float]?, relu: Bool) {
        if bias == nil && residual == nil && !relu { return }
        let batches = out.count / (channels * plane)
        out.withUnsafeMutableBufferPointer { y in
            for n in 0..<batches {
                for c in 0..<channels {
                    let b = bias?[c] ?? 0
                    let base = (n * channels + c) * plane
                    if let r = residual {
                        r.withUnsafeBufferPointer { rp in
                            for i in base..<(base + plane) {
                                let v = y[i] + b + rp[i]
                                y[i] = relu ? max(v, 0) : v
                            }
                        }
                    } else {
                        for i in base..<(base + plane) {
                            let v = y[i] + b
                            y[i] = relu ? max(v, 0) : v
                        }
                    }
                }
            }
        }
    }
}
