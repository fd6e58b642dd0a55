import Foundation
import GeoIO
import Testing
import TestSupport

/// Where `run` gets its weights: the pipeline's `checkpoint:` (checked against
/// `checkpoint_sha256:`), `--checkpoint`, or `--random-weights` — never silently random.
@Suite(.serialized) struct WeightsCommandTests {
    let potsdamFixture = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")
    var narrowCheckpoint: String { potsdamFixture.appendingPathComponent("checkpoint.pth").path }
    var treeCanopyPipeline: String { Fixtures.packageRoot.appendingPathComponent("Pipelines/tree-canopy.yaml").path }

    /// A 256² window of the demo orthophoto (small enough for a debug build).
    func smallOrtho(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("ortho256.tif").path
        let cut = try Tool.run("gdal_translate", ["-q", "-srcwin", "1500", "900", "256", "256",
                                                  Fixtures.local("rasters/ortho_10cm.tif").path, path])
        try #require(cut.status == 0, "\(cut.stderr)")
        return path
    }

    /// A copy of the demo pipeline with its `checkpoint:` lines replaced by `lines`.
    func demoPipeline(in dir: URL, _ lines: [String]) throws -> String {
        let text = try String(contentsOfFile: treeCanopyPipeline, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("checkpoint") }
            .joined(separator: "\n")
        let path = dir.appendingPathComponent("demo-\(UUID().uuidString.prefix(8)).yaml").path
        try (lines.joined(separator: "\n") + "\n" + text).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    var demoCheckpoint: String {
        Fixtures.packageRoot.appendingPathComponent("Examples/tree-canopy/tree_canopy_dlv3p_r18w32.pth").path
    }

    @Test("the pipeline's checkpoint: gives the same bytes as --checkpoint")
    func pipelineNamesItsWeights() throws {
        let dir = Fixtures.temporaryDirectory("weights-named")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try smallOrtho(in: dir)
        let a = dir.appendingPathComponent("a").path, b = dir.appendingPathComponent("b").path
        let named = try Tool.run(Tool.aerialseg, ["run", treeCanopyPipeline, "--input", input, "--output", a, "--quiet"])
        try #require(named.status == 0, "\(named.stderr)")
        let given = try Tool.run(Tool.aerialseg, ["run", treeCanopyPipeline, "--input", input, "--output", b,
                                                  "--checkpoint", demoCheckpoint, "--quiet"])
        try #require(given.status == 0, "\(given.stderr)")
        let labelsA = try Data(contentsOf: URL(fileURLWithPath: a + "/ortho256.labels.tif"))
        let labelsB = try Data(contentsOf: URL(fileURLWithPath: b + "/ortho256.labels.tif"))
        #expect(labelsA == labelsB)
        let ids = try Dataset(path: a + "/ortho256.labels.tif").readBytes(PixelWindow(x: 0, y: 0, width: 256, height: 256))
        #expect(Set(ids).count > 1, "a trained model finds both classes here")
        let info = try Tool.gdalinfoJSON(a + "/ortho256.labels.tif")
        let metadata = (info["metadata"] as? [String: Any])?[""] as? [String: String]
        let sha = try Tool.run("sha256sum", [demoCheckpoint]).stdout.prefix(64)
        #expect(metadata?["AERIALSEG_WEIGHTS"] == "tree_canopy_dlv3p_r18w32.pth sha256:\(sha)")
    }

    @Test("no weights, or weights with another SHA-256: exit 2, one line, nothing written")
    func refusedWithoutWeights() throws {
        let dir = Fixtures.temporaryDirectory("weights-none")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try smallOrtho(in: dir)
        // The message names the file's actual SHA-256 (computed here, so retraining the demo needs no edit).
        let actual = try Tool.run("sha256sum", [demoCheckpoint]).stdout.prefix(8)
        try #require(actual.count == 8)
        let cases: [(pipeline: String, expect: String)] = [
            (try demoPipeline(in: dir, []), "the pipeline names no weights (add 'checkpoint: FILE'"),
            (try demoPipeline(in: dir, ["checkpoint: \(demoCheckpoint)", "checkpoint_sha256: " + String(repeating: "ab", count: 32)]),
             "\(demoCheckpoint): SHA-256 \(actual)"),
            (try demoPipeline(in: dir, ["checkpoint: missing.pth"]), "missing.pth: cannot read the file"),
            (try demoPipeline(in: dir, ["checkpoint: x.pth", "checkpoint_sha256: 1234"]), "is not 64 hex digits"),
        ]
        for (pipeline, expected) in cases {
            let out = dir.appendingPathComponent("out").path
            let result = try Tool.run(Tool.aerialseg, ["run", pipeline, "--input", input, "--output", out])
            #expect(result.status == 2)
            #expect(result.stderr.hasPrefix("aerialseg: error: ") && result.stderr.contains(expected), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "nothing is written")
        }
    }

    @Test("--random-weights says so and marks the outputs")
    func randomWeightsAreMarked() throws {
        let dir = Fixtures.temporaryDirectory("weights-random")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try smallOrtho(in: dir)
        let out = dir.appendingPathComponent("out").path
        let result = try Tool.run(Tool.aerialseg, ["run", try demoPipeline(in: dir, []), "--input", input,
                                                   "--output", out, "--random-weights", "--quiet"])
        try #require(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("aerialseg: note: --random-weights: the model has random weights"))
        for name in ["ortho256.labels.tif", "ortho256.confidence.tif"] {
            let info = try Tool.gdalinfoJSON(out + "/" + name)
            let metadata = (info["metadata"] as? [String: Any])?[""] as? [String: String]
            #expect(metadata?["AERIALSEG_WEIGHTS"]?.hasPrefix("random: ") == true, "\(name): \(metadata ?? [:])")
        }
        let both = try Tool.run(Tool.aerialseg, ["run", treeCanopyPipeline, "--input", input, "--output", out,
                                                 "--random-weights", "--checkpoint", demoCheckpoint])
        #expect(both.status == 2 && both.stderr.split(separator: "\n").count == 1, "\(both.stderr)")
    }

    @Test("a narrower checkpoint of the pipeline's architecture runs, with one notice listing the widths")
    func narrowCheckpointWithFullSizePipeline() throws {
        let dir = Fixtures.temporaryDirectory("weights-narrow")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = Fixtures.packageRoot
            .appendingPathComponent("Pipelines/deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.yaml").path
        let out = dir.appendingPathComponent("out").path
        let result = try Tool.run(Tool.aerialseg, ["run", pipeline, "--input", Fixtures.local("rasters/rgb1.tif").path,
                                                   "--output", out, "--checkpoint", narrowCheckpoint, "--crop", "128",
                                                   "--stride", "96"])
        try #require(result.status == 0, "\(result.stderr)")
        let notes = result.stderr.split(separator: "\n").filter { $0.hasPrefix("aerialseg: note: ") }
        #expect(notes.count == 1, "\(result.stderr)")
        let note = String(notes.first ?? "")
        for change in ["backbone.base_channels 64 → 4", "decode_head.channels 128 → 8", "decode_head.c1_channels 12 →"] {
            #expect(note.contains(change), "\(note)")
        }
        #expect(FileManager.default.fileExists(atPath: out + "/rgb1.labels.tif"))
    }

    @Test("a checkpoint of another architecture: one line naming the key, with both shapes")
    func trueMisfitNamesTheKey() throws {
        let dir = Fixtures.temporaryDirectory("weights-misfit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = Fixtures.packageRoot
            .appendingPathComponent("Pipelines/deeplabv3plus_r50-d8_4xb4-80k_potsdam-512x512.yaml").path
        let result = try Tool.run(Tool.aerialseg, ["run", pipeline, "--input", Fixtures.local("rasters/rgb1.tif").path,
                                                   "--output", dir.appendingPathComponent("out").path,
                                                   "--checkpoint", narrowCheckpoint])
        #expect(result.status == 2)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        // R-50's bottleneck blocks have conv1 as a 1×1 conv where R-18's basic block has a 3×3 one.
        #expect(result.stderr.contains("\(narrowCheckpoint): does not fit the pipeline's model: weights: "), "\(result.stderr)")
        #expect(result.stderr.contains("'backbone.layer1.0."), "\(result.stderr)")
    }

    @Test("bench labels random weights in its report")
    func benchLabelsRandomWeights() throws {
        let dir = Fixtures.temporaryDirectory("weights-bench")
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try Tool.run(Tool.aerialseg, ["bench", try demoPipeline(in: dir, []), "--size", "64", "--runs", "1"])
        try #require(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("random (--checkpoint for real ones) weights"), "\(result.stdout)")
    }

    @Test("usage errors: one line, exit 2", arguments: [
        ["run", "--input", "x.tif", "--output", "o"],
        ["run", "p.yaml", "--input", "x.tif", "--output", "o", "--blend", "median"],
        ["frobnicate"],
        ["bench"],
    ])
    func usageErrorsAreOneLine(_ arguments: [String]) throws {
        let result = try Tool.run(Tool.aerialseg, arguments)
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("aerialseg: error: "), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        let help = try Tool.run(Tool.aerialseg, ["run", "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE"))
    }
}
