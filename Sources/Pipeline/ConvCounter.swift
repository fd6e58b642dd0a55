import Foundation
import Synchronization
import SegCore

/// A backend that forwards every op to `Base` and counts the multiply-accumulates of its
/// convolutions, so `aerialseg bench` reports achieved GFLOP/s from the real layer shapes; with
/// `profiling` on, it also times each convolution (`bench --profile`).
///
/// Counting costs one shape query per conv; everything else is the base backend's own code.
struct ConvCounter<Base: Backend>: Backend {
    typealias Activation = Base.Activation

    /// A base conv with its spec's sizes.
    struct Conv: Sendable {
        let base: Base.Conv
        /// MACs per output element: (C_in / groups) · KH · KW.
        let macsPerOutput: Int
        /// Creation order (the model's layer order) and a short description ("3×3 s1 d2 512→512").
        let index: Int
        let layer: String
    }

    /// One convolution's calls while profiling.
    struct LayerTime: Sendable {
        let conv: Conv
        var input: Shape4
        var output: Shape4
        var seconds = 0.0
        var macs = 0
    }

    let base: Base
    let counter = Counter()
    /// The kernel, its arithmetic and its memory for a conv and an input shape
    /// (`FastConv.profileDescription`, `FastConv.memoryUse`).
    let describe: @Sendable (Base.Conv, Shape4) -> ConvKernelReport

    init(base: Base, describe: @escaping @Sendable (Base.Conv, Shape4) -> ConvKernelReport = { _, _ in
        ConvKernelReport(kernel: "", weightBytes: 0, scratchBytes: 0)
    }) {
        self.base = base
        self.describe = describe
    }

    final class Counter: Sendable {
        let macs = Mutex<Int>(0)
        let convs = Mutex<Int>(0)
        let profile = Mutex<[Int: LayerTime]?>(nil)
        func add(_ n: Int) { macs.withLock { $0 += n } }
        func reset() { macs.withLock { $0 = 0 } }
        var value: Int { macs.withLock { $0 } }
        /// Starts (or restarts) timing every convolution.
        func startProfiling() { profile.withLock { $0 = [:] } }
        var layers: [LayerTime] { profile.withLock { ($0 ?? [:]).values.sorted { $0.conv.index < $1.conv.index } } }
    }

    var name: String { base.name }
    var precision: Precision { base.precision }

    func makeConv(_ spec: ConvSpec) throws -> Conv {
        let index = counter.convs.withLock { n in
            defer { n += 1 }
            return n
        }
        let (kh, kw) = (spec.kernelHeight, spec.kernelWidth)
        let layer = "\(kh)×\(kw) s\(spec.stride)" + (spec.dilation > 1 ? " d\(spec.dilation)" : "")
            + (spec.groups > 1 ? " g\(spec.groups)" : "") + " \(spec.weight.shape[1] * spec.groups)→\(spec.outChannels)"
        return Conv(base: try base.makeConv(spec), macsPerOutput: spec.weight.shape[1] * kh * kw, index: index,
                    layer: layer)
    }

    func upload(_ x: Tensor) -> Activation { base.upload(x) }
    func download(_ x: Activation) -> Tensor { base.download(x) }
    func withNCHW<T>(_ x: Activation, _ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        try base.withNCHW(x, body)
    }
    func shape(of x: Activation) -> Shape4 { base.shape(of: x) }

    func conv2d(_ x: Activation, _ conv: Conv, residual: Activation?) throws -> Activation {
        try counted(conv, input: base.shape(of: x)) { try base.conv2d(x, conv.base, residual: residual) }
    }

    func conv2d(_ x: Activation, _ conv: Conv, accumulatingInto residual: consuming Activation) throws -> Activation {
        var given: Activation? = consume residual
        return try counted(conv, input: base.shape(of: x)) {
            try base.conv2d(x, conv.base, accumulatingInto: given.take()!)
        }
    }

    /// The base's own separable convolution, counted as its two layers; while profiling, the two
    /// run one after the other instead, so each is timed on its own.
    func separableConv(_ x: Activation, _ depthwise: Conv, _ pointwise: Conv) throws -> Activation {
        if counter.profile.withLock({ $0 != nil }) { return try conv2d(conv2d(x, depthwise), pointwise) }
        let s = base.shape(of: x)
        let y = try base.separableConv(x, depthwise.base, pointwise.base)
        let out = base.shape(of: y)
        // The depthwise output has the pointwise input's size (a 1×1 stride-1 pointwise keeps it).
        counter.add(out.n * out.h * out.w * (pointwise.macsPerOutput * out.c + depthwise.macsPerOutput * s.c))
        return y
    }

    func withActivationArena<T>(_ key: String, _ body: () throws -> T) rethrows -> T {
        try base.withActivationArena(key, body)
    }

    func conv2d(concatenating xs: [Activation], _ conv: Conv) throws -> Activation {
        let shapes = xs.map(base.shape(of:))
        let input = Shape4(n: shapes[0].n, c: shapes.reduce(0) { $0 + $1.c }, h: shapes[0].h, w: shapes[0].w)
        return try counted(conv, input: input) { try base.conv2d(concatenating: xs, conv.base) }
    }

    private func counted(_ conv: Conv, input: Shape4, _ body: () throws -> Activation) throws -> Activation {
        let profiling = counter.profile.withLock { $0 != nil }
        let start = profiling ? ContinuousClock.now : nil
        let y = try body()
        let s = base.shape(of: y)
        let macs = s.n * s.c * s.h * s.w * conv.macsPerOutput
        counter.add(macs)
        if let start {
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            counter.profile.withLock { table in
                var entry = table?[conv.index] ?? LayerTime(conv: conv, input: input, output: s)
                entry.seconds += seconds
                entry.macs += macs
                table?[conv.index] = entry
            }
        }
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
    func resizeLogits(_ x: Activation, to size: Size2, alignCorners: Bool) -> Activation {
        base.resizeLogits(x, to: size, alignCorners: alignCorners)
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
