import Limits

extension SegmentationModel {
    /// Activation bytes per input pixel of one forward pass, beyond the logits: an upper bound
    /// measured on the seed models (peak RSS at 512² minus at 256², per added pixel, oneDNN backend):
    /// DeepLabV3+ R-18-D8 0.9 KiB, FCN R-50-D8 2.7 KiB, FastFCN R-50-D32 JPU+PSP 3.2 KiB.
    public static let activationBytesPerPixel = 4096

    /// Bytes one forward pass over an H×W input needs at its peak, weights excepted: the layers'
    /// activations (`activationBytesPerPixel`) plus the logits at feature size, resized and
    /// downloaded (3 float maps of `classes` channels). Saturates instead of overflowing.
    public static func estimatedInferenceBytes(height: Int, width: Int, classes: Int) -> Int {
        let perPixel = MemoryBudget.sum(activationBytesPerPixel, MemoryBudget.product(3, 4, classes))
        return MemoryBudget.product(height, width, perPixel)
    }

    /// The largest square tile side whose inference fits `budget`.
    public static func largestTile(classes: Int, budget: MemoryBudget) -> Int {
        let perPixel = estimatedInferenceBytes(height: 1, width: 1, classes: classes)
        return Int(Double(budget.bytes / max(perPixel, 1)).squareRoot())
    }

    /// Throws `MemoryBudgetError` (naming `path`, e.g. `--crop`) when an H×W input would not fit.
    public static func checkInferenceMemory(height: Int, width: Int, classes: Int, path: String,
                                            budget: MemoryBudget = .current) throws {
        let side = largestTile(classes: classes, budget: budget)
        try budget.check(estimatedInferenceBytes(height: height, width: width, classes: classes),
                         for: "a \(width) × \(height) tile through the model (\(classes) classes)", path: path,
                         hint: "use tiles of at most \(side) × \(side) pixels")
    }
}
