import Foundation
import Testing
import TestSupport

/// `aerialseg run` cut into blocks and shards: whatever the block size, shard count, order or
/// concurrency, the outputs are the same bytes as one process's.
@Suite(.serialized) struct BlocksAndShardsTests {
    static let outputs = ["labels.tif", "labels.tif.aux.xml", "confidence.tif", "preview.png", "vectors.geojson"]

    /// The small fixture model (fast), hann blending, vectors as GeoJSON (plain text, so bytes compare).
    func pipeline(in dir: URL, crop: Int = 64, stride: Int = 48) throws -> String {
        let path = try RunCommandTests().smallPipeline(in: dir, crop: crop, stride: stride)
        let text = try String(contentsOfFile: path, encoding: .utf8) + "vectors: {format: geojson}\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    var checkpoint: String { RunCommandTests().checkpoint }

    /// Two real inputs, sizes no multiple of anything: a 260 × 220 piece of the orthophoto and a
    /// 230 × 250 piece of test_tiled.tif (small, so that the many runs stay fast).
    func inputs(in dir: URL) throws -> [String] {
        try [("piece", "rasters/ortho_10cm.tif", ["300", "200", "260", "220"]),
             ("other", "rasters/test_tiled.tif", ["100", "100", "230", "250"])].map { name, source, window in
            let path = dir.appendingPathComponent("\(name).tif").path
            let made = try Tool.run("gdal_translate", ["-q", "-srcwin"] + window + [Fixtures.local(source).path, path])
            try #require(made.status == 0, "\(made.stderr)")
            return path
        }
    }

    func run(_ pipeline: String, _ inputs: [String], _ out: String, _ extra: [String] = [],
             environment: [String: String]? = nil) throws -> ToolResult {
        try Tool.run(Tool.aerialseg, ["run", pipeline, "--input"] + inputs
                     + ["--output", out, "--checkpoint", checkpoint, "--quiet"] + extra, environment: environment)
    }

    /// Every output file of every input, by name.
    func files(_ out: String, _ inputs: [String]) throws -> [String: Data] {
        var all: [String: Data] = [:]
        for input in inputs {
            let stem = ((input as NSString).lastPathComponent as NSString).deletingPathExtension
            for name in Self.outputs {
                all["\(stem).\(name)"] = try Data(contentsOf: URL(fileURLWithPath: "\(out)/\(stem).\(name)"))
            }
        }
        return all
    }

    func expectSame(_ a: [String: Data], _ b: [String: Data], _ what: String) {
        #expect(a.keys.sorted() == b.keys.sorted())
        for (name, data) in a.sorted(by: { $0.key < $1.key }) { #expect(data == b[name], "\(name) differs: \(what)") }
    }

    /// Block sizes aligned to the stride or not, square or tall, give the bytes of the whole-image run.
    @Test func blockSizeChangesNothing() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-blocks")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = try pipeline(in: dir)
        let inputs = try inputs(in: dir)
        let reference = dir.appendingPathComponent("whole").path
        let whole = try run(pipeline, inputs, reference)
        try #require(whole.status == 0, "\(whole.stderr)")
        #expect(whole.stdout.contains("blocks: 1 of 260 × 220 pixels"), "\(whole.stdout)")
        #expect(whole.stdout.contains("recompute overhead 0.0 %"), "\(whole.stdout)")
        let expected = try files(reference, inputs)
        for size in ["96", "144x96", "100x70", "48x1024"] {
            let out = dir.appendingPathComponent("b\(size)").path
            let result = try run(pipeline, inputs, out, ["--block-size", size])
            try #require(result.status == 0, "\(result.stderr)")
            expectSame(expected, try files(out, inputs), "--block-size \(size)")
            let left = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix(".aerialseg") }
            #expect(left.isEmpty, "work folders removed: \(left)")
        }
    }

    /// Blocks of 4096 (the whole image), 2048 and 1024 on the 4096² mosaic of the orthophoto at crop
    /// 512 / stride 341 (hann blending, vectors): the same labels, confidence, preview and vector
    /// bytes. 1024-pixel blocks are three strides wide, so every block has border windows run twice.
    @Test func blockSizesOnTheOrthophotoMosaic() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-blocks-ortho")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = try pipeline(in: dir, crop: 512, stride: 341)
        let inputs = [try ClusterTools.mosaicAndSecondInput(in: dir)[0]]
        var reference: [String: Data]?
        for size in ["4096", "2048", "1024"] {
            let out = dir.appendingPathComponent("b\(size)").path
            let result = try run(pipeline, inputs, out, ["--block-size", size])
            try #require(result.status == 0, "\(result.stderr)")
            let blocks = (4096 / Int(size)!) * (4096 / Int(size)!)
            #expect(result.stdout.contains("blocks: \(blocks) of \(size) × \(size) pixels"), "\(result.stdout)")
            let produced = try files(out, inputs)
            if let reference { expectSame(reference, produced, "--block-size \(size)") } else { reference = produced }
        }
    }

    /// 3 shards one after another in a scrambled order, one of them twice, and `--shard auto` from
    /// Slurm's variables: the same bytes as one process. Only the shard finishing the last block
    /// assembles; the others say so and exit 0; a shard run after the assembly does nothing.
    /// Small pieces with small blocks (many blocks, narrow edge blocks), or the 4096² mosaic of the
    /// orthophoto and a second input at crop 512 with 1024-pixel blocks (17 blocks).
    func shardJob(in dir: URL, onMosaic: Bool, small block: String) throws -> (String, [String], [String]) {
        guard onMosaic else { return (try pipeline(in: dir), try inputs(in: dir), ["--block-size", block]) }
        return (try pipeline(in: dir, crop: 512, stride: 341), try ClusterTools.mosaicAndSecondInput(in: dir),
                ["--block-size", "1024"])
    }

    func stem(_ input: String) -> String { ((input as NSString).lastPathComponent as NSString).deletingPathExtension }

    @Test(arguments: [false, true])
    func shardsInSequence(onMosaic: Bool) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-shards")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (pipeline, inputs, block) = try shardJob(in: dir, onMosaic: onMosaic, small: "192x144")
        let reference = dir.appendingPathComponent("one").path
        let one = try run(pipeline, inputs, reference, block)
        try #require(one.status == 0, "\(one.stderr)")
        let expected = try files(reference, inputs)

        let out = dir.appendingPathComponent("sharded").path
        let slurm = ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"]
        for (step, shard) in ["1/3", "auto", "1/3"].enumerated() {
            let result = try run(pipeline, inputs, out, block + ["--shard", shard],
                                 environment: shard == "auto" ? slurm : nil)
            try #require(result.status == 0, "step \(step): \(result.stderr)")
            #expect(result.stdout.contains("assembly: left to the shard that finishes the last block"), "\(result.stdout)")
            #expect(!FileManager.default.fileExists(atPath: "\(out)/\(stem(inputs[0])).labels.tif"))
        }
        let last = try run(pipeline, inputs, out, block + ["--shard", "0/3"])
        try #require(last.status == 0, "\(last.stderr)")
        expectSame(expected, try files(out, inputs), "shards 1, 2 (auto), 1, 0")
        let again = try run(pipeline, inputs, out, block + ["--shard", "2/3"])
        try #require(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("assembly: already done"), "\(again.stdout)")
        #expect(again.stdout.contains(": 0 windows"), "nothing recomputed: \(again.stdout)")
        expectSame(expected, try files(out, inputs), "a shard run again after the assembly")
    }

    /// 3 shards started at once (child processes): the same bytes as one process; exactly one of them
    /// assembles each input.
    @Test(arguments: [false, true])
    func shardsAtOnce(onMosaic: Bool) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-shards-concurrent")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (pipeline, inputs, block) = try shardJob(in: dir, onMosaic: onMosaic, small: "96x192")
        let reference = dir.appendingPathComponent("one").path
        let one = try run(pipeline, inputs, reference, block)
        try #require(one.status == 0, "\(one.stderr)")

        let out = dir.appendingPathComponent("sharded").path
        let processes = try (0..<3).map { i -> (Process, URL) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Tool.aerialseg)
            process.arguments = ["run", pipeline, "--input"] + inputs
                + ["--output", out, "--checkpoint", checkpoint, "--quiet", "--shard", "\(i)/3"] + block
            let log = dir.appendingPathComponent("shard\(i).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            return (process, log)
        }
        var logs = ""
        for (process, log) in processes {
            process.waitUntilExit()
            let text = try String(contentsOf: log, encoding: .utf8)
            #expect(process.terminationStatus == 0, "\(text)")
            logs += text
        }
        expectSame(try files(reference, inputs), try files(out, inputs), "3 concurrent shards")
        for input in inputs {  // each input's outputs listed by exactly one shard
            #expect(logs.components(separatedBy: "/\(stem(input)).labels.tif\n").count - 1 == 1, "\(logs)")
        }
    }

    /// `--assemble-only`: an error naming the missing blocks while some are; once all are done but the
    /// assembly is claimed by a process elsewhere, it takes the claim over and assembles.
    @Test func assembleOnly() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-assemble")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = try pipeline(in: dir)
        let inputs = try inputs(in: dir)
        let block = ["--block-size", "192x144"]
        let reference = dir.appendingPathComponent("one").path
        try #require(try run(pipeline, inputs, reference, block).status == 0)

        let out = dir.appendingPathComponent("sharded").path
        try #require(try run(pipeline, inputs, out, block + ["--shard", "0/2"]).status == 0)
        let early = try run(pipeline, inputs, out, block + ["--assemble-only"])
        #expect(early.status == 1)
        #expect(early.stderr.contains("piece.tif: 2 of 4 blocks are not done"), "\(early.stderr)")
        // Another machine's process holds the claims: the last shard leaves the assembly to it.
        for work in try FileManager.default.contentsOfDirectory(atPath: out) where work.hasPrefix(".aerialseg-work-") {
            try "elsewhere 1\n".write(toFile: "\(out)/\(work)/assembly.claim", atomically: true, encoding: .utf8)
        }
        let last = try run(pipeline, inputs, out, block + ["--shard", "1/2"])
        try #require(last.status == 0, "\(last.stderr)")
        #expect(last.stdout.contains("assembly: being done by elsewhere 1"), "\(last.stdout)")
        let merge = try run(pipeline, inputs, out, block + ["--assemble-only"])
        try #require(merge.status == 0, "\(merge.stderr)")
        #expect(merge.stdout.contains(": 0 windows"), "\(merge.stdout)")
        expectSame(try files(reference, inputs), try files(out, inputs), "--assemble-only")
    }

    /// Bad `--shard` values and environments: one line each, exit 2, nothing run.
    @Test(arguments: [
        (["--shard", "3/3"], [String: String](), "--shard 3/3: shard index 3 is not in 0...2"),
        (["--shard", "0/0"], [:], "--shard 0/0: shard count 0 is less than 1"),
        (["--shard", "one"], [:], "--shard one: not a shard"),
        (["--shard", "auto"], [:], "--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set"),
        (["--shard", "auto"], ["JOB_COMPLETION_INDEX": "1"], "JOB_COMPLETION_INDEX is set but not AERIALSEG_SHARD_COUNT"),
        (["--shard", "auto"], ["SLURM_ARRAY_TASK_ID": "x"], "SLURM_ARRAY_TASK_ID=x is not a number"),
        (["--block-size", "0x5"], [:], "--block-size: 0x5 is not a positive size"),
        (["--memory-mb", "100"], [:], "--memory-mb 100: the model and one 64² window need about"),
    ])
    func badShardArguments(_ extra: [String], _ environment: [String: String], _ message: String) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-bad-shard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = try pipeline(in: dir)
        // Variables from a surrounding scheduler must not leak into the cases.
        var env = Dictionary(uniqueKeysWithValues: ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
                                                    "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                                                    "JOB_COMPLETION_INDEX", "AERIALSEG_SHARD_COUNT"].map { ($0, "") })
        env.merge(environment) { $1 }
        let result = try run(pipeline, [Fixtures.local("rasters/rgb1.tif").path], dir.appendingPathComponent("out").path,
                             extra, environment: env)
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("aerialseg: error: ") && lines[0].contains(message),
                "\(result.stderr)")
    }
}

extension BlocksAndShardsTests {
    /// A shard killed with SIGKILL mid-block (after its 2nd row band, by the test hook; blocks of 144
    /// rows at stride 48 have 3 bands), then run again: resumes inside the block; same bytes.
    @Test func shardKilledMidBlockResumes() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-shard-kill")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = try pipeline(in: dir)
        let inputs = try inputs(in: dir)
        let block = ["--block-size", "192x144"]
        let reference = dir.appendingPathComponent("one").path
        try #require(try run(pipeline, inputs, reference, block).status == 0)

        let out = dir.appendingPathComponent("sharded").path
        try #require(try run(pipeline, inputs, out, block + ["--shard", "1/2"]).status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Tool.aerialseg)
        process.arguments = ["run", pipeline, "--input"] + inputs
            + ["--output", out, "--checkpoint", checkpoint, "--quiet", "--shard", "0/2"] + block
        process.environment = ProcessInfo.processInfo.environment.merging(["AERIALSEG_TEST_PAUSE_AFTER_BANDS": "2"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let paused = "\(out)/.aerialseg-test-paused"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: paused) && process.isRunning && Date() < deadline { usleep(20_000) }
        try #require(FileManager.default.fileExists(atPath: paused), "the shard did not reach the hook")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try FileManager.default.removeItem(atPath: paused)
        #expect(!FileManager.default.fileExists(atPath: "\(out)/piece.labels.tif"))

        let again = try run(pipeline, inputs, out, block + ["--shard", "0/2"])
        try #require(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("resumed after 2 row bands"), "\(again.stdout)")
        expectSame(try files(reference, inputs), try files(out, inputs), "a shard killed mid-block, run again")
    }
}
