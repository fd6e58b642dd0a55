/// Channel order of an interleaved 8-bit colour image.
public enum ChannelOrder: String, Sendable, Codable {
    /// OpenCV's order; mmseg loads images this way.
    case bgr
    /// GDAL / PIL order.
    case rgb
}

/// Turns an 8-bit H×W×C image into the network's 1×C×H×W float input, as mmseg's
/// `SegDataPreProcessor` (or torchvision's `ToTensor` + `Normalize` for RegSeg) does:
/// reorder channels to `networkOrder`, then `(x - mean) / std` per channel in float32
/// (`x` is the 0...255 value, or value / 255 when `divideBy255`).
///
/// C is the count of `mean` (the backbone's `in_channels`). As in mmseg, the channel swap
/// (`bgr_to_rgb` / `rgb_to_bgr`, `inputs[:, [2, 1, 0], ...]`) only happens for 3-channel inputs;
/// other channel counts keep their order.
public struct Preprocessing: Sendable, Equatable {
    /// Channel order the network was trained on (RGB when mmseg's `bgr_to_rgb` is set); only
    /// meaningful for 3 channels.
    public var networkOrder: ChannelOrder
    /// Per channel, in `networkOrder`; as many values as the network has input channels.
    public var mean: [Float]
    public var std: [Float]
    public var divideBy255: Bool

    public init(networkOrder: ChannelOrder, mean: [Float], std: [Float], divideBy255: Bool) {
        self.networkOrder = networkOrder
        self.mean = mean
        self.std = std
        self.divideBy255 = divideBy255
    }

    /// Input channels (the count of `mean`).
    public var channels: Int { mean.count }

    /// Whether an image in `order` has its channels reversed on the way in: only 3-channel ones.
    public func reverses(_ order: ChannelOrder) -> Bool { channels == 3 && order != networkOrder }

    /// mmseg's ImageNet statistics on 0...255 values, BGR images swapped to RGB.
    public static let mmseg = Preprocessing(networkOrder: .rgb, mean: [123.675, 116.28, 103.53],
                                            std: [58.395, 57.12, 57.375], divideBy255: false)
    /// torchvision `ToTensor` + ImageNet `Normalize` on RGB (RegSeg's `data.py`).
    public static let imagenetUnit = Preprocessing(networkOrder: .rgb, mean: [0.485, 0.456, 0.406],
                                                   std: [0.229, 0.224, 0.225], divideBy255: true)

    /// From mmseg's `data_preprocessor` (`mean`, `std`, `bgr_to_rgb`; no mean/std means none) for a
    /// network with `channels` input channels: mean and std must have that many values.
    public init(_ cfg: DataPreprocessorConfig, channels: Int = 3) throws {
        let mean = (cfg.mean ?? Array(repeating: 0, count: channels)).map(Float.init)
        let std = (cfg.std ?? Array(repeating: 1, count: channels)).map(Float.init)
        guard mean.count == channels, std.count == channels, std.allSatisfy({ $0 != 0 }) else {
            throw ModelConfigError("data_preprocessor mean \(mean) / std \(std) need \(channels) values (one per "
                                   + "input channel, backbone in_channels \(channels)), std non-zero")
        }
        let swap = (cfg.bgrToRGB ?? false) || (cfg.rgbToBGR ?? false)
        self.init(networkOrder: swap ? .rgb : .bgr, mean: mean, std: std, divideBy255: cfg.divideBy255 ?? false)
    }

    /// `pixels` is H×W×C interleaved, row-major, in `order` (for C = 3); returns (1, C, H, W).
    public func callAsFunction(_ pixels: [UInt8], height: Int, width: Int, order: ChannelOrder) throws -> Tensor {
        let c = channels
        let (plane, overflow) = height.multipliedReportingOverflow(by: width)
        guard height > 0, width > 0, !overflow, pixels.count / c == plane, pixels.count % c == 0 else {
            throw SegmentationError.invalidInput("image of \(pixels.count) bytes is not \(height)×\(width)×\(c)")
        }
        var out = [Float](repeating: 0, count: c * plane)
        let reverse = reverses(order)
        for k in 0..<c {
            let source = reverse ? c - 1 - k : k
            let m = mean[k], s = std[k]
            for i in 0..<plane {
                var v = Float(pixels[i * c + source])
                if divideBy255 { v /= 255 }
                out[k * plane + i] = (v - m) / s
            }
        }
        return Tensor(shape: [1, c, height, width], data: out)
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
        case .invalidInput(let what):
            return "segmentation input: \(what) (pass an N×C×H×W tensor or H×W×C image, C = the input channels)"
        case .unsupportedSize(let what): return "unsupported size: \(what)"
        case .inferenceFailed(let input, let reason): return "segmentation of a \(input) input failed: \(reason)"
        }
    }
}
