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

/// Merges the blended logits of several views of the same rows: per pixel, the mean over views of
/// softmax(logits) (mmseg's `SegTTAModel.merge_preds`; with one view this is plain softmax), then
/// the first class of highest probability and that probability. Pixels no window reached in some
/// view get `invalidLabel` and confidence 0.
public func mergeViews(_ views: [StitchedBand], invalidLabel: UInt8 = 255) -> (labels: [UInt8], confidence: [Float]) {
    precondition(!views.isEmpty)
    let first = views[0]
    let (classes, width) = (first.classes, first.width)
    let n = first.rows.count * width
    var labels = [UInt8](repeating: invalidLabel, count: n)
    var confidence = [Float](repeating: 0, count: n)
    var probability = [Float](repeating: 0, count: classes)
    var logits = [Float](repeating: 0, count: classes)
    for k in 0..<first.rows.count {
        for x in 0..<width where views.allSatisfy({ $0.weight(row: k, column: x) > 0 }) {
            for c in 0..<classes { probability[c] = 0 }
            for view in views {
                for c in 0..<classes { logits[c] = view.logit(c, row: k, column: x) }
                let top = logits.max()!
                var sum: Float = 0
                for c in 0..<classes {
                    logits[c] = expf(logits[c] - top)
                    sum += logits[c]
                }
                for c in 0..<classes { probability[c] += logits[c] / sum }
            }
            var best = 0
            for c in 1..<max(classes, 1) where probability[c] > probability[best] { best = c }
            labels[k * width + x] = UInt8(clamping: best)
            confidence[k * width + x] = probability[best] / Float(views.count)
        }
    }
    return (labels, confidence)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
