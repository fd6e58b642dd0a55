import Foundation
import Testing
import TestSupport

/// The server checks what `run` checks up front, through the same code (`SegmentationJob.preflight`
/// per submitted raster, `checkModelMemory` per model at start-up), and answers with `run`'s line:
/// 413 for what does not fit the memory budget, 422 for what cannot be read.
@Suite(.serialized) struct ServicePreflightTests {
    /// Large enough for the small model's 128² window (65 MiB); once small enough that a
    /// 40000-pixel-wide raster's whole-width rows (≈ 250 MiB) did not fit, before blocks.
    static let budget = "100M"

    /// `aerialseg run`'s error line for `input` (relative to `root`, run from there) under the budget.
    func runLine(_ pipeline: String, input: String, root: URL, budget: String = budget, fails: Bool = true) throws
        -> String {
        let out = root.deletingLastPathComponent().appendingPathComponent("run-\(UUID().uuidString.prefix(6))")
        let r = try Tool.run("/usr/bin/env", ["AERIALSEG_MEMORY_BUDGET=\(budget)", "sh", "-c",
                                              "cd \"$0\" && exec \"$@\"", root.path, Tool.aerialseg, "run", pipeline,
                                              "--input", input, "--output", out.path, "--quiet"])
        #expect((r.status != 0) == fails, "\(r.stderr)")
        return r.stderr.split(separator: "\n").last.map(String.init) ?? ""
    }

    @Test func aWideRasterRunsInBlocksAnUnreadableOneGetsRunsLine() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-preflight")
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = dir.appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        // 40000 × 300 pixels, georeferenced, all blocks sparse: a few KiB on disk, too wide for the budget.
        let wide = root.appendingPathComponent("wide.tif")
        let made = try Tool.run("gdal_create", ["-q", "-of", "GTiff", "-outsize", "40000", "300", "-bands", "3",
                                                "-ot", "Byte", "-a_srs", "EPSG:32633", "-a_ullr", "500000", "5000030",
                                                "504000", "5000000", "-co", "TILED=YES", "-co", "SPARSE_OK=TRUE",
                                                wide.path])
        try #require(made.status == 0, "\(made.stderr)")
        // A real GeoTIFF cut short: its header opens, its pixels do not read.
        let crop = try Data(contentsOf: try ServiceFixtures.orthoCrop(256, in: dir))
        let cut = root.appendingPathComponent("cut.tif")
        try crop.prefix(crop.count / 3).write(to: cut)

        let pipeline = try ServiceFixtures.smallPipeline(in: dir)
        let s = try ServerProcess([pipeline, "--inputs-root", root.path, "--max-sync-pixels", "100000000"],
                                  data: dir.appendingPathComponent("data"),
                                  environment: ["AERIALSEG_MEMORY_BUDGET": Self.budget])
        let json = [("Content-Type", "application/json")]
        // Too wide for whole-width rows once; now blocks keep it within the budget, in `run` and in a job.
        _ = try runLine(pipeline, input: "wide.tif", root: root, fails: false)
        let accepted = try s.request("POST", "/v1/jobs?model=small", headers: json,
                                     body: Data(#"{"input": "wide.tif"}"#.utf8))
        #expect(accepted.status == 202, "wide.tif: \(accepted.text.prefix(300))")
        for (name, status) in [("cut.tif", 422)] {
            let line = try runLine(pipeline, input: name, root: root)
            #expect(line.hasPrefix("aerialseg: error: \(name): "), "\(line)")
            let body = Data(#"{"input": "\#(name)"}"#.utf8)
            for path in ["/v1/jobs?model=small", "/v1/models/small/predict"] {
                let reply = try s.request("POST", path, headers: json, body: body)
                #expect(reply.status == status, "\(path) \(name): \(reply.status) \(reply.text.prefix(300))")
                #expect(try reply.json()["error"] as? String == line, "\(path) \(name)")
            }
            // The same bytes uploaded: the same line, with the upload's name for the file.
            let form = RawHTTP.multipart(try Data(contentsOf: root.appendingPathComponent(name)), name: name)
            let upload = try s.request("POST", "/v1/jobs?model=small", headers: [("Content-Type", form.contentType)],
                                       body: form.body)
            #expect(upload.status == status, "upload \(name): \(upload.text.prefix(300))")
            #expect(try upload.json()["error"] as? String == line, "upload \(name)")
        }
        #expect(try s.request("GET", "/v1/jobs").json()["total"] as? Int == 1, "only wide.tif's job was queued")
        #expect(s.stop(SIGTERM) == 0)
    }

    /// A model whose window does not fit the budget is refused at start-up, with `run`'s line.
    @Test func aModelOverTheBudgetStopsTheStart() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-preflight-model")
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = dir.appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: try ServiceFixtures.orthoCrop(256, in: dir),
                                         to: root.appendingPathComponent("ortho.tif"))
        // A 4096² crop through the model is far over the budget (its 128² crop fits).
        let pipeline = try ServiceFixtures.smallPipeline(in: dir, crop: 4096, stride: 4000)
        let line = try runLine(pipeline, input: "ortho.tif", root: root)
        #expect(line.contains("memory budget"), "\(line)")
        let serve = try Tool.run("/usr/bin/env", ["AERIALSEG_MEMORY_BUDGET=\(Self.budget)", Tool.aerialseg, "serve",
                                                  pipeline, "--data", dir.appendingPathComponent("data").path,
                                                  "--port", "0"])
        #expect(serve.status == 2)
        #expect(serve.stderr.split(separator: "\n").last.map(String.init) == line, "\(serve.stderr)")
    }
}
