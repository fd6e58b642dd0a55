import Foundation

/// The reference kernels: every `Op` on plain NCHW `Tensor`s, written to be obviously right.
///
/// `ReferenceBackend` is these functions and nothing more; other backends fall back to them for
/// ops they do not implement, and post-processing (resize to the original shape, argmax) uses
/// them on downloaded logits. Convolution is im2col + OpenBLAS sgemm; the rest are plain loops.
public enum Kernels {
    static func shape4(_ x: Tensor, _ op: Op) -> Shape4 {
        guard let s = Shape4(x.shape) else { preconditionFailure("\(op.rawValue): expected NCHW, got \(x.shape)") }
        return s
    }

    /// [(N,C_i,H,W)] → (N,ΣC_i,H,W).
    public static func concatChannels(_ xs: [Tensor]) -> Tensor {
        precondition(!xs.isEmpty, "concatChannels needs at least one tensor")
        let first = shape4(xs[0], .concatChannels)
        var channels = 0
        for x in xs {
            let s = shape4(x, .concatChannels)
            precondition(s.n == first.n && s.h == first.h && s.w == first.w,
                         "concatChannels: \(x.shape) does not match \(first)")
            channels += s.c
        }
        let hw = first.h * first.w
        var out = [Float]()
        out.reserveCapacity(first.n * channels * hw)
        for n in 0..<first.n {
            for x in xs {
                let chw = x.shape[1] * hw
                out.append(contentsOf: x.data[(n * chw)..<((n + 1) * chw)])
            }
        }
        return Tensor(shape: [first.n, channels, first.h, first.w], data: out)
    }

    /// x (N,C,H,W) → (N,range.count,H,W).
    public static func sliceChannels(_ x: Tensor, _ range: Range<Int>) -> Tensor {
        let s = shape4(x, .sliceChannels)
        precondition(range.lowerBound >= 0 && range.upperBound <= s.c && !range.isEmpty,
                     "sliceChannels: \(range) outside 0..<\(s.c)")
        let hw = s.h * s.w
        var out = [Float]()
        out.reserveCapacity(s.n * range.count * hw)
        for n in 0..<s.n {
            let base = n * s.c * hw
            out.append(contentsOf: x.data[(base + range.lowerBound * hw)..<(base + range.upperBound * hw)])
        }
        return Tensor(shape: [s.n, range.count, s.h, s.w], data: out)
    }

    /// a + b (same shape), then ReLU if asked.
    public static func add(_ a: Tensor, _ b: Tensor, relu: Bool) -> Tensor {
        precondition(a.shape == b.shape, "add: \(a.shape) vs \(b.shape)")
        var out = a.data
        out.withUnsafeMutableBufferPointer { y in
            b.data.withUnsafeBufferPointer { bp in
                for i in y.indices {
                    let v = y[i] + bp[i]
                    y[i] = relu ? max(v, 0) : v
                }
            }
        }
        return Tensor(shape: a.shape, data: out)
    }

    /// x (N,C,H,W) · gate (N,C,1,1).
    public static func mulChannels(_ x: Tensor, _ gate: Tensor) -> Tensor {
        let s = shape4(x, .mulChannels)
        precondition(gate.shape == [s.n, s.c, 1, 1], "mulChannels: gate \(gate.shape) for input \(s)")
        let hw = s.h * s.w
        var out = x.data
        out.withUnsafeMutableBufferPointer { y in
            for nc in 0..<(s.n * s.c) {
                let g = gate.data[nc]
                for i in (nc * hw)..<((nc + 1) * hw) { y[i] *= g }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    /// Elementwise 1 / (1 + e^-x).
    public static func sigmoid(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, data: x.data.map { 1 / (1 + expf(-$0)) })
    }

    /// Elementwise max(x, 0).
    public static func relu(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, data: x.data.map { max($0, 0) })
    }

    /// Softmax over C of (N,C,H,W): `exp(x - max_c x) / Σ_c exp(x - max_c x)`.
    public static func softmaxChannels(_ x: Tensor) -> Tensor {
        let s = shape4(x, .softmaxChannels)
        let hw = s.h * s.w
        var out = x.data
        out.withUnsafeMutableBufferPointer { y in
            for n in 0..<s.n {
                for p in 0..<hw {
                    let base = n * s.c * hw + p
                    var m = -Float.infinity
                    for c in 0..<s.c { m = max(m, y[base + c * hw]) }
                    var sum: Float = 0
                    for c in 0..<s.c {
                        let e = expf(y[base + c * hw] - m)
                        y[base + c * hw] = e
                        sum += e
                    }
                    for c in 0..<s.c { y[base + c * hw] /= sum }
                }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    /// (N,C,H,W) → N·H·W labels (row-major N,H,W): the first channel holding the maximum
    /// (`torch.argmax` tie rule).
    public static func argmaxChannels(_ x: Tensor) -> [Int32] {
        let s = shape4(x, .argmaxChannels)
        let hw = s.h * s.w
        var labels = [Int32](repeating: 0, count: s.n * hw)
        x.data.withUnsafeBufferPointer { v in
            for n in 0..<s.n {
                for p in 0..<hw {
                    let base = n * s.c * hw + p
                    var best = v[base], label = 0
                    for c in 1..<max(s.c, 1) where v[base + c * hw] > best {
                        best = v[base + c * hw]
                        label = c
                    }
                    labels[n * hw + p] = Int32(label)
                }
            }
        }
        return labels
    }

    /// Reverses the W axis of (N,C,H,W).
    public static func flipHorizontal(_ x: Tensor) -> Tensor {
        let s = shape4(x, .flipHorizontal)
        var out = x.data
        out.withUnsafeMutableBufferPointer { y in
            for row in 0..<(s.n * s.c * s.h) {
                let base = row * s.w
                for i in 0..<s.w { y[base + i] = x.data[base + s.w - 1 - i] }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }
}
