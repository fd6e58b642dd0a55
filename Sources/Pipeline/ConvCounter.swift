import Synchronization
import SegCore

/// A backend that forwards every op to `Base` and counts the multiply-accumulates of its
/// convolutions, so `aerialseg bench` reports achieved GFLOP/s from the real layer shapes.
///
/// Counting costs one shape query per conv; everything else is the base backend's own code.
struct ConvCounter<Base: Backend>: Backend {
    typealias Activation = Base.Activation

    /// A base conv with its spec's sizes.
    struct Conv: Sendable {
        let base: Base.Conv
        /// MACs per output element: (C_in / groups) · KH · KW.
        let macsPerOutput: Int
    }

    let base: Base
    let counter = Counter()

    final class Counter: Sendable {
        let macs = Mutex<Int>(0)
        func add(_ n: Int) { macs.withLock { $0 += n } }
        func reset() { macs.withLock { $0 = 0 } }
        var value: Int { macs.withLock { $0 } }
    }

    var name: String { base.name }
    var precision: Precision { base.precision }

    func makeConv(_ spec: ConvSpec) throws -> Conv {
        Conv(base: try base.makeConv(spec),
             macsPerOutput: spec.weight.shape[1] * spec.kernelHeight * spec.kernelWidth)
    }

    func upload(_ x: Tensor) -> Activation { base.upload(x) }
    func download(_ x: Activation) -> Tensor { base.download(x) }
    func withNCHW<T>(_ x: Activation, _ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        try base.withNCHW(x, body)
    }
    func shape(of x: Activation) -> Shape4 { base.shape(of: x) }

    func conv2d(_ x: Activation, _ conv: Conv, residual: Activation?) throws -> Activation {
        let y = try base.conv2d(x, conv.base, residual: residual)
        let s = base.shape(of: y)
        counter.add(s.n * s.c * s.h * s.w * conv.macsPerOutput)
        return y
    }

    func maxPool2d(_ x: Activation, kernel: Int, stride: Int, padding: Int) -> Activation {
        base.maxPool2d(x, kernel: kernel, stride: stride, padding: padding)
    }
    func avgPool2d(_ x: Activation, kernel: Int, stride: Int, ceilMode: Bool) -> Activation {
        base.avgPool2d(x, kernel: kernel, stride: stride, ceilMode: ceilMode)
    }
    func adaptiveAvgPool2d(_ x: Activation, to size: Size2) -> Activation { base.adaptiveAvgPool2d(x, to: size) }
    func resizeBilinear(_ x: Activation, to size: Size2, alignCorners: Bool) -> Activation {
        base.resizeBilinear(x, to: size, alignCorners: alignCorners)
    }
    func concatChannels(_ xs: [Activation]) -> Activation { base.concatChannels(xs) }
    func sliceChannels(_ x: Activation, _ range: Range<Int>) -> Activation { base.sliceChannels(x, range) }
    func add(_ a: Activation, _ b: Activation, relu: Bool) -> Activation { base.add(a, b, relu: relu) }
    func mulChannels(_ x: Activation, _ gate: Activation) -> Activation { base.mulChannels(x, gate) }
    func sigmoid(_ x: Activation) -> Activation { base.sigmoid(x) }
    func relu(_ x: Activation) -> Activation { base.relu(x) }
    func softmaxChannels(_ x: Activation) -> Activation { base.softmaxChannels(x) }
    func argmaxChannels(_ x: Activation) -> [Int32] { base.argmaxChannels(x) }
    func encoding(_ x: Activation, _ spec: EncodingSpec) -> Activation { base.encoding(x, spec) }
    func flipHorizontal(_ x: Activation) -> Activation { base.flipHorizontal(x) }
}
