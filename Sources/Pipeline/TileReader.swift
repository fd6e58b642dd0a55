import Foundation
import GeoIO
import Tiling

/// Reads windows on its own thread, a few ahead of inference, so disk and decompression overlap
/// with the model. GDAL handles must stay on one thread, so the reader opens its own `Dataset`.
///
/// Windows come back in exactly the order of `tiles`, already mapped by the image's `InputScaling`
/// (here, off the inference thread); a read error is delivered in place of the window that failed.
final class TileReader: @unchecked Sendable {
    struct Item {
        let tile: Tile
        /// (bands, h, w) scaled raster values and (h, w) validity, or the read error.
        let result: Result<(pixels: [Float], valid: [UInt8]), any Error>
    }

    private let condition = NSCondition()
    private var queue: [Item] = []
    private var cancelled = false
    private let capacity: Int

    /// Windows read ahead of the model by default.
    static let defaultAhead = 3

    /// Windows of bands alive at once with `ahead`: those queued, the one being read and the one the
    /// model works on (what the memory plan counts).
    static func windowsHeld(ahead: Int = defaultAhead) -> Int { max(ahead, 1) + 2 }

    /// Starts reading `tiles` of `path` (bands 1-based) on a background thread, at most `ahead` windows ahead.
    init(path: String, bands: [Int], scaling: InputScaling = .identity, tiles: [Tile], ahead: Int = defaultAhead) {
        capacity = max(ahead, 1)
        // The thread keeps the reader alive until it has read everything or is cancelled.
        let worker = Thread { self.readAll(path: path, bands: bands, scaling: scaling, tiles: tiles) }
        worker.name = "aerialseg-reader"
        worker.start()
    }

    private func readAll(path: String, bands: [Int], scaling: InputScaling, tiles: [Tile]) {
        let dataset: Dataset
        do {
            dataset = try Dataset(path: path)
        } catch {
            for tile in tiles { if !push(Item(tile: tile, result: .failure(error))) { return } }
            return
        }
        for tile in tiles {
            let window = PixelWindow(x: tile.x, y: tile.y, width: tile.width, height: tile.height)
            var pixels = [Float](repeating: 0, count: bands.count * window.pixelCount)
            var valid = [UInt8](repeating: 0, count: window.pixelCount)
            let result: Result<(pixels: [Float], valid: [UInt8]), any Error>
            do {
                try pixels.withUnsafeMutableBufferPointer { p in
                    try valid.withUnsafeMutableBufferPointer { v in
                        try dataset.read(window, bands: bands, into: p, validity: v)
                        if !scaling.isIdentity {
                            scaling.apply(p, validity: UnsafeBufferPointer(v), channels: bands.count,
                                          planeCount: window.pixelCount)
                        }
                    }
                }
                result = .success((pixels, valid))
            } catch {
                result = .failure(error)
            }
            if !push(Item(tile: tile, result: result)) { return }
        }
    }

    /// Waits for room; false when cancelled.
    private func push(_ item: Item) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        queue.append(item)
        condition.broadcast()
        return true
    }

    /// The next window, in order (blocks until it is read).
    func next() -> Item {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty { condition.wait() }
        let item = queue.removeFirst()
        condition.broadcast()
        return item
    }

    /// Stops the reader (call it when leaving early, e.g. after an error); it exits at its next window.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

}
