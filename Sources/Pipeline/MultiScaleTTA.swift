import Foundation
import GeoIO
import SegCore
import Tiling

extension SegmentationJob {
    /// mmseg's test-time scales for `--tta ms-flip` (`img_ratios` of the dataset configs).
    static let ttaRatios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    /// ms-flip holds the whole image and its scaled copies in memory: at most this many pixels.
    static let multiScalePixelLimit = 4096 * 4096

    /// mmseg's 12-view multi-scale + flip TTA (`SegTTAModel`): for each ratio the 8-bit image is
    /// resized exactly as cv2 does, slide inference runs on it and on its mirror image, each view's
    /// logits are resized back to the image size, and the mean of the views' softmax maps is returned
    /// as a one-band result (log-probabilities, so `mergeViews` gives back the mean probability).
    func multiScaleFlip(_ ds: Dataset, input: String, bands: [Int], progress: (RunProgress) -> Void,
                        counts: inout (run: Int, skipped: Int, done: Int), modelSeconds: inout Double) throws
        -> StitchedBand
    {
        let (h, w) = (ds.height, ds.width)
        guard h * w <= Self.multiScalePixelLimit else {
            throw PipelineError(path: input, reason: "--tta ms-flip holds the whole image in memory; \(w)×\(h) is over "
                                + "\(Self.multiScalePixelLimit) pixels", hint: "use --tta flip, which streams")
        }
        guard bands.allSatisfy({ ds.band($0).dataType == .byte }) else {
            throw PipelineError(path: input, reason: "--tta ms-flip resizes 8-bit images as mmseg does",
                                hint: "use --tta flip for other pixel types")
        }
        let start = ContinuousClock.now
        let channels = bands.count
        var planes = [Float](repeating: 0, count: channels * h * w)
        try planes.withUnsafeMutableBufferPointer {
            try ds.read(PixelWindow(x: 0, y: 0, width: w, height: h), bands: bands, into: $0)
        }
        var interleaved = [UInt8](repeating: 0, count: channels * h * w)
        for i in 0..<(h * w) {
            for c in 0..<channels { interleaved[i * channels + c] = UInt8(clamping: Int(planes[c * h * w + i])) }
        }

        let model = loaded.model
        let classes = model.numClasses
        var probability = [Float](repeating: 0, count: classes * h * w)
        let grids = try Self.ttaRatios.map { ratio -> WindowGrid in
            let size = ImageResize.mmcvRescaledSize(height: h, width: w, ratio: ratio)
            return try WindowGrid(imageWidth: size.width, imageHeight: size.height, crop: options.resolvedCrop,
                                  stride: options.resolvedStride)
        }
        let total = grids.reduce(0) { $0 + 2 * $1.count }
        for grid in grids {
            let (sh, sw) = (grid.imageHeight, grid.imageWidth)
            let scaled = ImageResize.cv2Linear(interleaved, height: h, width: w, channels: channels, toHeight: sh,
                                               toWidth: sw)
            for flip in [false, true] {
                let stitcher = StreamingStitcher(grid: grid, classes: classes, blend: options.resolvedBlend)
                var logits = [Float](repeating: 0, count: classes * sh * sw)
                for row in grid.rowOrigins.indices {
                    for tile in flip ? grid.mirroredTiles(inRow: row) : grid.tiles(inRow: row) {
                        var crop = [Float](repeating: 0, count: channels * tile.width * tile.height)
                        let n = tile.width * tile.height
                        for r in 0..<tile.height {
                            for x in 0..<tile.width {
                                let s = ((tile.y + r) * sw + tile.x + x) * channels
                                for c in 0..<channels { crop[c * n + r * tile.width + x] = Float(scaled[s + c]) }
                            }
                        }
                        let network = makeInput(crop, height: tile.height, width: tile.width)
                        let t0 = ContinuousClock.now
                        let out = flip ? try model.flippedLogits(network) : try model.logits(network)
                        modelSeconds += (ContinuousClock.now - t0).seconds
                        out.data.withUnsafeBufferPointer { stitcher.add(tile, logits: $0) }
                        counts.run += 1
                        counts.done += 1
                        progress(RunProgress(input: input, windowsDone: counts.done, windowsTotal: total,
                                             elapsedSeconds: (ContinuousClock.now - start).seconds))
                    }
                    let band = stitcher.finishGridRow(row)
                    for c in 0..<classes {
                        for (k, y) in band.rows.enumerated() {
                            for x in 0..<sw { logits[(c * sh + y) * sw + x] = band.logit(c, row: k, column: x) }
                        }
                    }
                }
                let resized = Kernels.resizeBilinear(Tensor(shape: [1, classes, sh, sw], data: logits),
                                                     to: Size2(height: h, width: w), alignCorners: model.alignCorners)
                let softmax = Kernels.softmaxChannels(resized)
                for i in 0..<probability.count { probability[i] += softmax.data[i] }
            }
        }
        let views = Float(2 * Self.ttaRatios.count)
        return StitchedBand(rows: 0..<h, width: w, classes: classes,
                            logits: probability.map { logf(max($0 / views, .leastNormalMagnitude)) },
                            weight: [Float](repeating: 1, count: h * w))
    }
}

#if canImport(Glibc)
import Glibc
#endif
