/// The plain backend: NCHW `Tensor` activations and the reference `Kernels`.
///
/// It is the test oracle for faster backends and the `--backend reference` of the CLI.
/// Convolutions run on OpenBLAS (both cores); everything else is single-threaded loops.
public struct ReferenceBackend: Backend {
    public typealias Activation = Tensor
    public typealias Conv = ConvSpec

    public init() {}

    public var name: String { "reference" }

    public func makeConv(_ spec: ConvSpec) throws -> ConvSpec { spec }

    public func upload(_ x: Tensor) -> Tensor { x }
    public func download(_ x: Tensor) -> Tensor { x }

    public func shape(of x: Tensor) -> Shape4 {
        guard let s = Shape4(x.shape) else { preconditionFailure("reference activation is not NCHW: \(x.shape)") }
        return s
    }

    /// `Kernels.conv2d`, after checking that the input fits the window and that every matrix
    /// dimension fits OpenBLAS's 32-bit interface (H·W and OH·OW below 2³¹).
    public func conv2d(_ x: Tensor, _ conv: ConvSpec, residual: Tensor?) throws -> Tensor {
        let s = shape(of: x)
        let o = try conv.geometry.outputShape(for: s)
        guard s.h * s.w <= Int(Int32.max) && o.h * o.w <= Int(Int32.max) else {
            throw SegmentationError.unsupportedSize("\(conv.geometry) at \(s.size) exceeds OpenBLAS's 32-bit sizes "
                                                    + "(hint: use smaller tiles or the onednn backend)")
        }
        return Kernels.conv2d(x, conv, residual: residual)
    }

    public func maxPool2d(_ x: Tensor, kernel: Int, stride: Int, padding: Int) -> Tensor {
        Kernels.maxPool2d(x, kernel: kernel, stride: stride, padding: padding)
    }

    public func avgPool2d(_ x: Tensor, kernel: Int, stride: Int, ceilMode: Bool) -> Tensor {
        Kernels.avgPool2d(x, kernel: kernel, stride: stride, ceilMode: ceilMode)
    }

    public func adaptiveAvgPool2d(_ x: Tensor, to size: Size2) -> Tensor {
        Kernels.adaptiveAvgPool2d(x, to: size)
    }

    public func resizeBilinear(_ x: Tensor, to size: Size2, alignCorners: Bool) -> Tensor {
        Kernels.resizeBilinear(x, to: size, alignCorners: alignCorners)
    }

    public func concatChannels(_ xs: [Tensor]) -> Tensor { Kernels.concatChannels(xs) }
    public func sliceChannels(_ x: Tensor, _ range: Range<Int>) -> Tensor { Kernels.sliceChannels(x, range) }
    public func add(_ a: Tensor, _ b: Tensor, relu: Bool) -> Tensor { Kernels.add(a, b, relu: relu) }
    public func mulChannels(_ x: Tensor, _ gate: Tensor) -> Tensor { Kernels.mulChannels(x, gate) }
    public func sigmoid(_ x: Tensor) -> Tensor { Kernels.sigmoid(x) }
    public func relu(_ x: Tensor) -> Tensor { Kernels.relu(x) }
    public func softmaxChannels(_ x: Tensor) -> Tensor { Kernels.softmaxChannels(x) }
    public func argmaxChannels(_ x: Tensor) -> [Int32] { Kernels.argmaxChannels(x) }
    public func encoding(_ x: Tensor, _ spec: EncodingSpec) -> Tensor { Kernels.encoding(x, spec) }
    public func flipHorizontal(_ x: Tensor) -> Tensor { Kernels.flipHorizontal(x) }
}
