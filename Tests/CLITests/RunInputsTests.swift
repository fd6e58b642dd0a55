import Foundation
import Testing
import TestSupport

/// Which files `run` takes as inputs and which names their outputs get.
@Suite(.serialized) struct RunInputsTests {
    /// `--input DIR --output DIR`, twice: the second run does not take the first one's labels,
    /// confidence and preview as inputs (before: "3 of 3 inputs done" with outputs of outputs).
    @Test(arguments: ["same", "nested", "pattern"])
    func ownOutputsAreNotInputs(_ layout: String) throws {
        let fixture = try RunFixture("aerialseg-own-outputs", size: 128)
        defer { fixture.remove() }
        let folder = fixture.dir.appendingPathComponent("tiles")
        _ = try RunFixture.orthoCrop(128, in: folder, name: "tile.tif")
        let out = layout == "nested" ? folder.appendingPathComponent("out").path : folder.path
        let input = layout == "pattern" ? folder.path + "/*.*" : folder.path
        for pass in 1...2 {
            let r = try fixture.run(out, inputs: [input])
            try #require(r.status == 0, "pass \(pass): \(r.stderr)")
            #expect(!r.stdout.contains("inputs done"), "pass \(pass): one input, no summary line: \(r.stdout)")
            #expect(r.stdout.hasPrefix(folder.appendingPathComponent("tile.tif").path), "\(r.stdout)")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: out).filter { !$0.hasPrefix(".") }
        #expect(!names.contains { $0.contains(".labels.labels") || $0.contains(".preview.labels") }, "\(names)")
        #expect(Set(names.filter { $0.hasSuffix(".labels.tif") }) == ["tile.labels.tif"], "\(names)")
    }

    /// A folder holding only outputs of `run` is an error saying so, not a run over them.
    @Test func folderOfOutputsOnlyIsRefused() throws {
        let fixture = try RunFixture("aerialseg-outputs-only", size: 128)
        defer { fixture.remove() }
        let out = fixture.dir.appendingPathComponent("out").path
        try #require(try fixture.run(out).status == 0)
        let again = try fixture.run(fixture.dir.appendingPathComponent("out2").path, inputs: [out])
        #expect(again.status == 2)
        #expect(again.stderr == "aerialseg: error: \(out): the folder holds only outputs of aerialseg run (expected "
                + ".tif, .vrt, .jp2, ... files other than *.labels.tif, *.confidence.tif, *.preview.png)\n")
    }

    /// `a/x.tif` and `b/x.tif` (or `x.tif` and `x.vrt`) would write the same `x.*` outputs: refused
    /// before any work with exit 2, naming both (before: the second overwrote the first, "2 of 2 done").
    @Test(arguments: ["folders", "extensions"])
    func sameStemInputsAreRefused(_ layout: String) throws {
        let fixture = try RunFixture("aerialseg-same-stem", size: 128)
        defer { fixture.remove() }
        let first = try RunFixture.orthoCrop(128, in: fixture.dir, name: "a/x.tif").path
        let second: String
        if layout == "folders" {
            second = try RunFixture.orthoCrop(96, in: fixture.dir, name: "b/x.tif").path
        } else {
            second = fixture.dir.appendingPathComponent("a/x.vrt").path
            try #require(try Tool.run("gdal_translate", ["-q", "-of", "VRT", first, second]).status == 0)
        }
        let out = fixture.dir.appendingPathComponent("out").path
        let r = try fixture.run(out, inputs: [first, second])
        #expect(r.status == 2)
        #expect(r.stderr == "aerialseg: error: \(second): its outputs (x.labels.tif, x.confidence.tif, …) would "
                + "overwrite those of \(first): outputs are named after the file name without its extension "
                + "(rename one of them, or run them into separate output folders)\n")
        #expect(!FileManager.default.fileExists(atPath: out), "nothing written")
    }

    /// The same file named twice (a folder and a file in it) is one input.
    @Test func sameFileTwiceIsOneInput() throws {
        let fixture = try RunFixture("aerialseg-twice", size: 128)
        defer { fixture.remove() }
        let folder = fixture.dir.appendingPathComponent("tiles")
        let tile = try RunFixture.orthoCrop(128, in: folder, name: "t.tif").path
        let r = try fixture.run(fixture.dir.appendingPathComponent("out").path, inputs: [folder.path, tile])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("inputs done"), "\(r.stdout)")
    }
}

/// Two runs of one job into one output folder: the second stops at once, naming the first.
@Suite(.serialized) struct RunLockTests {
    /// The first run is paused (by the test hook) while holding its lock; the second run of the
    /// same job exits 1 with one line naming the holder's pid and host and the lock to remove; the
    /// first then finishes normally (before: the second raced the first's work folder).
    @Test func secondRunOfTheSameJobStopsAtOnce() throws {
        let fixture = try RunFixture("aerialseg-lock", size: 256)
        defer { fixture.remove() }
        let out = fixture.dir.appendingPathComponent("out").path
        let first = try fixture.startPaused(out, afterBands: 1)
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let second = try fixture.run(out)
        #expect(second.status == 1)
        var name = [CChar](repeating: 0, count: 256)
        try #require(gethostname(&name, name.count) == 0)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let lines = second.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(second.stderr)")
        #expect(second.stderr.hasPrefix("aerialseg: error: \(fixture.input): another aerialseg run (pid "
                                        + "\(first.processIdentifier) on host \(host)"), "\(second.stderr)")
        #expect(second.stderr.contains("remove \(out)/.aerialseg-lock-\(fixture.stem))"), "\(second.stderr)")
        FileManager.default.createFile(atPath: "\(out)/.aerialseg-test-continue", contents: Data())
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: "\(out)/\(fixture.stem).labels.tif"))
        #expect(!FileManager.default.fileExists(atPath: "\(out)/.aerialseg-lock-\(fixture.stem)"), "released")
    }

    /// A lock left by a run that was killed on this host is stale: the next run takes it over.
    /// One from another host cannot be judged: refused, naming that host.
    @Test func staleLockIsTakenOverForeignOneIsNot() throws {
        let fixture = try RunFixture("aerialseg-stale-lock", size: 128)
        defer { fixture.remove() }
        let out = fixture.dir.appendingPathComponent("out").path
        try fixture.killedRun(out, afterBands: 1)
        #expect(FileManager.default.fileExists(atPath: "\(out)/.aerialseg-lock-\(fixture.stem)"), "left by kill -9")
        let again = try fixture.run(out)
        #expect(again.status == 0, "\(again.stderr)")

        let lock = "\(out)/.aerialseg-lock-\(fixture.stem)"
        try #"{"host":"elsewhere.example","pid":4242,"since":"2026-01-01T00:00:00Z"}"#
            .write(toFile: lock, atomically: true, encoding: .utf8)
        let foreign = try fixture.run(out)
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("(pid 4242 on host elsewhere.example, since 2026-01-01T00:00:00Z)"),
                "\(foreign.stderr)")
        #expect(FileManager.default.fileExists(atPath: lock), "never removed")
    }
}
