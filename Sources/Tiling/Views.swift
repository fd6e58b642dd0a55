/// Test-time augmentation views that stream like plain slide inference.
public enum TTAMode: String, Sendable, Codable, CaseIterable {
    /// One view: the image as it is.
    case none
    /// mmseg's horizontal-flip TTA: slide inference on the image and on its mirror image (flipped
    /// back), merged as the mean of the two softmax maps.
    case flip
    /// mmseg's 12-view multi-scale + flip TTA (ratios 0.5…1.75, cv2-exact resize of the 8-bit image).
    /// Holds the whole image in memory, so it is limited to moderate image sizes.
    case msFlip = "ms-flip"
}

extension WindowGrid {
    /// The windows mmseg's slide inference visits on the horizontally flipped image, mapped back to
    /// the original image (x → W − x − width). Differs from `tiles(inRow:)` when the last window
    /// was shifted inward.
    public func mirroredTiles(inRow row: Int) -> [Tile] {
        tiles(inRow: row).map { t in
            var m = t
            m.x = imageWidth - t.x - t.width
            return m
        }
    }
}

/// Merges the blended logits of several views of the same rows into labels and confidence.
///
/// One view: the first class of highest logit (mmseg's `predict`, argmax of the logits) and its
/// softmax probability. Several views: the mean over views of softmax(logits) (mmseg's
/// `SegTTAModel.merge_preds`), then the first class of highest mean probability and that probability.
/// Pixels no window reached in some view, or marked invalid in the first view (`StitchedBand.isValid`),
/// get `invalidLabel` and confidence 0.
///
/// Vectorised over 8 pixels at a time (SIMD8) with a Cephes-style `exp` (relative error ~1e-7), since
/// this runs once per pixel of the whole image and class.
public func mergeViews(_ views: [StitchedBand], invalidLabel: UInt8 = 255) -> (labels: [UInt8], confidence: [Float]) {
    precondition(!views.isEmpty)
    let first = views[0]
    let (classes, width, rows) = (first.classes, first.width, first.rows.count)
    precondition(views.allSatisfy { $0.classes == classes && $0.width == width && $0.rows == first.rows })
    var labels = [UInt8](repeating: invalidLabel, count: rows * width)
    var confidence = [Float](repeating: 0, count: rows * width)
    // Per row: mean-probability accumulator (classes, width) for several views; coverage (width).
    var probability = [Float](repeating: 0, count: views.count > 1 ? classes * width : 0)
    var covered = [Bool](repeating: true, count: width)
    var exps = [SIMD8<Float>](repeating: .zero, count: classes)
    for k in 0..<rows {
        if let valid = first.validity {
            valid[k].withUnsafeBufferPointer { v in for x in 0..<width { covered[x] = v[x] != 0 } }
        } else {
            for x in 0..<width { covered[x] = true }
        }
        if views.count > 1 { for i in probability.indices { probability[i] = 0 } }
        for view in views {
            view.withRow(k) { sums, weights in
                for x in Swift.stride(from: 0, to: width, by: 8) {
                    let n = min(8, width - x)
                    let w = load8(weights, at: x, count: n, pad: 1)
                    for i in 0..<n where w[i] <= 0 { covered[x + i] = false }
                    var top = load8(sums, at: x, count: n, pad: 0) / w
                    var best = SIMD8<Int32>(repeating: 0)
                    for c in 1..<max(classes, 1) {
                        let l = load8(sums, at: c * width + x, count: n, pad: 0) / w
                        let greater = l .> top
                        top.replace(with: l, where: greater)
                        best.replace(with: SIMD8(repeating: Int32(c)), where: greater)
                    }
                    var total = SIMD8<Float>(repeating: 0)
                    for c in 0..<classes {
                        exps[c] = exp8(load8(sums, at: c * width + x, count: n, pad: 0) / w - top)
                        total += exps[c]
                    }
                    if views.count == 1 {
                        let p = 1 / total
                        for i in 0..<n where covered[x + i] {
                            labels[k * width + x + i] = UInt8(clamping: best[i])
                            confidence[k * width + x + i] = p[i]
                        }
                    } else {
                        for c in 0..<classes {
                            let p = exps[c] / total
                            for i in 0..<n { probability[c * width + x + i] += p[i] }
                        }
                    }
                }
            }
        }
        guard views.count > 1 else { continue }
        for x in 0..<width where covered[x] {
            var best = 0
            for c in 1..<max(classes, 1) where probability[c * width + x] > probability[best * width + x] { best = c }
            labels[k * width + x] = UInt8(clamping: best)
            confidence[k * width + x] = probability[best * width + x] / Float(views.count)
        }
    }
    return (labels, confidence)
}

/// Eight floats from `p[offset...]`, or the first `count` of them and `pad` in the other lanes.
@inline(__always)
func load8(_ p: UnsafeBufferPointer<Float>, at offset: Int, count: Int, pad: Float) -> SIMD8<Float> {
    if count == 8 { return UnsafeRawPointer(p.baseAddress! + offset).loadUnaligned(as: SIMD8<Float>.self) }
    var v = SIMD8<Float>(repeating: pad)
    for i in 0..<count { v[i] = p[offset + i] }
    return v
}

/// e^x for x ≤ 88, eight lanes at once: x = n·ln2 + r with |r| ≤ ln2/2, e^r by Cephes' expf polynomial,
/// 2^n from the exponent bits. Relative error about 1e-7; x below −87 gives ~1e-38 (not 0).
/// n is rounded with the 1.5·2²³ trick (adding it leaves n in the low mantissa bits), which keeps the
/// whole function in vector instructions: Swift's generic SIMD float→int conversion is scalar.
@inline(__always)
func exp8(_ value: SIMD8<Float>) -> SIMD8<Float> {
    let magic = SIMD8<Float>(repeating: 12_582_912)  // 1.5 · 2²³
    var x = value.clamped(lowerBound: SIMD8(repeating: -87), upperBound: SIMD8(repeating: 88))
    let shifted = x * 1.44269504088896341 + magic
    let n = shifted - magic  // round(x / ln2)
    x = x - n * 0.693359375 + n * 2.12194440e-4
    let z = x * x
    var y = SIMD8<Float>(repeating: 1.9875691500e-4)
    y = y * x + 1.3981999507e-3
    y = y * x + 8.3334519073e-3
    y = y * x + 4.1665795894e-2
    y = y * x + 1.6666665459e-1
    y = y * x + 5.0000001201e-1
    y = y * z + x + 1
    let integer = unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- 0x4B40_0000  // n, two's complement
    return y * unsafeBitCast((integer &+ 127) &<< 23, to: SIMD8<Float>.self)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
