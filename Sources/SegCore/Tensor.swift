/// A dense float32 tensor held in host memory, row-major (C order).
///
/// Activations are NCHW unless a backend says otherwise; conv weights are `[C_out, C_in/groups, kH, kW]`
/// as in PyTorch checkpoints.
public struct Tensor: Sendable, Equatable {
    /// Sizes of each dimension, outermost first.
    public var shape: [Int]
    /// `shape.reduce(1, *)` values in row-major order.
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "tensor data count \(data.count) does not match shape \(shape)")
        self.shape = shape
        self.data = data
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// Number of elements.
    public var count: Int { data.count }
}

/// The arithmetic of the convolutions: `f32` (the default, parity with mmseg to 1e-4), or `bf16`
/// (inputs and weights rounded to bfloat16, products accumulated in f32: about twice the dot-product
/// rate on CPUs with AVX512-BF16; Winograd convolutions, softmax, resizes and blending stay f32).
public enum Precision: String, Sendable, Codable, CaseIterable {
    case f32
    case bf16
}
