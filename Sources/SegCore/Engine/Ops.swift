/// The segmentation engine's operations, listed in one place (tinygrad's `Ops`, ggml's `ggml_op`).
///
/// Every model in `Models/` is composed from these and nothing else, so a backend that implements
/// them runs every model. Shapes below are logical NCHW; a backend may store activations in any
/// layout (see `Backend`).
public enum Op: String, CaseIterable, Sendable {
    /// x (N,C,H,W), weight (OC, C/groups, KH, KW) → (N,OC,OH,OW); stride, zero padding, dilation,
    /// groups (depthwise when groups == C), bias (BatchNorm folded in at load), then optionally
    /// `+ residual` (N,OC,OH,OW), then optionally ReLU.
    case conv2d
    /// x (N,C,H,W) → (N,C,OH,OW), max over a k×k window with -inf padding (ResNet stem: 3×3 s2 p1).
    case maxPool2d
    /// x (N,C,H,W) → (N,C,OH,OW), mean of the in-bounds elements of a k×k window, no padding,
    /// optional ceil_mode (RegSeg's shortcut `AvgPool2d(2, 2, ceil_mode=True)`).
    case avgPool2d
    /// x (N,C,H,W) → (N,C,oh,ow), bin i covers rows [floor(i·H/oh), ceil((i+1)·H/oh)) (PSP bins,
    /// global mean for 1×1).
    case adaptiveAvgPool2d
    /// x (N,C,H,W) → (N,C,oh,ow), PyTorch `F.interpolate(mode='bilinear')`, align_corners false or true.
    case resizeBilinear
    /// [(N,C_i,H,W)] → (N,ΣC_i,H,W).
    case concatChannels
    /// x (N,C,H,W) → (N,c1-c0,H,W), channels c0..<c1 (`torch.tensor_split` chunks).
    case sliceChannels
    /// a (N,C,H,W) + b (N,C,H,W) → (N,C,H,W), optionally followed by ReLU.
    case add
    /// x (N,C,H,W) · gate (N,C,1,1) → (N,C,H,W) (squeeze-excitation and EncNet channel gating).
    case mulChannels
    /// Elementwise 1 / (1 + e^-x).
    case sigmoid
    /// Elementwise max(x, 0).
    case relu
    /// x (N,C,H,W) → (N,C,H,W), softmax over C (max subtracted first).
    case softmaxChannels
    /// x (N,C,H,W) → labels (N,H,W), the first index of the maximum over C.
    case argmaxChannels
    /// EncNet's Encoding layer + BatchNorm over the codes + ReLU + mean over the codes:
    /// x (N,C,H,W), codewords (K,C), scale (K) → (N,C,1,1).
    case encoding
    /// x (N,C,H,W) → (N,C,H,W) with the W axis reversed.
    case flipHorizontal
}

/// The logical size of an activation: batch, channels, height, width.
public struct Shape4: Hashable, Sendable, CustomStringConvertible {
    public var n: Int
    public var c: Int
    public var h: Int
    public var w: Int

    public init(n: Int, c: Int, h: Int, w: Int) {
        self.n = n
        self.c = c
        self.h = h
        self.w = w
    }

    /// The shape of an NCHW tensor; nil unless it has exactly four dimensions.
    public init?(_ shape: [Int]) {
        guard shape.count == 4 else { return nil }
        self.init(n: shape[0], c: shape[1], h: shape[2], w: shape[3])
    }

    /// `[n, c, h, w]`.
    public var dims: [Int] { [n, c, h, w] }
    /// Spatial size.
    public var size: Size2 { Size2(height: h, width: w) }
    /// Number of elements.
    public var count: Int { n * c * h * w }
    public var description: String { "[\(n), \(c), \(h), \(w)]" }
}

/// A spatial size, height first (as PyTorch's `size=(h, w)`).
public struct Size2: Hashable, Sendable, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    public var description: String { "\(height)×\(width)" }
}

/// A convolution ready to run: weights with BatchNorm already folded in, geometry and post-ops.
///
/// Kernels may be rectangular; stride, padding and dilation apply equally to both axes (all
/// mmseg and RegSeg convolutions are square in those).
public struct ConvSpec: Sendable {
    /// (OC, C/groups, KH, KW), PyTorch layout.
    public var weight: Tensor
    /// (OC) or nil for no bias.
    public var bias: [Float]?
    public var stride: Int
    public var padding: Int
    public var dilation: Int
    public var groups: Int
    /// Apply ReLU after the bias (and after the residual add, when one is given).
    public var relu: Bool

    public init(weight: Tensor, bias: [Float]?, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
                groups: Int = 1, relu: Bool) {
        precondition(weight.shape.count == 4, "conv weight must be (OC, C/groups, KH, KW), got \(weight.shape)")
        precondition(bias == nil || bias?.count == weight.shape[0], "conv bias must have OC entries")
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.relu = relu
    }

    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] * groups }
    public var kernelHeight: Int { weight.shape[2] }
    public var kernelWidth: Int { weight.shape[3] }

    /// Sizes and hyper-parameters without the weights.
    public var geometry: ConvGeometry {
        ConvGeometry(inChannels: inChannels, outChannels: outChannels, kernelHeight: kernelHeight,
                     kernelWidth: kernelWidth, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// Output spatial size for an input of `size` (see `ConvGeometry.outputSize(for:)`).
    public func outputSize(for size: Size2) -> Size2 { geometry.outputSize(for: size) }
}

/// Shape and hyper-parameters of one 2-D convolution (PyTorch `Conv2d` semantics; stride, padding
/// and dilation equal on both axes, as in every mmseg and RegSeg model).
public struct ConvGeometry: Hashable, Sendable, CustomStringConvertible {
    public var inChannels: Int
    public var outChannels: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var stride: Int
    public var padding: Int
    public var dilation: Int
    public var groups: Int

    public init(inChannels: Int, outChannels: Int, kernelHeight: Int, kernelWidth: Int, stride: Int = 1,
                padding: Int = 0, dilation: Int = 1, groups: Int = 1) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    /// `floor((H + 2p - d(k-1) - 1) / s) + 1` per axis, for an input of `size`; zero or negative
    /// when the input is smaller than the dilated window (see `outputShape(for:)`).
    public func outputSize(for size: Size2) -> Size2 {
        func axis(_ n: Int, _ k: Int) -> Int { (n + 2 * padding - dilation * (k - 1) - 1) / stride + 1 }
        return Size2(height: axis(size.height, kernelHeight), width: axis(size.width, kernelWidth))
    }

    /// `outputSize(for:)` as a tuple.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        let size = outputSize(for: Size2(height: height, width: width))
        return (size.height, size.width)
    }

    /// x (N,C,H,W) → (N,OC,OH,OW), what a backend's `conv2d` checks before it allocates anything.
    ///
    /// Throws `SegmentationError.unsupportedSize` when the input is smaller than the dilated
    /// window, so that a tile too small for the network fails with a message, not a trap.
    /// Channel counts are the model's business (checked against the checkpoint at load time).
    public func outputShape(for x: Shape4) throws -> Shape4 {
        let o = outputSize(for: x.size)
        guard o.height > 0 && o.width > 0 else {
            func least(_ k: Int) -> Int { max(1, dilation * (k - 1) + 1 - 2 * padding) }
            throw SegmentationError.unsupportedSize("\(self) needs an input of at least "
                + "\(least(kernelHeight))×\(least(kernelWidth)), got \(x.size) (hint: use larger tiles)")
        }
        return Shape4(n: x.n, c: outChannels, h: o.height, w: o.width)
    }

    /// Depthwise: one filter per channel (`groups == C_in == C_out`).
    public var isDepthwise: Bool { groups > 1 && groups == inChannels && groups == outChannels }

    /// Multiply-accumulates for one image of `height`×`width`.
    public func macs(height: Int, width: Int) -> Int {
        let out = outputSize(for: Size2(height: height, width: width))
        return out.height * out.width * outChannels * (inChannels / groups) * kernelHeight * kernelWidth
    }

    /// e.g. `conv 64→128 k3×3 s2 p1 d1 g1`.
    public var description: String {
        "conv \(inChannels)→\(outChannels) k\(kernelHeight)×\(kernelWidth) s\(stride) p\(padding) d\(dilation) "
            + "g\(groups)"
    }
}

/// EncNet's Encoding layer with its BatchNorm1d over the codes folded to a per-code affine map.
///
/// `e[n,c] = mean_k relu(bnScale[k] · E[n,k,c] + bnShift[k])`, where
/// `E[n,k,c] = Σ_i A[n,i,k] (x[n,i,c] - codewords[k,c])`,
/// `A[n,i,:] = softmax_k(scale[k] · ‖x[n,i,:] - codewords[k,:]‖²)` (direct (x-c)² form, as mmseg).
public struct EncodingSpec: Sendable {
    /// (K, C).
    public var codewords: Tensor
    /// (K).
    public var scale: [Float]
    /// (K): weight / sqrt(running_var + eps).
    public var bnScale: [Float]
    /// (K): bias - running_mean · bnScale.
    public var bnShift: [Float]

    public init(codewords: Tensor, scale: [Float], bnScale: [Float], bnShift: [Float]) {
        precondition(codewords.shape.count == 2, "codewords must be (K, C)")
        let k = codewords.shape[0]
        precondition(scale.count == k && bnScale.count == k && bnShift.count == k, "per-code vectors need K entries")
        self.codewords = codewords
        self.scale = scale
        self.bnScale = bnScale
        self.bnShift = bnShift
    }

    public var numCodes: Int { codewords.shape[0] }
    public var channels: Int { codewords.shape[1] }
}
