import Foundation
import Testing
import TestSupport

/// Resuming a killed `run`: from the bands its work folder proves complete, to the bytes of an
/// uninterrupted run; a damaged folder is computed again, never assembled.
@Suite(.serialized) struct ResumeTests {
    /// kill -9 at a known point (the pause hook after 4 row bands), run again: identical bytes.
    @Test func killedAfterFourBandsResumesToIdenticalBytes() throws {
        let fixture = try RunFixture("aerialseg-resume")
        defer { fixture.remove() }
        let reference = fixture.dir.appendingPathComponent("reference").path
        let clean = try fixture.run(reference)
        try #require(clean.status == 0, "\(clean.stderr)")
        let resumed = fixture.dir.appendingPathComponent("resumed").path
        try fixture.killedRun(resumed, afterBands: 4)
        #expect(!FileManager.default.fileExists(atPath: "\(resumed)/\(fixture.stem).labels.tif"),
                "nothing under a final name before completion")
        let again = try fixture.run(resumed)
        try #require(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("resumed after 4 row bands"), "\(again.stdout)")
        #expect(try fixture.outputs(resumed) == fixture.outputs(reference))
        #expect(try fixture.outputs(reference).count == 4)
    }

    enum Damage: String, CaseIterable, Sendable {
        case deleted, emptied, truncated, corrupted, confidenceDeleted, oldEmptyMarker
    }

    /// A band file whose `.done` remains but which was deleted, emptied, truncated or had bytes
    /// changed (or a marker of an older version, which proves nothing): the run notes it on one line,
    /// computes that band again and ends with the bytes of an uninterrupted run. Before: a deleted or
    /// emptied band gave a strip of 255 labels with exit 0; a truncated or corrupted one failed with
    /// raw GDAL lines on every re-run.
    @Test(arguments: Damage.allCases)
    func damagedBandIsComputedAgain(_ damage: Damage) throws {
        let fixture = try RunFixture("aerialseg-damage")
        defer { fixture.remove() }
        let reference = fixture.dir.appendingPathComponent("reference").path
        try #require(try fixture.run(reference).status == 0)
        let out = fixture.dir.appendingPathComponent("out").path
        try fixture.killedRun(out, afterBands: 4)
        let work = try fixture.workFolder(out)
        let fm = FileManager.default
        let markers = try fm.contentsOfDirectory(atPath: work.path).filter { $0.hasSuffix(".done") }.sorted()
        try #require(markers.count >= 3, "\(markers)")
        let band = String(markers[1].dropLast(".done".count))
        let labels = work.appendingPathComponent("\(band).labels.tif").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: labels))
        switch damage {
        case .deleted: try fm.removeItem(atPath: labels)
        case .emptied: try Data().write(to: URL(fileURLWithPath: labels))
        case .truncated: try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: labels))
        case .corrupted:
            var changed = bytes
            for i in stride(from: bytes.count / 2, to: min(bytes.count, bytes.count / 2 + 64), by: 1) { changed[i] ^= 0x5A }
            try changed.write(to: URL(fileURLWithPath: labels))
        case .confidenceDeleted: try fm.removeItem(at: work.appendingPathComponent("\(band).confidence.tif"))
        case .oldEmptyMarker: try Data().write(to: work.appendingPathComponent(markers[1]))
        }
        let again = try fixture.run(out, extra: [])
        #expect(again.status == 0, "\(again.stderr)")
        let notes = again.stderr.split(separator: "\n").filter { $0.contains("aerialseg: note:") && $0.contains("damaged") }
        #expect(notes.count == 1, "\(again.stderr)")
        #expect(notes.first?.contains("row band \(band)") == true, "\(again.stderr)")
        #expect(!again.stderr.contains("ERROR"), "\(again.stderr)")
        #expect(again.stdout.contains("resumed after 1 row bands"), "\(again.stdout)")
        #expect(try fixture.outputs(out) == fixture.outputs(reference), "the damaged band was computed again")
    }

    /// A retrained checkpoint at the same path (other bytes, same shapes) does not resume onto the
    /// bands of the old one: the key holds the checkpoint's SHA-256, not its path.
    @Test func retrainedCheckpointAtTheSamePathStartsAfresh() throws {
        let original = try OracleFixture.small().folder.appendingPathComponent("weights.safetensors")
        let scratch = Fixtures.temporaryDirectory("aerialseg-retrained")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let checkpoint = scratch.appendingPathComponent("model.safetensors")
        try FileManager.default.copyItem(at: original, to: checkpoint)
        let fixture = try RunFixture("aerialseg-retrained-run", checkpoint: checkpoint.path)
        defer { fixture.remove() }
        let out = fixture.dir.appendingPathComponent("out").path
        try fixture.killedRun(out, afterBands: 4)

        // "Retrain": the same tensors with the class-3 (tree) bias raised, written at the same path.
        try Self.raiseBias(of: checkpoint, key: "decode_head.conv_seg.bias", index: 3, by: 4)
        let reference = fixture.dir.appendingPathComponent("reference").path
        try #require(try fixture.run(reference).status == 0)
        let again = try fixture.run(out)
        try #require(again.status == 0, "\(again.stderr)")
        #expect(!again.stdout.contains("resumed after"), "\(again.stdout)")
        #expect(try fixture.outputs(out) == fixture.outputs(reference))
    }

    /// oneDNN's sums differ in the last bits between thread counts (README "The resume key"), so
    /// bands computed with 2 threads are not resumed by a run with 1: it starts afresh.
    @Test func otherThreadCountStartsAfresh() throws {
        let fixture = try RunFixture("aerialseg-threads")
        defer { fixture.remove() }
        let out = fixture.dir.appendingPathComponent("out").path
        try fixture.killedRun(out, afterBands: 4)
        let again = try fixture.run(out, extra: ["--quiet", "--threads", "1"])
        try #require(again.status == 0, "\(again.stderr)")
        #expect(!again.stdout.contains("resumed after"), "\(again.stdout)")
    }

    /// Adds `delta` to element `index` of float32 tensor `key` of a safetensors file, in place.
    static func raiseBias(of file: URL, key: String, index: Int, by delta: Float) throws {
        var bytes = try Data(contentsOf: file)
        let headerLength = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        let entry = try #require(header[key] as? [String: Any], "no \(key) in \(file.path)")
        #expect(entry["dtype"] as? String == "F32")
        let offsets = entry["data_offsets"] as! [Int]
        let at = 8 + headerLength + offsets[0] + 4 * index
        var value = bytes.subdata(in: at..<(at + 4)).withUnsafeBytes { $0.loadUnaligned(as: Float.self) }
        value += delta
        withUnsafeBytes(of: value) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
        try bytes.write(to: file)
    }
}
