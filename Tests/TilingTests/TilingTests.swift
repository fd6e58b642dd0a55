import Foundation
import Testing
@testable import Tiling

@Suite struct WindowGridTests {
    /// The examples worked out in mmseg-reference §6.4 from `slide_inference`.
    @Test func mmsegSlideExamples() throws {
        let a = try WindowGrid(imageWidth: 64, imageHeight: 64, crop: 48, stride: 32)
        #expect(a.rowOrigins == [0, 16] && a.columnOrigins == [0, 16])
        let b = try WindowGrid(imageWidth: 80, imageHeight: 96, crop: 48, stride: 32)
        #expect(b.rowOrigins == [0, 32, 48] && b.columnOrigins == [0, 32])
        let c = try WindowGrid(imageWidth: 512, imageHeight: 512, crop: 384, stride: 256)
        #expect(c.rowOrigins == [0, 128] && c.count == 4)
        #expect(c.tiles.allSatisfy { $0.width == 384 && $0.height == 384 })
    }

    @Test func imageSmallerThanCropIsOneWindowOfTheImage() throws {
        let g = try WindowGrid(imageWidth: 300, imageHeight: 200, crop: 512, stride: 341)
        #expect(g.tiles == [Tile(x: 0, y: 0, width: 300, height: 200, gridRow: 0, gridColumn: 0)])
    }

    /// Every pixel is covered; windows never pass the border; the grid formula matches a direct loop.
    @Test(arguments: [(1000, 700, 512, 341), (513, 512, 512, 256), (4096, 33, 896, 512), (97, 83, 48, 32)])
    func coverage(_ w: Int, _ h: Int, _ crop: Int, _ stride: Int) throws {
        let g = try WindowGrid(imageWidth: w, imageHeight: h, crop: crop, stride: stride)
        var covered = [Int](repeating: 0, count: w * h)
        for t in g.tiles {
            #expect(t.x >= 0 && t.y >= 0 && t.x + t.width <= w && t.y + t.height <= h)
            #expect(t.width == min(crop, w) && t.height == min(crop, h))
            for y in t.y..<(t.y + t.height) { for x in t.x..<(t.x + t.width) { covered[y * w + x] += 1 } }
        }
        #expect(!covered.contains(0))
        // Direct transcription of mmseg's loop.
        let hGrids = max(h - crop + stride - 1, 0) / stride + 1
        let ys = (0..<hGrids).map { i -> Int in let y2 = min(i * stride + crop, h); return max(y2 - crop, 0) }
        #expect(g.rowOrigins == ys)
    }

    @Test(arguments: [(512, 0), (512, -5), (512, 513), (16, 8)])
    func badParametersAreRejected(_ crop: Int, _ stride: Int) {
        #expect(throws: TilingError.self) { try WindowGrid(imageWidth: 1000, imageHeight: 1000, crop: crop, stride: stride) }
    }
}

@Suite struct StitcherTests {
    /// A reproducible "model": logits depend on the window (so blending matters).
    func fakeLogits(_ t: Tile, classes: Int, windowBias: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: classes * t.width * t.height)
        for c in 0..<classes {
            for r in 0..<t.height {
                for i in 0..<t.width {
                    let x = Float(t.x + i), y = Float(t.y + r)
                    let bias = windowBias ? Float(t.gridRow * 3 + t.gridColumn * 5 % 7) : 0
                    out[(c * t.height + r) * t.width + i] = sinf(0.01 * x * Float(c + 1)) + cosf(0.013 * y) + bias
                }
            }
        }
        return out
    }

    /// `mean` equals mmseg's whole-image `preds / count`, computed naively, while holding few rows.
    @Test func meanMatchesNaiveSlideAverage() throws {
        let (w, h, classes) = (300, 260, 3)
        let grid = try WindowGrid(imageWidth: w, imageHeight: h, crop: 96, stride: 64)
        var preds = [Float](repeating: 0, count: classes * w * h), count = [Float](repeating: 0, count: w * h)
        let stitcher = StreamingStitcher(grid: grid, classes: classes, blend: .mean)
        var out = [Float](repeating: .nan, count: classes * w * h)
        var maxHeld = 0
        for row in grid.rowOrigins.indices {
            for t in grid.tiles(inRow: row) {
                let l = fakeLogits(t, classes: classes, windowBias: true)
                l.withUnsafeBufferPointer { stitcher.add(t, logits: $0) }
                maxHeld = max(maxHeld, stitcher.heldRows)
                for c in 0..<classes {
                    for r in 0..<t.height {
                        for i in 0..<t.width {
                            preds[(c * h + t.y + r) * w + t.x + i] += l[(c * t.height + r) * t.width + i]
                            if c == 0 { count[(t.y + r) * w + t.x + i] += 1 }
                        }
                    }
                }
            }
            let band = stitcher.finishGridRow(row)
            for c in 0..<classes {
                for (k, y) in band.rows.enumerated() {
                    for x in 0..<w { out[(c * h + y) * w + x] = band.logit(c, row: k, column: x) }
                }
            }
        }
        var maxDiff: Float = 0
        for c in 0..<classes {
            for p in 0..<(w * h) { maxDiff = max(maxDiff, abs(out[c * w * h + p] - preds[c * w * h + p] / count[p])) }
        }
        #expect(maxDiff < 1e-5)
        #expect(maxHeld <= grid.crop + grid.stride)
    }

    /// Seams: with window-dependent outputs, `mean` jumps at window borders; `hann` does not.
    @Test func hannLeavesNoSeam() throws {
        func maxStep(_ blend: Blend) throws -> Float {
            let (w, h) = (400, 300)
            let grid = try WindowGrid(imageWidth: w, imageHeight: h, crop: 128, stride: 64)
            let stitcher = StreamingStitcher(grid: grid, classes: 1, blend: blend)
            var image = [Float](repeating: 0, count: w * h)
            for row in grid.rowOrigins.indices {
                for t in grid.tiles(inRow: row) {
                    fakeLogits(t, classes: 1, windowBias: true).withUnsafeBufferPointer { stitcher.add(t, logits: $0) }
                }
                let band = stitcher.finishGridRow(row)
                for (k, y) in band.rows.enumerated() { for x in 0..<w { image[y * w + x] = band.logit(0, row: k, column: x) } }
            }
            var step: Float = 0
            for y in 0..<h { for x in 1..<w { step = max(step, abs(image[y * w + x] - image[y * w + x - 1])) } }
            for y in 1..<h { for x in 0..<w { step = max(step, abs(image[y * w + x] - image[(y - 1) * w + x])) } }
            return step
        }
        let mean = try maxStep(.mean), hann = try maxStep(.hann)
        #expect(mean > 1, "mean blending of window-dependent outputs has a visible jump")
        #expect(hann < mean / 5, "hann: \(hann), mean: \(mean)")
    }

    @Test func hannWeightsArePositiveAndFlatAtTheImageBorder() {
        let t = Tile(x: 0, y: 100, width: 64, height: 64, gridRow: 1, gridColumn: 0)
        let w = Blend.hann.weights(for: t, imageWidth: 500, imageHeight: 164)
        #expect(w.allSatisfy { $0 > 0 && $0 <= 1 })
        #expect(w[63 * 64 + 0] == 1, "bottom-left corner touches the image's left and bottom borders")
        #expect(w[0] < 0.01, "top edge inside the image fades out")
    }

    @Test func labelsAndConfidence() {
        let band = StitchedBand(rows: 0..<1, width: 3, classes: 2, logits: [0, 2, 1, /* class 1: */ 0, 1, 1],
                                weight: [1, 1, 0])
        let (labels, confidence) = band.labelsAndConfidence()
        #expect(labels == [0, 0, 255], "ties go to the first class; no window → 255")
        #expect(abs(confidence[0] - 0.5) < 1e-6 && abs(confidence[1] - 1 / (1 + expf(-1))) < 1e-6)
        #expect(confidence[2] == 0)
    }

    /// The vectorised merge against a plain scalar softmax written here (libm expf), on random bands of
    /// widths that are not multiples of 8, with uncovered and invalid pixels, for one and two views.
    @Test func vectorisedMergeMatchesScalarSoftmax() {
        var state: UInt64 = 7  // a 64-bit LCG (Knuth's MMIX constants) is plenty for test data
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(state >> 11) / Double(1 << 53))
        }
        for (width, classes) in [(13, 6), (8, 2), (37, 19), (1, 3)] {
            let rows = 3, n = rows * width
            func band(validity: Bool) -> StitchedBand {
                let logits = (0..<(classes * n)).map { _ in uniform() * 16 - 8 }
                let weight = (0..<n).map { i in i % 11 == 5 ? 0 : 0.25 + uniform() }
                var b = StitchedBand(rows: 0..<rows, width: width, classes: classes, logits: logits, weight: weight)
                if validity {
                    let grid = try! WindowGrid(imageWidth: width, imageHeight: rows, crop: 32, stride: 32)
                    let stitcher = StreamingStitcher(grid: grid, classes: classes, blend: .mean)
                    let tile = grid.tiles[0]
                    let plane = b.logits
                    let valid = (0..<n).map { UInt8($0 % 7 == 3 ? 0 : 1) }
                    plane.withUnsafeBufferPointer { p in valid.withUnsafeBufferPointer { stitcher.add(tile, logits: p, validity: $0) } }
                    b = stitcher.finishGridRow(0)
                }
                return b
            }
            for views in [[band(validity: true)], [band(validity: true), band(validity: false)]] {
                let (labels, confidence) = mergeViews(views)
                var wrongLabels = 0, worst: Float = 0
                for k in 0..<rows {
                    for x in 0..<width {
                        let i = k * width + x
                        let valid = views[0].isValid(row: k, column: x) && views.allSatisfy { $0.weight(row: k, column: x) > 0 }
                        guard valid else {
                            if labels[i] != 255 || confidence[i] != 0 { wrongLabels += 1 }
                            continue
                        }
                        var mean = [Double](repeating: 0, count: classes)
                        for v in views {
                            let l = (0..<classes).map { Double(v.logit($0, row: k, column: x)) }
                            let e = l.map { Foundation.exp($0 - l.max()!) }
                            for c in 0..<classes { mean[c] += e[c] / e.reduce(0, +) / Double(views.count) }
                        }
                        // One view: argmax of logits; several: argmax of mean probability (first on ties).
                        let scores = views.count == 1 ? (0..<classes).map { Double(views[0].logit($0, row: k, column: x)) } : mean
                        let best = scores.firstIndex(of: scores.max()!)!
                        if Int(labels[i]) != best { wrongLabels += 1 }
                        worst = max(worst, abs(confidence[i] - Float(mean[best])))
                    }
                }
                #expect(wrongLabels == 0 && worst < 2e-6, "width \(width) classes \(classes) views \(views.count): \(worst)")
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
