/// Something that runs the engine's operations (`Op`).
///
/// Models only ever hold `Activation` values and hand them back to the backend, so a backend picks
/// its own memory layout: the reference backend keeps plain NCHW `Tensor`s, a fast backend may keep
/// NHWC or blocked buffers between layers and reorder only in `upload` / `download`, at the model's
/// edges. Every shape in this protocol is the logical NCHW shape.
///
/// Only `upload`, `download`, `shape(of:)`, `makeConv` and `conv2d` are required. Every other op has
/// a default that downloads to NCHW, runs the reference kernel (`Kernels`) and uploads the result —
/// correct, and cheap for the small tensors most of them see; a fast backend overrides what its
/// profile shows.
///
/// Conventions: batch N ≥ 1, all shapes positive; mismatched shapes are programmer errors
/// (preconditions), because models validate their input before the first op. What can fail on a
/// valid model — an input too small for a convolution's window (`ConvGeometry.outputShape`), or a
/// kernel the backend cannot build for this size (oneDNN) — makes `conv2d` throw; the other ops
/// cannot fail on shapes a valid model produces.
public protocol Backend: Sendable {
    /// An activation in the backend's own layout.
    associatedtype Activation
    /// A convolution prepared for this backend (packed weights, primitives, ...).
    associatedtype Conv: Sendable

    /// Short name for logs and the CLI's `--backend` ("reference", "onednn").
    var name: String { get }
    /// The arithmetic of the convolutions (f32 by default).
    var precision: Precision { get }

    /// Prepares a convolution once, at model load time.
    func makeConv(_ spec: ConvSpec) throws -> Conv

    /// Brings an NCHW tensor (N,C,H,W) into the backend.
    func upload(_ x: Tensor) -> Activation
    /// Returns an activation as an NCHW tensor.
    func download(_ x: Activation) -> Tensor
    /// Calls `body` with an activation's values in NCHW order: in place when the backend already
    /// holds them so (no copy), else through `download`.
    func withNCHW<T>(_ x: Activation, _ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T
    /// Logical NCHW shape of an activation.
    func shape(of x: Activation) -> Shape4

    /// x (N,C,H,W) → (N,OC,OH,OW): `relu?(conv(x) + bias + residual)`; residual is (N,OC,OH,OW).
    /// Throws when this input size cannot run (see the conventions above).
    func conv2d(_ x: Activation, _ conv: Conv, residual: Activation?) throws -> Activation
    /// `conv2d(x, conv, residual:)` for a caller that gives the residual up (a residual block's
    /// shortcut): where nobody else holds it, a backend may write the output over it instead of
    /// copying it into a new buffer; the result is the same either way.
    func conv2d(_ x: Activation, _ conv: Conv, accumulatingInto residual: consuming Activation) throws -> Activation
    /// `conv2d(conv2d(x, depthwise), pointwise)`, a depthwise-separable convolution; a backend may
    /// hand the intermediate map from one to the other in the form the second reads.
    func separableConv(_ x: Activation, _ depthwise: Conv, _ pointwise: Conv) throws -> Activation
    /// `conv2d(concatChannels(xs), conv)`; a backend may read the inputs where they are instead.
    func conv2d(concatenating xs: [Activation], _ conv: Conv) throws -> Activation
    /// Runs `body`, one forward pass of a kind named by `key` (the network and input size), whose
    /// activations a backend may place in memory planned for passes of that kind; default: `body()`.
    func withActivationArena<T>(_ key: String, _ body: () throws -> T) rethrows -> T
    /// x (N,C,H,W) → (N,C,OH,OW); padded positions never win.
    func maxPool2d(_ x: Activation, kernel: Int, stride: Int, padding: Int) -> Activation
    /// x (N,C,H,W) → (N,C,OH,OW), mean over the in-bounds part of each window (no padding).
    func avgPool2d(_ x: Activation, kernel: Int, stride: Int, ceilMode: Bool) -> Activation
    /// x (N,C,H,W) → (N,C,size.height,size.width), PyTorch `AdaptiveAvgPool2d` bins.
    func adaptiveAvgPool2d(_ x: Activation, to size: Size2) -> Activation
    /// x (N,C,H,W) → (N,C,size.height,size.width), PyTorch bilinear interpolation.
    func resizeBilinear(_ x: Activation, to size: Size2, alignCorners: Bool) -> Activation
    /// `resizeBilinear` of the logits to the window, in the layout `withNCHW` reads without a copy
    /// where the backend has such a choice (one classes × H × W map less at the peak).
    func resizeLogits(_ x: Activation, to size: Size2, alignCorners: Bool) -> Activation
    /// [(N,C_i,H,W)] → (N,ΣC_i,H,W) in the given order.
    func concatChannels(_ xs: [Activation]) -> Activation
    /// x (N,C,H,W) → (N,range.count,H,W).
    func sliceChannels(_ x: Activation, _ range: Range<Int>) -> Activation
    /// a + b, both (N,C,H,W), then ReLU if asked.
    func add(_ a: Activation, _ b: Activation, relu: Bool) -> Activation
    /// x (N,C,H,W) · gate (N,C,1,1) broadcast over H and W.
    func mulChannels(_ x: Activation, _ gate: Activation) -> Activation
    /// Elementwise logistic function.
    func sigmoid(_ x: Activation) -> Activation
    /// Elementwise max(x, 0).
    func relu(_ x: Activation) -> Activation
    /// Softmax over the channel axis.
    func softmaxChannels(_ x: Activation) -> Activation
    /// (N,C,H,W) → N·H·W labels, row-major (N,H,W); ties go to the lowest channel index.
    func argmaxChannels(_ x: Activation) -> [Int32]
    /// x (N,C,H,W) → (N,C,1,1); see `EncodingSpec`.
    func encoding(_ x: Activation, _ spec: EncodingSpec) -> Activation
    /// Reverses the W axis.
    func flipHorizontal(_ x: Activation) -> Activation
}

extension Backend {
    /// Runs a reference kernel on the NCHW view of `x`.
    @inline(__always)
    private func onHost(_ x: Activation, _ body: (Tensor) -> Tensor) -> Activation {
        upload(body(download(x)))
    }

    public func maxPool2d(_ x: Activation, kernel: Int, stride: Int, padding: Int) -> Activation {
        onHost(x) { Kernels.maxPool2d($0, kernel: kernel, stride: stride, padding: padding) }
    }

    public func avgPool2d(_ x: Activation, kernel: Int, stride: Int, ceilMode: Bool) -> Activation {
        onHost(x) { Kernels.avgPool2d($0, kernel: kernel, stride: stride, ceilMode: ceilMode) }
    }

    public func adaptiveAvgPool2d(_ x: Activation, to size: Size2) -> Activation {
        onHost(x) { Kernels.adaptiveAvgPool2d($0, to: size) }
    }

    public func resizeBilinear(_ x: Activation, to size: Size2, alignCorners: Bool) -> Activation {
        onHost(x) { Kernels.resizeBilinear($0, to: size, alignCorners: alignCorners) }
    }

    public func resizeLogits(_ x: Activation, to size: Size2, alignCorners: Bool) -> Activation {
        resizeBilinear(x, to: size, alignCorners: alignCorners)
    }

    public func concatChannels(_ xs: [Activation]) -> Activation {
        upload(Kernels.concatChannels(xs.map(download)))
    }

    public func sliceChannels(_ x: Activation, _ range: Range<Int>) -> Activation {
        onHost(x) { Kernels.sliceChannels($0, range) }
    }

    public func add(_ a: Activation, _ b: Activation, relu: Bool) -> Activation {
        upload(Kernels.add(download(a), download(b), relu: relu))
    }

    public func mulChannels(_ x: Activation, _ gate: Activation) -> Activation {
        upload(Kernels.mulChannels(download(x), download(gate)))
    }

    public func sigmoid(_ x: Activation) -> Activation {
        onHost(x) { Kernels.sigmoid($0) }
    }

    public func relu(_ x: Activation) -> Activation {
        onHost(x) { Kernels.relu($0) }
    }

    public func softmaxChannels(_ x: Activation) -> Activation {
        onHost(x) { Kernels.softmaxChannels($0) }
    }

    public func argmaxChannels(_ x: Activation) -> [Int32] {
        Kernels.argmaxChannels(download(x))
    }

    public func encoding(_ x: Activation, _ spec: EncodingSpec) -> Activation {
        onHost(x) { Kernels.encoding($0, spec) }
    }

    public func flipHorizontal(_ x: Activation) -> Activation {
        onHost(x) { Kernels.flipHorizontal($0) }
    }

    public func withActivationArena<T>(_ key: String, _ body: () throws -> T) rethrows -> T { try body() }

    public func conv2d(concatenating xs: [Activation], _ conv: Conv) throws -> Activation {
        try conv2d(concatChannels(xs), conv, residual: nil)
    }

    public func conv2d(_ x: Activation, _ conv: Conv, accumulatingInto residual: consuming Activation) throws
        -> Activation {
        try conv2d(x, conv, residual: residual)
    }

    public func separableConv(_ x: Activation, _ depthwise: Conv, _ pointwise: Conv) throws -> Activation {
        try conv2d(conv2d(x, depthwise), pointwise)
    }

    /// `conv2d` without a residual.
    @inline(__always)
    public func conv2d(_ x: Activation, _ conv: Conv) throws -> Activation {
        try conv2d(x, conv, residual: nil)
    }
}

extension Backend {
    /// The arithmetic of the convolutions; f32 unless a backend says otherwise.
    public var precision: Precision { .f32 }

    public func withNCHW<T>(_ x: Activation, _ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        try download(x).data.withUnsafeBufferPointer(body)
    }
}
