import Foundation
import GeoIO
import SegCore
import Tiling

/// The proof that one piece of a job's work is complete: the name, byte size and SHA-256 of each of
/// its files, written as JSON to `<piece>.done` after the files are renamed into place.
///
/// A marker that does not decode (an empty `.done` of an older version, a torn write) or a file that
/// is missing, of another size or of other bytes than recorded makes the piece *damaged*: it is
/// computed again, never assembled. Row bands are pieces today; the block layout of "Any size"
/// keeps the same markers.
struct PieceMarker: Codable, Equatable {
    struct File: Codable, Equatable {
        var name: String
        var size: Int
        var sha256: String
    }

    var files: [File]

    /// The files `names` of `folder` as they are on disk now.
    static func record(_ names: [String], in folder: URL) throws -> PieceMarker {
        PieceMarker(files: try names.map { name in
            let path = folder.appendingPathComponent(name).path
            guard let bytes = FileManager.default.contents(atPath: path) else {
                throw GeoIOError(.writeFailed, path: path, message: "cannot read back the finished piece",
                                 hint: "check the disk")
            }
            return File(name: name, size: bytes.count, sha256: bytes.withUnsafeBytes { SHA256.hex($0) })
        })
    }

    /// Nil when every file in `folder` has its recorded size and digest; else what is wrong, in a phrase.
    func damage(in folder: URL) -> String? {
        for file in files {
            guard let bytes = FileManager.default.contents(atPath: folder.appendingPathComponent(file.name).path) else {
                return "\(file.name) is missing"
            }
            if bytes.count != file.size { return "\(file.name) has \(bytes.count) bytes, \(file.size) recorded" }
            if bytes.withUnsafeBytes({ SHA256.hex($0) }) != file.sha256 {
                return "\(file.name) has other bytes than recorded (SHA-256 differs)"
            }
        }
        return nil
    }
}

/// What a piece's marker says on resume.
enum PieceState: Equatable {
    /// Not marked done: still to compute.
    case pending
    /// Marked done, and every file is as recorded.
    case done
    /// Marked done but unusable (the phrase says why): to compute again.
    case damaged(String)
}

/// The hidden folder where a job keeps its finished pieces until the outputs are assembled:
/// `<output>/.aerialseg-work-<input stem>-<settings hash>/`. Each file of a piece is written under a
/// temporary name and renamed; a `<piece>.done` `PieceMarker`, written last, records the files' sizes
/// and digests. This is what makes a killed job resumable, and a damaged folder recomputed rather
/// than assembled.
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

    private func marker(_ piece: String) -> URL { url.appendingPathComponent(piece + ".done") }

    /// Writes file `name` of a piece through `body` (given a temporary path), then renames it into place.
    func write(_ name: String, _ body: (String) throws -> Void) throws {
        // Unique per process and host: two copies of a shard may write the same piece at once.
        let temporary = url.appendingPathComponent("tmp-\(WorkFolder.processTag)-" + name).path
        try body(temporary)
        let final = url.appendingPathComponent(name).path
        guard rename(temporary, final) == 0 else {
            throw GeoIOError(.writeFailed, path: final, message: String(cString: strerror(errno)), hint: "check the disk")
        }
    }

    /// Marks `piece` complete once its `files` are in place, recording their sizes and digests.
    func markDone(_ piece: String, files: [String]) throws {
        let done = marker(piece).path
        let temporary = done + ".\(WorkFolder.processTag).tmp"
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let contents = try encoder.encode(try PieceMarker.record(files, in: url))
        guard FileManager.default.createFile(atPath: temporary, contents: contents), rename(temporary, done) == 0 else {
            throw GeoIOError(.writeFailed, path: done, message: "cannot record progress", hint: "check the disk")
        }
    }

    /// Whether `piece` is pending, done and intact, or damaged.
    func state(of piece: String) -> PieceState {
        guard let contents = FileManager.default.contents(atPath: marker(piece).path) else { return .pending }
        guard let recorded = try? JSONDecoder().decode(PieceMarker.self, from: contents) else {
            // Not a marker this version wrote (an empty one of an older version, a torn write).
            return .damaged("its marker \(piece).done records no files")
        }
        return recorded.damage(in: url).map(PieceState.damaged) ?? .done
    }

    func remove() { try? FileManager.default.removeItem(at: url) }  // our own folder; a leftover is harmless
}

/// The row bands of a `WindowGrid` as pieces: `<row>.labels.tif`, `<row>.confidence.tif`, `<row>.done`.
extension WorkFolder {
    /// The piece of grid row `row` (six digits, so names sort in row order).
    static func band(_ row: Int) -> String { String(format: "%06d", row) }

    /// A band's file of one kind ("labels", "confidence").
    static func bandFile(_ row: Int, _ kind: String) -> String { "\(band(row)).\(kind).tif" }

    /// Grid rows 0..<rows are complete: their bands are on disk as recorded, or they finish no image
    /// rows. `damage` describes the first band that was marked done but failed verification (the
    /// resume starts there and computes it again).
    func completedGridRows(_ grid: WindowGrid) -> (rows: Int, damage: String?) {
        for row in grid.rowOrigins.indices where !grid.finishedRows(afterGridRow: row).isEmpty {
            switch state(of: Self.band(row)) {
            case .done: continue
            case .pending: return (row, nil)
            case .damaged(let why): return (row, "row band \(Self.band(row)) of the work folder \(url.path) is damaged "
                                                 + "(\(why)); computing it again")
            }
        }
        return (grid.rowOrigins.count, nil)
    }

    /// The band files in row order.
    func bandFiles(_ grid: WindowGrid) -> (labels: [String], confidence: [String]) {
        let rows = grid.rowOrigins.indices.filter { !grid.finishedRows(afterGridRow: $0).isEmpty }
        return (rows.map { url.appendingPathComponent(Self.bandFile($0, "labels")).path },
                rows.map { url.appendingPathComponent(Self.bandFile($0, "confidence")).path })
    }

    /// Whether piece number `piece` (a row band of a block, `BlockGrid.piece`) is done and intact.
    func isDone(piece: Int) -> Bool { state(of: Self.band(piece)) == .done }

    /// Path of a piece's file of `kind` ("labels", "confidence").
    func file(piece: Int, kind: String) -> String { url.appendingPathComponent(Self.bandFile(piece, kind)).path }
}
