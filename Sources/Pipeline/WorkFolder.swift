import Foundation
import GeoIO
import Tiling

/// The hidden folder where a job keeps its finished row bands until the outputs are assembled:
/// `<output>/.aerialseg-work-<input stem>-<settings hash>/`. Each band is written under a temporary
/// name and renamed; a `<row>.done` marker, written last, says the band is complete. This is what
/// makes a killed job resumable.
final class WorkFolder {
    let url: URL

    init(directory: String, key: String) throws {
        url = URL(fileURLWithPath: directory).appendingPathComponent(".aerialseg-work-\(key)")
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw GeoIOError(.notWritable, path: directory, message: "cannot create the work folder",
                             hint: "check permissions and free space")
        }
    }

    private func name(_ row: Int, _ kind: String) -> String { String(format: "%06d.%@.tif", row, kind) }
    private func marker(_ row: Int) -> URL { url.appendingPathComponent(String(format: "%06d.done", row)) }

    /// Grid rows 0..<n are complete (their bands on disk, or they finish no image rows).
    func completedGridRows(_ grid: WindowGrid) -> Int {
        var row = 0
        while row < grid.rowOrigins.count,
              grid.finishedRows(afterGridRow: row).isEmpty
                || FileManager.default.fileExists(atPath: marker(row).path) {
            row += 1
        }
        return row
    }

    /// Writes one file of a band through `body` (given a temporary path), then renames it into place.
    func write(gridRow: Int, kind: String, _ body: (String) throws -> Void) throws {
        // Unique per process and host: two copies of a shard may write the same piece at once.
        let temporary = url.appendingPathComponent("tmp-\(WorkFolder.processTag)-" + name(gridRow, kind)).path
        try body(temporary)
        let final = url.appendingPathComponent(name(gridRow, kind)).path
        guard rename(temporary, final) == 0 else {
            throw GeoIOError(.writeFailed, path: final, message: String(cString: strerror(errno)), hint: "check the disk")
        }
    }

    /// Marks a band complete (after all its files are in place).
    func markDone(gridRow: Int) throws {
        let done = marker(gridRow).path
        let temporary = done + ".\(WorkFolder.processTag).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data()), rename(temporary, done) == 0 else {
            throw GeoIOError(.writeFailed, path: done, message: "cannot record progress", hint: "check the disk")
        }
    }

    /// The band files in row order.
    func bandFiles(_ grid: WindowGrid) -> (labels: [String], confidence: [String]) {
        let rows = grid.rowOrigins.indices.filter { !grid.finishedRows(afterGridRow: $0).isEmpty }
        return (rows.map { url.appendingPathComponent(name($0, "labels")).path },
                rows.map { url.appendingPathComponent(name($0, "confidence")).path })
    }

    /// Whether piece `piece` (a row band of a block, `BlockGrid.piece`) is complete.
    func isDone(piece: Int) -> Bool { FileManager.default.fileExists(atPath: marker(piece).path) }

    /// Path of a piece's file of `kind` ("labels", "confidence").
    func file(piece: Int, kind: String) -> String { url.appendingPathComponent(name(piece, kind)).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}
