import Foundation

/// Two numbers `[low, high]` in a pipeline file (a value range or a pair of percentiles).
public struct ValueRange: Codable, Sendable, Equatable, CustomStringConvertible {
    public var low: Double
    public var high: Double

    public init(_ low: Double, _ high: Double) {
        self.low = low
        self.high = high
    }

    public init(from decoder: any Decoder) throws {
        var list = try decoder.unkeyedContainer()
        guard list.count == 2 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "expected two numbers [low, high]"))
        }
        low = try list.decode(Double.self)
        high = try list.decode(Double.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var list = encoder.unkeyedContainer()
        try list.encode(low)
        try list.encode(high)
    }

    public var description: String { "[\(low.shortText), \(high.shortText)]" }

    /// Whether both ends are finite and `low < high`.
    var isIncreasing: Bool { low.isFinite && high.isFinite && low < high }
}

/// How raster values become the model's value range (`input.scale` in a pipeline file).
///
/// YAML forms:
/// ```yaml
/// scale: none                                  # default: values used as read
/// scale: {from: [0, 10000], to: [0, 255]}      # linear map, clamped to `to`
/// scale: {percentile: [2, 98], to: [0, 255]}   # per band, bounds from the image's percentiles
/// ```
/// `to` defaults to `[0, 255]`. The map is applied before the model's `(x - mean) / std`.
public enum InputScale: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Values are used as they are read (8-bit imagery; today's behaviour).
    case none
    /// `from.low` maps to `to.low`, `from.high` to `to.high`, linearly; results are clamped to `to`.
    case linear(from: ValueRange, to: ValueRange)
    /// Like `linear`, with `from` per band: the `percentiles.low`-th and `.high`-th percentiles of that
    /// band's valid pixels, computed once per image (see `InputScaling.percentileBounds`).
    case percentile(ValueRange, to: ValueRange)

    /// The default target range: 8-bit values, what mmseg models are trained on.
    public static let defaultTarget = ValueRange(0, 255)

    private enum Key: String, CodingKey, CaseIterable {
        case from, to, percentile
    }

    /// Any key, to name unknown ones.
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        func corrupt(_ text: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: text))
        }
        let forms = "use none, {from: [min, max], to: [0, 255]} or {percentile: [2, 98], to: [0, 255]}"
        // A scalar is the word `none`; anything else must be a mapping.
        let word: String?
        do {
            word = try decoder.singleValueContainer().decode(String.self)
        } catch DecodingError.typeMismatch {
            word = nil
        }
        if let word {
            guard word == "none" else { throw corrupt("unknown scale '\(word)'; \(forms)") }
            self = .none
            return
        }
        let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
            .filter { Key(rawValue: $0) == nil }
        guard unknown.isEmpty else { throw corrupt("unknown key(s) \(unknown); \(forms)") }
        let keys = try decoder.container(keyedBy: Key.self)
        let to = try keys.decodeIfPresent(ValueRange.self, forKey: .to) ?? Self.defaultTarget
        switch (try keys.decodeIfPresent(ValueRange.self, forKey: .from),
                try keys.decodeIfPresent(ValueRange.self, forKey: .percentile)) {
        case (let from?, nil): self = .linear(from: from, to: to)
        case (nil, let percentiles?): self = .percentile(percentiles, to: to)
        default: throw corrupt("give exactly one of from or percentile; \(forms)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .none:
            var single = encoder.singleValueContainer()
            try single.encode("none")
        case .linear(let from, let to):
            var keys = encoder.container(keyedBy: Key.self)
            try keys.encode(from, forKey: .from)
            try keys.encode(to, forKey: .to)
        case .percentile(let percentiles, let to):
            var keys = encoder.container(keyedBy: Key.self)
            try keys.encode(percentiles, forKey: .percentile)
            try keys.encode(to, forKey: .to)
        }
    }

    /// What is wrong with the values, or nil: ranges must be finite and increasing, percentiles
    /// within 0...100.
    public var problem: String? {
        switch self {
        case .none:
            return nil
        case .linear(let from, let to):
            if !from.isIncreasing { return "input scale from \(from) needs min < max" }
            if !to.isIncreasing { return "input scale to \(to) needs min < max" }
        case .percentile(let p, let to):
            if !p.isIncreasing || p.low < 0 || p.high > 100 {
                return "input scale percentile \(p) needs 0 ≤ low < high ≤ 100"
            }
            if !to.isIncreasing { return "input scale to \(to) needs min < max" }
        }
        return nil
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .linear(let from, let to): "{from: \(from), to: \(to)}"
        case .percentile(let p, let to): "{percentile: \(p), to: \(to)}"
        }
    }
}

extension Double {
    /// `2` rather than `2.0`, for messages.
    var shortText: String { self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : "\(self)" }
}
