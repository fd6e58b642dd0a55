import Foundation
import GeoIO

/// The value map from raster values to the model's value range, resolved for one image: per channel
/// `y = min(max(x · gain + offset, lower), upper)`, then invalid pixels (nodata, alpha, mask,
/// non-finite) set to `fill` when one is given. It runs on every window in the reader thread, before
/// the model's `(x - mean) / std`; the same values serve every window of an image, so windows agree
/// at their seams.
///
/// The identity (`input.scale: none`, no `nodata_fill`) touches no pixel: 8-bit RGB windows take
/// exactly the path they took before scaling existed.
public struct InputScaling: Sendable, Equatable, CustomStringConvertible {
    /// One channel's linear map.
    public struct Map: Sendable, Equatable {
        public var gain: Float
        public var offset: Float

        public init(gain: Float, offset: Float) {
            self.gain = gain
            self.offset = offset
        }
    }

    /// Per channel, in band order; nil when values are used as read.
    public let maps: [Map]?
    /// The clamp range of mapped values (`scale.to`); unused without `maps`.
    public let lower: Float
    public let upper: Float
    /// What invalid pixels become (`input.nodata_fill`); nil keeps what the reader gives them:
    /// nodata and masked pixels their stored values, non-finite ones 0 (before scaling).
    public let fill: Float?
    /// The `from` bounds per channel (the configured ones, or the percentiles computed); nil for `none`.
    public let bounds: [ValueRange]?

    /// Long side of the sample `percentile` bounds are computed from (see `percentileBounds`).
    public static let percentileSampleSide = 1024

    /// Values as read, invalid pixels left as the reader fills them.
    public static let identity = InputScaling(maps: nil, lower: 0, upper: 0, fill: nil, bounds: nil)

    init(maps: [Map]?, lower: Float, upper: Float, fill: Float?, bounds: [ValueRange]?) {
        self.maps = maps
        self.lower = lower
        self.upper = upper
        self.fill = fill
        self.bounds = bounds
    }

    /// `from` bounds per channel mapped linearly onto `to`; equal bounds (a constant band) map to `to.low`.
    public init(bounds: [ValueRange], to: ValueRange, fill: Double?) {
        maps = bounds.map { from in
            let gain = from.high > from.low ? (to.high - to.low) / (from.high - from.low) : 0
            return Map(gain: Float(gain), offset: Float(to.low - from.low * gain))
        }
        lower = Float(to.low)
        upper = Float(to.high)
        self.fill = fill.map(Float.init)
        self.bounds = bounds
    }

    /// Whether windows pass through untouched.
    public var isIdentity: Bool { maps == nil && fill == nil }

    /// The scaling of `scale` for `bands` of `dataset`: percentile bounds are computed here, once.
    /// Also returns notices for the user (unscaled non-8-bit input; the percentile bounds found).
    public static func resolve(_ scale: InputScale, fill: Double?, dataset: Dataset, bands: [Int]) throws
        -> (scaling: InputScaling, notices: [String])
    {
        let name = (dataset.path as NSString).lastPathComponent
        switch scale {
        case .none:
            let types = Set(bands.map { dataset.band($0).dataType }).subtracting([.byte])
            let notices = types.isEmpty ? [] : [
                "input \(name) is \(types.map(\.rawValue).sorted().joined(separator: "/")) but the pipeline has no "
                + "input.scale; values are used unscaled (add input.scale, e.g. {percentile: [2, 98], to: [0, 255]} "
                + "or {from: [min, max], to: [0, 255]})",
            ]
            let scaling = fill.map { InputScaling(maps: nil, lower: 0, upper: 0, fill: Float($0), bounds: nil) }
            return (scaling ?? .identity, notices)
        case .linear(let from, let to):
            return (InputScaling(bounds: Array(repeating: from, count: bands.count), to: to, fill: fill), [])
        case .percentile(let percentiles, let to):
            let (bounds, sample) = try percentileBounds(percentiles, dataset: dataset, bands: bands)
            let found = bounds.map(\.description).joined(separator: ", ")
            return (InputScaling(bounds: bounds, to: to, fill: fill),
                    ["input \(name): percentile \(percentiles) bounds per band \(found), from a nearest-neighbour "
                     + "sample of \(sample.width)×\(sample.height) pixels (overviews when present)"])
        }
    }

    /// Per band, the `percentiles.low`-th and `.high`-th percentiles of its valid pixels, as numpy's
    /// default (`linear`) `percentile` computes them over a sample: the whole raster read through
    /// GDAL decimated by an integer factor to at most `percentileSampleSide` pixels on its long side
    /// (nearest neighbour; GDAL reads from overviews when the file has them). Memory stays at one
    /// sample, whatever the image size. Throws when a band has no valid pixel in the sample.
    public static func percentileBounds(_ percentiles: ValueRange, dataset: Dataset, bands: [Int]) throws
        -> (bounds: [ValueRange], sample: (width: Int, height: Int))
    {
        let factor = (max(dataset.width, dataset.height) + percentileSampleSide - 1) / percentileSampleSide
        let (w, h) = (max(1, dataset.width / factor), max(1, dataset.height / factor))
        let n = w * h
        var values = [Float](repeating: 0, count: n * bands.count)
        var valid = [UInt8](repeating: 0, count: n)
        try values.withUnsafeMutableBufferPointer { v in
            try valid.withUnsafeMutableBufferPointer { m in
                try dataset.readDecimated(bands: bands, width: w, height: h, into: v, validity: m)
            }
        }
        let bounds = try bands.indices.map { c -> ValueRange in
            var sample: [Float] = []
            sample.reserveCapacity(n)
            for i in 0..<n where valid[i] != 0 { sample.append(values[c * n + i]) }
            guard !sample.isEmpty else {
                throw PipelineError(path: dataset.path, reason: "band \(bands[c]) has no valid pixel to compute "
                                    + "input.scale percentiles from", hint: "use input.scale {from: .., to: ..}")
            }
            sample.sort()
            return ValueRange(numpyPercentile(sample, percentiles.low), numpyPercentile(sample, percentiles.high))
        }
        return (bounds, (w, h))
    }

    /// numpy's `percentile(a, p)` (method `linear`) of sorted values.
    static func numpyPercentile(_ sorted: [Float], _ p: Double) -> Double {
        let position = p / 100 * Double(sorted.count - 1)
        let below = Int(position.rounded(.down)), above = min(below + 1, sorted.count - 1)
        let fraction = position - Double(below)
        return Double(sorted[below]) + fraction * (Double(sorted[above]) - Double(sorted[below]))
    }

    /// Maps a band-sequential (channels, planeCount) window in place, then sets its invalid pixels
    /// (`validity` 0) to `fill`. Two tight loops: one multiply-add-clamp pass per channel, one pass
    /// over the validity when a fill is set; nothing is allocated.
    public func apply(_ pixels: UnsafeMutableBufferPointer<Float>, validity: UnsafeBufferPointer<UInt8>, channels: Int,
               planeCount n: Int) {
        if let maps {
            let (lo, hi) = (lower, upper)
            for (c, map) in maps.enumerated() {
                let plane = UnsafeMutableBufferPointer(rebasing: pixels[(c * n)..<((c + 1) * n)])
                let (gain, offset) = (map.gain, map.offset)
                for i in plane.indices { plane[i] = min(max(plane[i] * gain + offset, lo), hi) }
            }
        }
        if let fill {
            for i in 0..<n where validity[i] == 0 {
                for c in 0..<channels { pixels[c * n + i] = fill }
            }
        }
    }

    /// Every value that changes the network input, for resume keys.
    public var description: String {
        let mapped = maps.map { "maps \($0.map { "\($0.gain)x+\($0.offset)" }) clamp \(lower)...\(upper)" } ?? "as read"
        return mapped + (fill.map { " fill \($0)" } ?? "")
    }
}
