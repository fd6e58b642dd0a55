import Foundation

/// A segmentation model described with mmsegmentation's own config field names.
///
/// It mirrors mmseg's `model` dict (`backbone`, `neck`, `decode_head`, `data_preprocessor`, ...)
/// as written in a config or in our fixtures' `oracle.json`; training-only fields (`norm_cfg`,
/// `loss_decode`, `sampler`, `dropout_ratio`, ...) and unknown fields are ignored. Every field is
/// optional: a missing one takes mmseg's default (documented on the property), and widths the
/// description leaves out are read from the checkpoint's shapes when the model is built.
///
/// RegSeg (not an mmseg model) is selected with `type: "RegSeg"`, or by a `model` name starting
/// with `regseg` (as in the RegSeg fixture); its body dilations come from `dilations`.
public struct ModelConfig: Codable, Sendable, Equatable {
    /// `EncoderDecoder` (default) or `RegSeg`.
    public var type: String?
    /// Free-form model name (e.g. `dlv3p_r18_d8`, `regseg_exp48_decoder26`).
    public var model: String?
    public var backbone: BackboneConfig?
    public var neck: NeckConfig?
    public var decodeHead: DecodeHeadConfig?
    /// Output classes; `decode_head.num_classes` wins; read from the checkpoint when both are absent.
    public var numClasses: Int?
    /// Resize mode of the final logits; `decode_head.align_corners` wins; default false.
    public var alignCorners: Bool?
    public var dataPreprocessor: DataPreprocessorConfig?
    /// RegSeg only: dilations of `body.stage16` blocks 1... (default exp48: [1], [1,2], [1,4]×4, [1,14]×7).
    public var dilations: [[Int]]?

    enum CodingKeys: String, CodingKey {
        case type, model, backbone, neck, dilations
        case decodeHead = "decode_head"
        case numClasses = "num_classes"
        case alignCorners = "align_corners"
        case dataPreprocessor = "data_preprocessor"
    }

    public init(type: String? = nil, model: String? = nil, backbone: BackboneConfig? = nil,
                neck: NeckConfig? = nil, decodeHead: DecodeHeadConfig? = nil, numClasses: Int? = nil,
                alignCorners: Bool? = nil, dataPreprocessor: DataPreprocessorConfig? = nil,
                dilations: [[Int]]? = nil) {
        self.type = type
        self.model = model
        self.backbone = backbone
        self.neck = neck
        self.decodeHead = decodeHead
        self.numClasses = numClasses
        self.alignCorners = alignCorners
        self.dataPreprocessor = dataPreprocessor
        self.dilations = dilations
    }

    /// Decodes a JSON model description (an mmseg model dict, or a fixture's `oracle.json`).
    public static func decode(json: Data, source: String = "<json>") throws -> ModelConfig {
        do {
            return try JSONDecoder().decode(ModelConfig.self, from: json)
        } catch {
            throw ModelConfigError("\(source): cannot decode the model description (\(error))",
                                   hint: "expected mmseg field names: backbone, decode_head, num_classes, ...")
        }
    }

    /// True for RegSeg descriptions.
    public var isRegSeg: Bool {
        if let type { return type.lowercased() == "regseg" }
        return backbone == nil && (model?.lowercased().hasPrefix("regseg") ?? false)
    }

    /// The final resize's align_corners (`decode_head.align_corners`, else `align_corners`, else false).
    public var resolvedAlignCorners: Bool { decodeHead?.alignCorners ?? alignCorners ?? false }
}

/// mmseg `ResNet` / `ResNetV1c` / `ResNetV1d` settings (`mmseg/models/backbones/resnet.py`).
public struct BackboneConfig: Codable, Sendable, Equatable {
    /// `ResNet` (V1b, 7×7 stem), `ResNetV1c` (deep stem) or `ResNetV1d` (deep stem + avg_down).
    public var type: String
    /// 18, 34, 50, 101 or 152.
    public var depth: Int
    /// Default 4.
    public var numStages: Int?
    /// Default (1, 2, 2, 2).
    public var strides: [Int]?
    /// Default (1, 1, 1, 1).
    public var dilations: [Int]?
    /// Default (0, 1, 2, 3).
    public var outIndices: [Int]?
    /// Default false (mmseg's ResNet default; every seed config sets true).
    public var contractDilation: Bool?
    /// Per-block dilations of the last stage, used verbatim; default none.
    public var multiGrid: [Int]?
    /// Default 64; read from the checkpoint when absent.
    public var stemChannels: Int?
    /// Default 64; read from the checkpoint when absent.
    public var baseChannels: Int?
    /// Default 3.
    public var inChannels: Int?
    /// `pytorch` (default: stride on the 3×3 conv) or `caffe` (stride on the first 1×1).
    public var style: String?
    /// Overrides the type's deep stem (V1c/V1d true, ResNet false).
    public var deepStem: Bool?
    /// Overrides the type's avg_down (V1d true).
    public var avgDown: Bool?

    enum CodingKeys: String, CodingKey {
        case type, depth, strides, dilations, style
        case numStages = "num_stages"
        case outIndices = "out_indices"
        case contractDilation = "contract_dilation"
        case multiGrid = "multi_grid"
        case stemChannels = "stem_channels"
        case baseChannels = "base_channels"
        case inChannels = "in_channels"
        case deepStem = "deep_stem"
        case avgDown = "avg_down"
    }

    public init(type: String, depth: Int, numStages: Int? = nil, strides: [Int]? = nil, dilations: [Int]? = nil,
                outIndices: [Int]? = nil, contractDilation: Bool? = nil, multiGrid: [Int]? = nil,
                stemChannels: Int? = nil, baseChannels: Int? = nil, inChannels: Int? = nil,
                style: String? = nil, deepStem: Bool? = nil, avgDown: Bool? = nil) {
        self.type = type
        self.depth = depth
        self.numStages = numStages
        self.strides = strides
        self.dilations = dilations
        self.outIndices = outIndices
        self.contractDilation = contractDilation
        self.multiGrid = multiGrid
        self.stemChannels = stemChannels
        self.baseChannels = baseChannels
        self.inChannels = inChannels
        self.style = style
        self.deepStem = deepStem
        self.avgDown = avgDown
    }
}

/// mmseg `JPU` settings (`mmseg/models/necks/jpu.py`).
public struct NeckConfig: Codable, Sendable, Equatable {
    /// `JPU`.
    public var type: String
    /// Channels of the backbone outputs the neck reads; default (512, 1024, 2048).
    public var inChannels: [Int]?
    /// Default 512.
    public var midChannels: Int?
    /// Default 0.
    public var startLevel: Int?
    /// Default -1 (through the last input).
    public var endLevel: Int?
    /// Default (1, 2, 4, 8).
    public var dilations: [Int]?
    /// Default false.
    public var alignCorners: Bool?

    enum CodingKeys: String, CodingKey {
        case type, dilations
        case inChannels = "in_channels"
        case midChannels = "mid_channels"
        case startLevel = "start_level"
        case endLevel = "end_level"
        case alignCorners = "align_corners"
    }

    public init(type: String, inChannels: [Int]? = nil, midChannels: Int? = nil, startLevel: Int? = nil,
                endLevel: Int? = nil, dilations: [Int]? = nil, alignCorners: Bool? = nil) {
        self.type = type
        self.inChannels = inChannels
        self.midChannels = midChannels
        self.startLevel = startLevel
        self.endLevel = endLevel
        self.dilations = dilations
        self.alignCorners = alignCorners
    }
}

/// Decode-head settings shared by mmseg's `FCNHead`, `ASPPHead`, `DepthwiseSeparableASPPHead`,
/// `PSPHead` and `EncHead` (each reads the fields it knows).
public struct DecodeHeadConfig: Codable, Sendable, Equatable {
    public var type: String
    /// One width, or one per selected input (`multiple_select`, `resize_concat`); checked against
    /// the features the head receives.
    public var inChannels: IntOrList?
    /// Which backbone/neck output(s) the head reads; default -1 (the last).
    public var inIndex: IntOrList?
    /// `multiple_select` or `resize_concat`; default none (a single input). EncHead forces
    /// `multiple_select`.
    public var inputTransform: String?
    /// Head width; read from `conv_seg` when absent.
    public var channels: Int?
    public var numClasses: Int?
    /// Default false.
    public var alignCorners: Bool?
    /// ASPP dilations, default (1, 6, 12, 18).
    public var dilations: [Int]?
    /// DeepLabV3+ low-level branch input width (backbone output 0), default from the checkpoint.
    public var c1InChannels: Int?
    /// DeepLabV3+ low-level branch width, default from the checkpoint.
    public var c1Channels: Int?
    /// FCNHead: default 2.
    public var numConvs: Int?
    /// FCNHead: default true.
    public var concatInput: Bool?
    /// FCNHead: default 3.
    public var kernelSize: Int?
    /// FCNHead: default 1.
    public var dilation: Int?
    /// PSPHead: default (1, 2, 3, 6).
    public var poolScales: [Int]?
    /// EncHead: default 32 (checked against the checkpoint).
    public var numCodes: Int?
    /// EncHead: default false.
    public var addLateral: Bool?

    enum CodingKeys: String, CodingKey {
        case type, channels, dilations, dilation
        case inChannels = "in_channels"
        case inIndex = "in_index"
        case inputTransform = "input_transform"
        case numClasses = "num_classes"
        case alignCorners = "align_corners"
        case c1InChannels = "c1_in_channels"
        case c1Channels = "c1_channels"
        case numConvs = "num_convs"
        case concatInput = "concat_input"
        case kernelSize = "kernel_size"
        case poolScales = "pool_scales"
        case numCodes = "num_codes"
        case addLateral = "add_lateral"
    }

    public init(type: String, inChannels: IntOrList? = nil, inIndex: IntOrList? = nil, channels: Int? = nil,
                numClasses: Int? = nil) {
        self.type = type
        self.inChannels = inChannels
        self.inIndex = inIndex
        self.channels = channels
        self.numClasses = numClasses
    }
}

/// mmseg `SegDataPreProcessor`: `(x - mean) / std` per channel on 0..255 values, after an optional
/// BGR→RGB swap (images are loaded BGR, as cv2 does).
public struct DataPreprocessorConfig: Codable, Sendable, Equatable {
    /// Default none (no normalisation).
    public var mean: [Double]?
    public var std: [Double]?
    /// Default false.
    public var bgrToRGB: Bool?
    /// Default false; same swap as `bgr_to_rgb`.
    public var rgbToBGR: Bool?
    /// Not mmseg: divide by 255 before `(x - mean) / std` (torchvision `ToTensor`, RegSeg).
    public var divideBy255: Bool?

    enum CodingKeys: String, CodingKey {
        case mean, std
        case bgrToRGB = "bgr_to_rgb"
        case rgbToBGR = "rgb_to_bgr"
        case divideBy255 = "divide_by_255"
    }

    public init(mean: [Double]?, std: [Double]?, bgrToRGB: Bool?, divideBy255: Bool? = nil) {
        self.mean = mean
        self.std = std
        self.bgrToRGB = bgrToRGB
        self.divideBy255 = divideBy255
    }
}

/// A config value that is either one integer or a list (`in_index=3` or `in_index=(0, 1, 2)`).
public enum IntOrList: Codable, Sendable, Equatable {
    case one(Int)
    case many([Int])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .one(value)
        } else {
            self = .many(try container.decode([Int].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .one(let value): try container.encode(value)
        case .many(let values): try container.encode(values)
        }
    }

    /// The values as a list.
    public var values: [Int] {
        switch self {
        case .one(let value): return [value]
        case .many(let values): return values
        }
    }
}

/// A model description that cannot be built. Description: `"model config: <what> (<hint>)"`.
public struct ModelConfigError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public let hint: String

    public init(_ reason: String, hint: String = "check the model description against the mmseg config") {
        self.reason = reason
        self.hint = hint
    }

    public var description: String { "model config: \(reason) (\(hint))" }

    /// Largest width, kernel, stride, dilation, padding or pool size a description may give:
    /// far above any real model, and small enough that shape arithmetic cannot overflow.
    static let maxSize = 1 << 20

    /// `value` when it lies in `1...maxSize`; otherwise throws, naming `field`.
    static func checked(_ value: Int, _ field: String) throws -> Int {
        guard (1...maxSize).contains(value) else {
            throw ModelConfigError("\(field) \(value) is outside 1...\(maxSize)")
        }
        return value
    }
}
