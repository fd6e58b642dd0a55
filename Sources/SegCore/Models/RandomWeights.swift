/// Makes up plausible weights for a key and shape (see `SegmentationModel.randomWeights`).
///
/// By key suffix: BatchNorm `running_var` U(0.5, 1.5), `running_mean` and biases U(-0.1, 0.1),
/// 1-D `weight` (BN gamma) U(0.5, 1.5), Encoding `scale` U(-1, 0); tensors of rank ≥ 2 are uniform
/// with variance 1/fan_in (`fan_in` = product of all but the first dimension). SplitMix64 stream.
struct RandomWeights {
    private var generator: SplitMix64

    init(seed: UInt64) {
        generator = SplitMix64(seed: seed)
    }

    /// The next value in [0, 1), 24 bits.
    private mutating func unit() -> Float { Float(generator.next() >> 40) / Float(1 << 24) }

    private mutating func uniform(_ count: Int, _ low: Float, _ high: Float) -> [Float] {
        (0..<count).map { _ in low + (high - low) * unit() }
    }

    mutating func tensor(for key: String, shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        let values: [Float]
        if key.hasSuffix("running_var") || (shape.count == 1 && key.hasSuffix(".weight")) {
            values = uniform(count, 0.5, 1.5)
        } else if key.hasSuffix(".scale") && shape.count == 1 {
            values = uniform(count, -1, 0)
        } else if shape.count == 1 {
            values = uniform(count, -0.1, 0.1)
        } else {
            let fanIn = max(1, shape.dropFirst().reduce(1, *))
            let bound = (3 / Float(fanIn)).squareRoot()
            values = uniform(count, -bound, bound)
        }
        return Tensor(shape: shape, data: values)
    }
}

/// SplitMix64: a tiny, fast, reproducible 64-bit generator (random weights, benchmark inputs,
/// seeded test corruption). Not for anything that needs unpredictability.
public struct SplitMix64: Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
