/// How overlapping window predictions are combined: accumulate weight × prediction and weight,
/// divide at the end (MONAI's `sliding_window_inference`).
public enum Blend: String, Sendable, Codable, CaseIterable {
    /// Plain average, mmsegmentation's `slide` inference (for parity with published results).
    case mean
    /// 2-D Hann (cosine) weights, highest at the window centre, so window borders fade out and no
    /// seam is left. Flattened to 1 on the sides that touch the image border, so border pixels —
    /// seen by one window only — keep full weight.
    case hann

    /// Per-pixel weights of `tile`, (height, width) row-major.
    public func weights(for tile: Tile, imageWidth: Int, imageHeight: Int) -> [Float] {
        switch self {
        case .mean:
            return [Float](repeating: 1, count: tile.width * tile.height)
        case .hann:
            let wx = Self.hann(tile.width, flatStart: tile.x == 0, flatEnd: tile.x + tile.width == imageWidth)
            let wy = Self.hann(tile.height, flatStart: tile.y == 0, flatEnd: tile.y + tile.height == imageHeight)
            var out = [Float](repeating: 0, count: tile.width * tile.height)
            for r in 0..<tile.height {
                for c in 0..<tile.width { out[r * tile.width + c] = wy[r] * wx[c] }
            }
            return out
        }
    }

    /// A 1-D Hann window sampled at pixel centres, `0.5 - 0.5·cos(2π(i + 0.5)/n)`, strictly positive;
    /// the half touching the image border is set to 1.
    static func hann(_ n: Int, flatStart: Bool, flatEnd: Bool) -> [Float] {
        (0..<n).map { i in
            if flatStart && i < n / 2 { return 1 }
            if flatEnd && i >= n / 2 { return 1 }
            let t = (Double(i) + 0.5) / Double(n)
            return Float(0.5 - 0.5 * cos(2 * Double.pi * t))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
