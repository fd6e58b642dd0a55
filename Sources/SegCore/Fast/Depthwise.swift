import CDNNL
import CKernels

/// Depthwise k×k convolution on NHWC activations, with our own kernel.
///
/// oneDNN 2.6 is slow on the dilated 3×3 depthwise convs of the DeepLabV3+ ASPP (512 channels at
/// 64², dilation 12/24/36): 17, 17 and 37 ms here (`jit:avx512_core`, `x64:gemm:jit`) against
/// 1–2 ms for this loop with cold caches; at dilation 1 both take ~1.2 ms. It vectorises over
/// channels (NHWC keeps them contiguous), skips the taps that fall in the zero padding, and
/// splits output rows over the libgomp team. The loop is C in `CKernels/kernels.c`
/// (`aerialseg_depthwise_nhwc`), compiled there for AVX-512, AVX2 and plain x86-64 and picked at
/// run time, because Swift cannot build per-ISA variants and its SIMD types fall back to scalar
/// calls without a `-target-cpu` flag.
final class DepthwiseConvolution {
    let geometry: ConvGeometry
    let relu: Bool
    /// (KH, KW, C): the kernel reads one tap's weights for a run of channels contiguously.
    private let packedWeights: [Float]
    private let bias: [Float]?
    private let threads: Int
    private let level = aerialseg_cpu_level()

    /// - Parameters:
    ///   - weight: `(C, 1, KH, KW)` as in PyTorch (BN folded in by the caller).
    ///   - bias: `(C)` or nil.
    init(geometry: ConvGeometry, weight: [Float], bias: [Float]?, relu: Bool, threads: Int) {
        let c = geometry.outChannels, k = geometry.kernelHeight * geometry.kernelWidth
        precondition(geometry.isDepthwise || (geometry.groups == 1 && c == 1 && geometry.inChannels == 1),
                     "not a depthwise conv: \(geometry)")
        precondition(weight.count == c * k, "depthwise weight count \(weight.count) does not match \(geometry)")
        precondition(bias == nil || bias?.count == c, "depthwise bias count does not match \(geometry)")
        var packed = [Float](repeating: 0, count: weight.count)
        for channel in 0..<c {
            for tap in 0..<k { packed[tap * c + channel] = weight[channel * k + tap] }
        }
        self.geometry = geometry
        self.packedWeights = packed
        self.bias = bias
        self.relu = relu
        self.threads = threads
    }

    /// x is (N, H, W, C), y is (N, OH, OW, C); NHWC, dense, not overlapping. `relu` overrides the
    /// layer's own setting (a residual add must come before the ReLU).
    func run(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, into y: UnsafeMutablePointer<Float>,
             relu: Bool? = nil) {
        let level = self.level
        forEachImage(x, n: n, h: h, w: w, y: y, relu: relu ?? self.relu) { args, _, rows in
            aerialseg_depthwise_nhwc(&args, Int32(rows.lowerBound), Int32(rows.upperBound), level)
        }
    }

    /// `run` with y rounded to bf16 (NHWC, round to nearest even: the bits of oneDNN's f32 → bf16
    /// reorder), for a bf16 convolution to read as its source. Only on a CPU with AVX512-BF16.
    func run(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, intoBF16 y: UnsafeMutablePointer<UInt16>) {
        precondition(DNNLContext.cpuHasBF16, "bf16 depthwise output on a CPU without AVX512-BF16")
        let (oh, ow) = geometry.outputSize(height: h, width: w), c = geometry.outChannels
        forEachImage(x, n: n, h: h, w: w, y: nil, relu: relu) { args, image, rows in
            let status = aerialseg_depthwise_nhwc_bf16(&args, y + image * oh * ow * c, Int32(rows.lowerBound),
                                                       Int32(rows.upperBound))
            precondition(status == 0, "depthwise: no memory for a scratch row of \(ow * c) floats")
        }
    }

    /// `body(args, image, rows)` for each image of x and each thread's share of its output rows.
    private func forEachImage(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, y: UnsafeMutablePointer<Float>?,
                              relu: Bool, _ body: (inout aerialseg_dw_args, Int, Range<Int>) -> Void) {
        let g = geometry, c = g.outChannels
        let (oh, ow) = g.outputSize(height: h, width: w)
        guard oh > 0, ow > 0 else { return }
        packedWeights.withUnsafeBufferPointer { weights in
            withOptionalPointer(bias) { bias in
                for image in 0..<n {
                    let args = aerialseg_dw_args(
                        x: x + image * h * w * c, w: weights.baseAddress, bias: bias, y: y.map { $0 + image * oh * ow * c },
                        h: Int32(h), wd: Int32(w), c: Int32(c), oh: Int32(oh), ow: Int32(ow),
                        kh: Int32(g.kernelHeight), kw: Int32(g.kernelWidth), stride: Int32(g.stride),
                        pad: Int32(g.padding), dilation: Int32(g.dilation), relu: relu ? 1 : 0)
                    // Few rows per thread would leave one core idle at the end; small maps run inline.
                    let team = oh * ow * c >= 16_384 ? threads : 1
                    parallelRun(threads: team) { index, count in
                        var mine = args
                        body(&mine, image, chunk(oh, index, count))
                    }
                }
            }
        }
    }
}

/// Calls `body` with a pointer to `array`'s storage, or nil when the array is nil.
@inline(__always)
func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
