import Foundation
import Testing
@testable import Tiling

@Suite struct BlockGridTests {
    /// Blocks tile the image exactly, in row-major order; each block's windows are exactly those that
    /// touch it.
    @Test(arguments: [(1000, 700, 512, 341, 341, 682), (97, 83, 48, 32, 40, 25), (300, 200, 512, 341, 64, 64),
                      (4096, 33, 896, 512, 1024, 1024)])
    func blocksCoverTheImageAndGetTheWindowsThatTouchThem(_ w: Int, _ h: Int, _ crop: Int, _ stride: Int,
                                                           _ bw: Int, _ bh: Int) throws {
        let windows = try WindowGrid(imageWidth: w, imageHeight: h, crop: crop, stride: stride)
        let blocks = try BlockGrid(windows: windows, blockWidth: bw, blockHeight: bh)
        var owner = [Int](repeating: -1, count: w * h)
        for (i, b) in blocks.blocks.enumerated() {
            #expect(b.index == i && b.row * blocks.columns + b.column == i)
            for y in b.rows { for x in b.columns { #expect(owner[y * w + x] == -1); owner[y * w + x] = i } }
            let touching = windows.tiles.filter(b.touches)
            #expect(touching.map(\.gridRow).min() == b.gridRows.first && touching.map(\.gridRow).max() == b.gridRows.last)
            #expect(touching.map(\.gridColumn).min() == b.gridColumns.first)
            #expect(touching.map(\.gridColumn).max() == b.gridColumns.last)
            #expect(touching.count == b.windowCount)
        }
        #expect(!owner.contains(-1))
    }

    @Test func badBlockSizesAreRejected() throws {
        let windows = try WindowGrid(imageWidth: 100, imageHeight: 100, crop: 64, stride: 48)
        #expect(throws: TilingError.self) { try BlockGrid(windows: windows, blockWidth: 0, blockHeight: 10) }
        #expect(throws: TilingError.self) { try BlockGrid(windows: windows, blockWidth: 10, blockHeight: -1) }
    }

    /// Blocks on window origins recompute one window column (row) per block edge: 1/k for blocks of k
    /// strides. The automatic size is a multiple of the stride and fits the stitcher budget.
    @Test func recomputeOverheadAndAutomaticSize() throws {
        let windows = try WindowGrid(imageWidth: 65536, imageHeight: 65536, crop: 512, stride: 341)
        let blocks = try BlockGrid(windows: windows, classes: 6, views: 1, stitcherBytes: 64 << 20)
        #expect(blocks.blockWidth % 341 == 0 && blocks.blockHeight == min(65536, 4 * blocks.blockWidth))
        #expect(blocks.blockWidth < BlockGrid.efficientStrides * 341)
        #expect(BlockGrid.stitcherBytes(width: blocks.blockWidth, windows: windows, classes: 6, views: 1) <= 64 << 20)
        #expect(BlockGrid.stitcherBytes(width: blocks.blockWidth + 341, windows: windows, classes: 6, views: 1) > 64 << 20)
        #expect(blocks.recomputeOverhead > 0 && blocks.recomputeOverhead < 0.1, "\(blocks.recomputeOverhead)")
        // A budget with room to spare: blocks stop at 32 strides (3.1 % + 0.8 %), memory stays flat.
        let roomy = try BlockGrid(windows: windows, classes: 6, views: 1, stitcherBytes: 4 << 30)
        #expect(roomy.blockWidth == BlockGrid.efficientStrides * 341)
        #expect(roomy.recomputeOverhead < 0.045, "\(roomy.recomputeOverhead)")
        let k = 12
        let square = try BlockGrid(windows: windows, blockWidth: k * 341, blockHeight: k * 341)
        #expect(abs(square.recomputeOverhead - 2.0 / Double(k)) < 0.02, "\(square.recomputeOverhead)")
        let small = try WindowGrid(imageWidth: 300, imageHeight: 200, crop: 512, stride: 341)
        let one = try BlockGrid(windows: small, classes: 6, views: 1, stitcherBytes: 256 << 20)
        #expect(one.count == 1 && one.recomputeOverhead == 0)
    }
}

@Suite struct BlockStitcherTests {
    /// Logits that differ per window and pixel, irregular enough that any change in the order or set
    /// of additions changes the float sums.
    func logits(_ t: Tile, classes: Int) -> [Float] {
        var out = [Float](repeating: 0, count: classes * t.width * t.height)
        for c in 0..<classes {
            for r in 0..<t.height {
                for i in 0..<t.width {
                    let x = Float(t.x + i), y = Float(t.y + r)
                    out[(c * t.height + r) * t.width + i] = sinf(0.37 * x * Float(c + 1) + 0.11 * y)
                        + 0.1 * Float(t.gridRow * 7 + t.gridColumn * 3 + c) + 1e-3 * Float((t.x * 31 + i) % 17)
                }
            }
        }
        return out
    }

    /// Σ weight × logits and Σ weight of every pixel, per view: (classes, height, width) and (height, width).
    struct Blended: Equatable { var sums: [UInt32]; var weights: [UInt32]; var labels: [UInt8]; var confidence: [UInt32] }

    func blend(_ windows: WindowGrid, classes: Int, blend: Blend, flip: Bool, blocks: BlockGrid?) -> Blended {
        let (w, h) = (windows.imageWidth, windows.imageHeight)
        var out = Blended(sums: .init(repeating: 0, count: classes * w * h * (flip ? 2 : 1)),
                          weights: .init(repeating: 0, count: w * h * (flip ? 2 : 1)),
                          labels: .init(repeating: 0, count: w * h), confidence: .init(repeating: 0, count: w * h))
        let views = flip ? 2 : 1
        let regions: [Block?] = blocks.map { $0.blocks.map(Optional.some) } ?? [nil]
        for block in regions {
            let stitchers = (0..<views).map { _ in
                block.map { StreamingStitcher(grid: windows, classes: classes, blend: blend, block: $0) }
                    ?? StreamingStitcher(grid: windows, classes: classes, blend: blend)
            }
            let x0 = block?.x ?? 0
            for row in block?.gridRows ?? windows.rowOrigins.indices {
                for view in 0..<views {
                    let tiles = view == 0 ? windows.tiles(inRow: row) : windows.mirroredTiles(inRow: row)
                    for tile in tiles where block?.touches(tile) ?? true {
                        let l = logits(tile, classes: classes).map { view == 0 ? $0 : $0 * 0.5 + 0.25 }
                        l.withUnsafeBufferPointer { stitchers[view].add(tile, logits: $0) }
                    }
                }
                let bands = stitchers.map { $0.finishGridRow(row) }
                let (labels, confidence) = mergeViews(bands)
                for (view, band) in bands.enumerated() {
                    for (k, y) in band.rows.enumerated() {
                        for x in 0..<band.width {
                            out.weights[(view * h + y) * w + x0 + x] = band.weight(row: k, column: x).bitPattern
                            out.labels[y * w + x0 + x] = labels[k * band.width + x]
                            out.confidence[y * w + x0 + x] = confidence[k * band.width + x].bitPattern
                            for c in 0..<classes {
                                out.sums[((view * classes + c) * h + y) * w + x0 + x] =
                                    band.withRow(k) { s, _ in s[c * band.width + x] }.bitPattern
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Every pixel's blended sums, weights, labels and confidence are bit-identical to the
    /// whole-image stitcher, for block sizes aligned to the stride or not, mean and hann, one view
    /// or flip, and images smaller than a crop or not a multiple of anything.
    @Test(arguments: [(131, 97, 48, 32), (200, 150, 64, 48), (45, 70, 64, 48), (257, 64, 64, 41)])
    func blocksAreBitIdenticalToTheWholeImage(_ w: Int, _ h: Int, _ crop: Int, _ stride: Int) throws {
        let windows = try WindowGrid(imageWidth: w, imageHeight: h, crop: crop, stride: stride)
        for blendMode in Blend.allCases {
            for flip in [false, true] {
                let whole = blend(windows, classes: 3, blend: blendMode, flip: flip, blocks: nil)
                for (bw, bh) in [(stride, stride), (2 * stride, 5 * stride), (37, 23), (w, 17), (1, h), (w + 5, h)] {
                    let blocks = try BlockGrid(windows: windows, blockWidth: bw, blockHeight: bh)
                    let blocked = blend(windows, classes: 3, blend: blendMode, flip: flip, blocks: blocks)
                    #expect(blocked == whole, "\(w)×\(h) crop \(crop)/\(stride) blocks \(bw)×\(bh) \(blendMode) flip \(flip)")
                }
            }
        }
    }

    /// One view with column chunks handed over as the windows pass (`finishColumns`, as `run` does),
    /// the last two grid rows as one step or not: the same bits as whole rows, and the most pixels
    /// held at once.
    func blendReleasingColumns(_ windows: WindowGrid, classes: Int, blend: Blend, blocks: BlockGrid?,
                               interleaved: Bool = false) -> (Blended, peak: Int) {
        let (w, h) = (windows.imageWidth, windows.imageHeight)
        var out = Blended(sums: .init(repeating: 0, count: classes * w * h), weights: .init(repeating: 0, count: w * h),
                          labels: .init(repeating: 0, count: w * h), confidence: .init(repeating: 0, count: w * h))
        var peak = 0
        let regions: [Block?] = blocks.map { $0.blocks.map(Optional.some) } ?? [nil]
        for block in regions {
            let stitcher = block.map { StreamingStitcher(grid: windows, classes: classes, blend: blend, block: $0) }
                ?? StreamingStitcher(grid: windows, classes: classes, blend: blend)
            for step in windows.rowSteps(interleavingLastRows: interleaved, within: block?.gridRows) {
                var chunks: [StitchedBand] = []
                for tile in windows.tiles(inStep: step) where block?.touches(tile) ?? true {
                    logits(tile, classes: classes).withUnsafeBufferPointer { stitcher.add(tile, logits: $0) }
                    chunks += stitcher.finishColumns(afterTile: tile, inStep: step)
                }
                chunks += stitcher.finishStepInChunks(step)
                for band in chunks {
                    let (labels, confidence) = mergeViews([band])
                    for (k, y) in band.rows.enumerated() {
                        for x in 0..<band.width {
                            out.weights[y * w + band.x + x] = band.weight(row: k, column: x).bitPattern
                            out.labels[y * w + band.x + x] = labels[k * band.width + x]
                            out.confidence[y * w + band.x + x] = confidence[k * band.width + x].bitPattern
                            for c in 0..<classes {
                                out.sums[(c * h + y) * w + band.x + x] =
                                    band.withRow(k) { s, _ in s[c * band.width + x] }.bitPattern
                            }
                        }
                    }
                }
            }
            peak = max(peak, stitcher.peakHeldPixels)
        }
        return (out, peak)
    }

    /// Column chunks handed over as soon as no later window reaches them give bit-identical sums,
    /// weights, labels and confidence, with the last two grid rows as one step or not, and the
    /// stitcher then holds at most the rows continuing into the next step plus the chunks under the
    /// current windows (`BlockGrid.heldPixels`, `stitcherBytes`' count), less than whole rows on a
    /// wide image; where mmseg shifted the last row up, the two-row step holds less again.
    @Test(arguments: [(131, 97, 48, 32), (200, 150, 64, 48), (45, 70, 64, 48), (257, 64, 64, 41), (700, 352, 96, 64),
                      (700, 320, 96, 64), (400, 150, 96, 32), (900, 300, 112, 64), (1500, 320, 96, 64)])
    func columnChunksAreBitIdenticalAndHoldLess(_ w: Int, _ h: Int, _ crop: Int, _ stride: Int) throws {
        let windows = try WindowGrid(imageWidth: w, imageHeight: h, crop: crop, stride: stride)
        for blendMode in Blend.allCases {
            let whole = blend(windows, classes: 3, blend: blendMode, flip: false, blocks: nil)
            for size in [nil, (2 * stride, 5 * stride), (37, 23), (w + 5, h)] as [(Int, Int)?] {
                for interleaved in [false, true] {
                    let blocks = try size.map { try BlockGrid(windows: windows, blockWidth: $0.0, blockHeight: $0.1) }
                    let (chunked, peak) = blendReleasingColumns(windows, classes: 3, blend: blendMode, blocks: blocks,
                                                                interleaved: interleaved)
                    #expect(chunked == whole,
                            "\(w)×\(h) crop \(crop)/\(stride) blocks \(String(describing: size)) \(blendMode) interleaved \(interleaved)")
                    let width = blocks?.blockWidth ?? w
                    let bound = BlockGrid.heldPixels(width: width, windows: windows, interleavingLastRows: interleaved)
                    #expect(peak <= bound, "peak \(peak), bound \(bound), interleaved \(interleaved)")
                }
            }
        }
        if w >= 7 * crop, windows.lastRowsOverlapMore {  // the two-row step holds less where the layout says so
            let (_, rows) = blendReleasingColumns(windows, classes: 1, blend: .mean, blocks: nil)
            let (_, step) = blendReleasingColumns(windows, classes: 1, blend: .mean, blocks: nil, interleaved: true)
            let layout = try BlockGrid(windows: windows, blockWidth: w, blockHeight: h)
            #expect(windows.carriedRows(interleavingLastRows: true) == crop - stride)
            if layout.interleavesLastRows { #expect(step < rows, "rows \(rows), step \(step)") }
            if w == 1500 { #expect(layout.interleavesLastRows && step < rows * 3 / 4, "rows \(rows), step \(step)") }
        }
        if w >= 7 * crop, windows.carriedRows(interleavingLastRows: false) == crop - stride {  // whole rows hold crop rows of the width
            let rows = StreamingStitcher(grid: windows, classes: 1, blend: .mean)
            for row in windows.rowOrigins.indices {
                for tile in windows.tiles(inRow: row) {
                    [Float](repeating: 1, count: tile.width * tile.height).withUnsafeBufferPointer { rows.add(tile, logits: $0) }
                }
                _ = rows.finishGridRow(row)
            }
            let (_, peak) = blendReleasingColumns(windows, classes: 1, blend: .mean, blocks: nil)
            #expect(rows.peakHeldPixels >= crop * w && peak < rows.peakHeldPixels * 3 / 5,
                    "whole rows \(rows.peakHeldPixels), chunks \(peak)")
        }
    }

    /// A block stitcher resumed mid-block (from `replayStart`) finishes the same rows with the same bits.
    @Test func resumedBlockMatches() throws {
        let windows = try WindowGrid(imageWidth: 180, imageHeight: 260, crop: 64, stride: 48)
        let blocks = try BlockGrid(windows: windows, blockWidth: 96, blockHeight: 200)
        let block = blocks.block(2)
        func run(from start: Int) -> [Int: [UInt32]] {
            let s = StreamingStitcher(grid: windows, classes: 2, blend: .hann, block: block, startGridRow: start)
            var out: [Int: [UInt32]] = [:]
            for row in start..<block.gridRows.upperBound {
                for tile in windows.tiles(inRow: row) where block.touches(tile) {
                    logits(tile, classes: 2).withUnsafeBufferPointer { s.add(tile, logits: $0) }
                }
                let band = s.finishGridRow(row)
                for (k, y) in band.rows.enumerated() {
                    out[y] = (0..<band.width).map { band.logit(1, row: k, column: $0).bitPattern }
                }
            }
            return out
        }
        let full = run(from: block.gridRows.lowerBound)
        let resumeRow = block.gridRows.lowerBound + 2
        let replay = max(block.gridRows.lowerBound, windows.replayStart(forResumingAt: resumeRow))
        let resumed = run(from: replay)
        for y in windows.rowOrigins[resumeRow]..<block.rows.upperBound { #expect(resumed[y] == full[y], "row \(y)") }
        #expect(Set(full.keys) == Set(block.rows))
    }
}
