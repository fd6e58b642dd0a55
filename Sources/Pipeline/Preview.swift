import Foundation
import GeoIO

/// What `run` writes as `<stem>.preview.png`.
public enum PreviewMode: String, Sendable, Codable, CaseIterable {
    /// The orthophoto with class colours over it at half opacity, nodata transparent, and a legend
    /// strip (palette and class names) below. The default: what a person wants to look at.
    case overlay
    /// Class colours alone, nodata transparent, with the legend strip.
    case labels
    /// No preview.
    case none
}

/// A quick-look PNG at most `maxSide` pixels on its long side (legend included), read from the
/// label COG's overviews and the input raster's (nearest neighbour, so it stays cheap at any size).
struct Preview {
    let palette: [[Int]]
    let classes: [String]
    /// Classes drawn without colour in `overlay` mode (the orthophoto shows through), e.g. the
    /// background: the pipeline's `vectors.exclude`.
    let uncoloured: Set<Int>

    static let maxSide = 2048
    /// Weight of the class colour over the orthophoto.
    static let opacity = 0.5

    /// Legend text and swatches are drawn `scale`× (pixel-doubled) on wide previews, so they stay
    /// readable at the size the image is shown.
    static func legendScale(width: Int) -> Int { max(1, width / 900) }

    /// `labels` is the label raster (class ids, 255 = nodata); `input` and `bands` the orthophoto
    /// and the bands read as R, G, B (one band is shown grey; fewer than three repeat).
    func write(labels: String, input: String, bands: [Int], mode: PreviewMode, to path: String) throws {
        let ds = try Dataset(path: labels)
        let entries = legendEntries(mode)
        // Scale so that the image and the legend below it fit in maxSide (the legend's height depends
        // on the width it wraps in, so settle it in two passes).
        var legend = legendHeight(entries, width: min(ds.width, Self.maxSide))
        var (w, h) = (0, 0)
        for _ in 0..<2 {
            let scale = min(1, Double(Self.maxSide) / Double(ds.width), Double(Self.maxSide - legend) / Double(ds.height))
            w = max(1, Int(Double(ds.width) * scale))
            h = max(1, Int(Double(ds.height) * scale))
            legend = legendHeight(entries, width: w)
        }
        let ids = try ds.readBytes(band: 1, decimatedTo: w, h)
        let ortho = mode == .overlay ? try orthophoto(input, bands: bands, width: w, height: h, ids: ids) : nil
        let total = h + legend, plane = w * total
        var rgba = [UInt8](repeating: 0, count: 4 * plane)
        for i in 0..<(w * h) {
            let id = Int(ids[i])
            guard id != 255 else { continue }  // nodata: transparent
            rgba[3 * plane + i] = 255
            let colour = id < palette.count ? palette[id] : [0, 0, 0]
            for c in 0..<3 {
                if let ortho {
                    let base = Double(ortho[c * w * h + i])
                    let mixed = uncoloured.contains(id) || id >= palette.count
                        ? base : base * (1 - Self.opacity) + Double(colour[c]) * Self.opacity
                    rgba[c * plane + i] = UInt8(mixed.rounded())
                } else {
                    rgba[c * plane + i] = UInt8(clamping: colour[c])
                }
            }
        }
        drawLegend(entries, into: &rgba, width: w, top: h, height: legend)
        try writePNG(path: path, width: w, height: total, bands: 4, pixels: rgba)
    }

    /// The classes the legend lists: all of them, less the uncoloured ones in `overlay` mode.
    func legendEntries(_ mode: PreviewMode) -> [Int] {
        palette.indices.filter { mode != .overlay || !uncoloured.contains($0) }
    }

    /// Swatch (12 px), gap, name, spacing, in unscaled legend pixels; entries wrap onto further rows.
    private func layout(_ entries: [Int], width: Int) -> [(id: Int, x: Int, row: Int)] {
        var out: [(Int, Int, Int)] = []
        var x = 4, row = 0
        let room = width / Self.legendScale(width: width)
        for id in entries {
            let span = 12 + 4 + PreviewFont.width(of: name(id)) + 12
            if x > 4 && x + span > room { x = 4; row += 1 }
            out.append((id, x, row))
            x += span
        }
        return out
    }

    private func name(_ id: Int) -> String { id < classes.count ? classes[id] : "class_\(id)" }

    /// Rows of `PreviewFont.height + 6` pixels plus a margin of 4, times the legend scale.
    func legendHeight(_ entries: [Int], width: Int) -> Int {
        guard !entries.isEmpty else { return 0 }
        let rows = layout(entries, width: width).map(\.row).max()! + 1
        return (rows * (PreviewFont.height + 6) + 4) * Self.legendScale(width: width)
    }

    private func drawLegend(_ entries: [Int], into rgba: inout [UInt8], width w: Int, top: Int, height: Int) {
        guard height > 0 else { return }
        let plane = w * (top + height)
        let k = Self.legendScale(width: w)
        /// One legend pixel (k × k image pixels) at legend coordinates (x, y).
        func set(_ x: Int, _ y: Int, _ colour: [Int]) {
            for py in (top + y * k)..<(top + (y + 1) * k) where py < top + height {
                for px in (x * k)..<((x + 1) * k) where px < w {
                    for c in 0..<3 { rgba[c * plane + py * w + px] = UInt8(clamping: colour[c]) }
                    rgba[3 * plane + py * w + px] = 255
                }
            }
        }
        for y in 0..<((height + k - 1) / k) { for x in 0..<((w + k - 1) / k) { set(x, y, [32, 32, 32]) } }
        for (id, x0, row) in layout(entries, width: w) {
            let y0 = 4 + row * (PreviewFont.height + 6)
            for dy in 0..<12 { for dx in 0..<12 { set(x0 + dx, y0 + 1 + dy, palette[id]) } }
            PreviewFont.draw(name(id), x0: x0 + 16, y0: y0) { set($0, $1, [240, 240, 240]) }
        }
    }

    /// The input decimated to `width` × `height` as 8-bit RGB (band-sequential). 8-bit bands are
    /// shown as they are; other types are stretched between their 2nd and 98th percentiles over
    /// the valid pixels (`ids` ≠ 255), so 16-bit and float imagery is visible too.
    private func orthophoto(_ input: String, bands: [Int], width: Int, height: Int, ids: [UInt8]) throws -> [UInt8] {
        let ds = try Dataset(path: input)
        let shown = bands.count >= 3 ? Array(bands.prefix(3)) : Array(repeating: bands[0], count: 3)
        var out = [UInt8](repeating: 0, count: 3 * width * height)
        for (c, band) in shown.enumerated() {
            let values = try ds.readFloats(band: band, decimatedTo: width, height)
            var (low, high): (Float, Float) = (0, 255)
            if ds.band(band).dataType != .byte {
                let valid = values.indices.filter { ids[$0] != 255 && values[$0].isFinite }.map { values[$0] }.sorted()
                if !valid.isEmpty {
                    low = valid[valid.count * 2 / 100]
                    high = valid[min(valid.count - 1, valid.count * 98 / 100)]
                }
            }
            let scale = high > low ? 255 / (high - low) : 1
            for i in 0..<(width * height) {
                let v = values[i].isFinite ? (values[i] - low) * scale : 0
                out[c * width * height + i] = UInt8(min(max(v, 0), 255).rounded())
            }
        }
        return out
    }
}
