/// Channel order of an interleaved 8-bit colour image.
public enum ChannelOrder: String, Sendable, Codable {
    /// OpenCV's order; mmseg loads images this way.
    case bgr
    /// GDAL / PIL order.
    case rgb
}

/// Turns an 8-bit H×W×3 image into the network's 1×3×H×W float input, as mmseg's
/// `SegDataPreProcessor` (or torchvision's `ToTensor` + `Normalize` for RegSeg) does:
/// reorder channels to `networkOrder`, then `(x - mean) / std` per channel in float32
/// (`x` is the 0...255 value, or value / 255 when `divideBy255`).
public struct Preprocessing: Sendable, Equatable {
    /// Channel order the network was trained on (RGB when mmseg's `bgr_to_rgb` is set).
    public var networkOrder: ChannelOrder
    /// Per channel, in `networkOrder`.
    public var mean: [Float]
    public var std: [Float]
    public var divideBy255: Bool

    public init(networkOrder: ChannelOrder, mean: [Float], std: [Float], divideBy255: Bool) {
        self.networkOrder = networkOrder
        self.mean = mean
        self.std = std
        self.divideBy255 = divideBy255
    }

    /// mmseg's ImageNet statistics on 0...255 values, BGR images swapped to RGB.
    public static let mmseg = Preprocessing(networkOrder: .rgb, mean: [123.675, 116.28, 103.53],
                                            std: [58.395, 57.12, 57.375], divideBy255: false)
    /// torchvision `ToTensor` + ImageNet `Normalize` on RGB (RegSeg's `data.py`).
    public static let imagenetUnit = Preprocessing(networkOrder: .rgb, mean: [0.485, 0.456, 0.406],
                                                   std: [0.229, 0.224, 0.225], divideBy255: true)

    /// From mmseg's `data_preprocessor` (`mean`, `std`, `bgr_to_rgb`; no mean/std means none).
    public init(_ cfg: DataPreprocessorConfig) throws {
        let mean = (cfg.mean ?? [0, 0, 0]).map(Float.init)
        let std = (cfg.std ?? [1, 1, 1]).map(Float.init)
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 != 0 }) else {
            throw ModelConfigError("data_preprocessor mean \(mean) / std \(std) need three values, std non-zero")
        }
        let swap = (cfg.bgrToRGB ?? false) || (cfg.rgbToBGR ?? false)
        self.init(networkOrder: swap ? .rgb : .bgr, mean: mean, std: std, divideBy255: cfg.divideBy255 ?? false)
    }

    /// `pixels` is H×W×3 interleaved, row-major, in `order`; returns (1, 3, H, W).
    public func callAsFunction(_ pixels: [UInt8], height: Int, width: Int, order: ChannelOrder) throws -> Tensor {
        let (plane, overflow) = height.multipliedReportingOverflow(by: width)
        guard height > 0, width > 0, !overflow, pixels.count / 3 == plane, pixels.count % 3 == 0 else {
            throw SegmentationError.invalidInput("image of \(pixels.count) bytes is not \(height)×\(width)×3")
        }
        var out = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            let source = order == networkOrder ? c : 2 - c
            let m = mean[c], s = std[c]
            for i in 0..<plane {
                var v = Float(pixels[i * 3 + source])
                if divideBy255 { v /= 255 }
                out[c * plane + i] = (v - m) / s
            }
        }
        return Tensor(shape: [1, 3, height, width], data: out)
    }
}

/// Why a segmentation model could not run on an input.
public enum SegmentationError: Error, CustomStringConvertible, Sendable {
    /// The input is not an image or tensor of the shape the model takes.
    case invalidInput(String)
    /// A layer cannot run at this size: the input is smaller than its window, or larger than a
    /// kernel's index range. The text says which layer and what to change.
    case unsupportedSize(String)
    /// The network failed on an input of shape `input`; `reason` is the layer's or backend's error
    /// (e.g. a `DNNLError` when oneDNN cannot build a primitive for this size).
    case inferenceFailed(input: Shape4, reason: any Error)

    public var description: String {
        switch self {
        case .invalidInput(let what): return "segmentation input: \(what) (pass an N×3×H×W tensor or H×W×3 image)"
        case .unsupportedSize(let what): return "unsupported size: \(what)"
        case .inferenceFailed(let input, let reason): return "segmentation of a \(input) input failed: \(reason)"
        }
    }
}
