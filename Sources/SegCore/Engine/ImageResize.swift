/// OpenCV's `cv2.resize(..., INTER_LINEAR)` on 8-bit interleaved images, bit-exact, as mmseg's
/// test-time augmentation resizes the image for each scale (mmcv `imrescale`, `cv2.resize`).
///
/// Fixed-point model of opencv `modules/imgproc/src/resize.cpp` (see mmseg-reference §6.6):
/// horizontal weights `rint((1 - fx)·2048)`, `rint(fx·2048)` with the source x clamped at both
/// borders, vertical weights from an unclamped `fy`, and the rounding
/// `(((b0·(h0 >> 4)) >> 16) + ((b1·(h1 >> 4)) >> 16) + 2) >> 2`. An exact 2× downscale in both axes
/// takes OpenCV's INTER_AREA path, `(a + b + c + d + 2) >> 2`.
public enum ImageResize {
    /// Resizes an H×W×C interleaved uint8 image to `height` × `width`.
    public static func cv2Linear(_ src: [UInt8], height: Int, width: Int, channels: Int,
                                 toHeight dstH: Int, toWidth dstW: Int) -> [UInt8] {
        precondition(src.count == height * width * channels && dstH > 0 && dstW > 0)
        var out = [UInt8](repeating: 0, count: dstH * dstW * channels)
        if dstW * 2 == width && dstH * 2 == height {
            for y in 0..<dstH {
                for x in 0..<dstW {
                    for k in 0..<channels {
                        func s(_ yy: Int, _ xx: Int) -> Int { Int(src[(yy * width + xx) * channels + k]) }
                        let sum = s(2 * y, 2 * x) + s(2 * y, 2 * x + 1) + s(2 * y + 1, 2 * x) + s(2 * y + 1, 2 * x + 1)
                        out[(y * dstW + x) * channels + k] = UInt8((sum + 2) >> 2)
                    }
                }
            }
            return out
        }
        let scaleX = Double(width) / Double(dstW), scaleY = Double(height) / Double(dstH)
        // Horizontal taps: source column and the two fixed-point weights.
        var xs = [Int](repeating: 0, count: dstW), ax0 = [Int32](repeating: 0, count: dstW)
        var ax1 = [Int32](repeating: 0, count: dstW)
        for dx in 0..<dstW {
            var fx = Float((Double(dx) + 0.5) * scaleX - 0.5)
            var sx = Int(fx.rounded(.down))
            fx -= Float(sx)
            if sx < 0 {
                fx = 0
                sx = 0
            }
            if sx >= width - 1 {
                fx = 0
                sx = width - 1
            }
            xs[dx] = sx
            ax0[dx] = Int32(((1 - fx) * 2048).rounded(.toNearestOrEven))
            ax1[dx] = Int32((fx * 2048).rounded(.toNearestOrEven))
        }
        var row0 = [Int32](repeating: 0, count: dstW * channels), row1 = row0
        func horizontal(_ sy: Int, into row: inout [Int32]) {
            let base = sy * width * channels
            for dx in 0..<dstW {
                let sx = xs[dx], next = min(sx + 1, width - 1)
                for k in 0..<channels {
                    row[dx * channels + k] = Int32(src[base + sx * channels + k]) * ax0[dx]
                        + Int32(src[base + next * channels + k]) * ax1[dx]
                }
            }
        }
        for dy in 0..<dstH {
            var fy = Float((Double(dy) + 0.5) * scaleY - 0.5)
            let sy = Int(fy.rounded(.down))
            fy -= Float(sy)
            let b0 = Int32(((1 - fy) * 2048).rounded(.toNearestOrEven))
            let b1 = Int32((fy * 2048).rounded(.toNearestOrEven))
            horizontal(min(max(sy, 0), height - 1), into: &row0)
            horizontal(min(max(sy + 1, 0), height - 1), into: &row1)
            for i in 0..<(dstW * channels) {
                let v = (((b0 * (row0[i] >> 4)) >> 16) + ((b1 * (row1[i] >> 4)) >> 16) + 2) >> 2
                out[dy * dstW * channels + i] = UInt8(clamping: v)
            }
        }
        return out
    }

    /// mmcv's `imrescale` target size for `ratio` of an image (`_scale_size` then `rescale_size`
    /// with keep_ratio): (height, width).
    public static func mmcvRescaledSize(height: Int, width: Int, ratio: Double) -> (height: Int, width: Int) {
        let scaleW = Int(Double(width) * ratio + 0.5), scaleH = Int(Double(height) * ratio + 0.5)
        let long = Double(max(scaleW, scaleH)), short = Double(min(scaleW, scaleH))
        let factor = min(long / Double(max(height, width)), short / Double(min(height, width)))
        return (Int(Double(height) * factor + 0.5), Int(Double(width) * factor + 0.5))
    }
}
