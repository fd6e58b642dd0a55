import Foundation
import GeoIO
import Testing
import TestSupport

/// An mmengine runner checkpoint (`iter_150.pth`, written by mmseg's real Runner, with optimizer,
/// message hub and param schedulers) runs with no pipeline file: the pipeline comes from the
/// config text and dataset meta it carries. Oracle: mmseg 1.2.2's `inference_model` on an unseen
/// orthophoto window (Tests/Fixtures/mmseg-runner, made by make_fixture.py).
@Suite struct RunnerCheckpointTests {
    let fixture = Fixtures.local("mmseg-runner")
    var checkpoint: String { fixture.appendingPathComponent("iter_150.pth").path }

    @Test("run --checkpoint iter_N.pth alone = mmseg inference_model (≥ 99.9 % of labels off near-ties)")
    func runsWithoutAPipeline() throws {
        let oracle = try OracleFixture(folder: fixture).json
        let window = oracle["window"] as! [String: Any]
        let (x, y, w, h) = (window["x"] as! Int, window["y"] as! Int, window["width"] as! Int, window["height"] as! Int)
        let dir = Fixtures.temporaryDirectory("runner-checkpoint")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("unseen.tif").path
        let source = Fixtures.packageRoot.appendingPathComponent(window["source"] as! String).path
        let cut = try Tool.run("gdal_translate", ["-q", "-srcwin", "\(x)", "\(y)", "\(w)", "\(h)", source, input])
        try #require(cut.status == 0, "\(cut.stderr)")
        let out = dir.appendingPathComponent("out").path
        let run = try Tool.run(Tool.aerialseg, ["run", "--checkpoint", checkpoint, "--input", input, "--output", out,
                                                "--quiet"])
        try #require(run.status == 0, "\(run.stderr)")
        #expect(!run.stderr.contains("note:"), "the runner's config fits its weights exactly: \(run.stderr)")

        let whole = PixelWindow(x: 0, y: 0, width: w, height: h)
        let ours = try Dataset(path: out + "/unseen.labels.tif").readBytes(whole)
        let mmseg = try Dataset(path: fixture.appendingPathComponent("oracle_labels.png").path).readBytes(whole)
        let tie = try Dataset(path: fixture.appendingPathComponent("oracle_near_tie.png").path).readBytes(whole)
        var compared = 0, equal = 0
        for i in 0..<(w * h) where tie[i] == 0 {
            compared += 1
            if ours[i] == mmseg[i] { equal += 1 }
        }
        #expect(compared > w * h * 99 / 100, "near-ties are rare")
        #expect(mmseg.filter { $0 == 1 }.count > w * h / 20, "the oracle finds trees, so agreement is not trivial")
        #expect(Double(equal) / Double(compared) >= 0.999, "\(equal) of \(compared) labels equal")

        // Class names and palette come from the checkpoint's dataset_meta; tiling from its test_cfg.
        let info = try Tool.gdalinfoJSON(out + "/unseen.labels.tif")
        let band = (info["bands"] as! [[String: Any]])[0]
        #expect(band["categories"] as? [String] == ["background", "tree"])
        let colours = ((band["colorTable"] as? [String: Any])?["entries"] as? [[Int]])?.prefix(2).map { $0 }
        #expect(colours == [[0, 0, 0, 255], [0, 160, 0, 255]])
    }

    @Test("inspect shows the pipeline the checkpoint alone runs")
    func inspectShowsThePipeline() throws {
        let text = try Tool.run(Tool.aerialseg, ["inspect", checkpoint])
        try #require(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("what 'aerialseg run --checkpoint"), "\(text.stdout)")
        let json = try Tool.run(Tool.aerialseg, ["inspect", checkpoint, "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [[String: Any]]
        let pipeline = try #require(report.first?["pipeline"] as? [String: Any])
        #expect((pipeline["tiling"] as? [String: Any])?["crop"] as? Int == 256)
        #expect((pipeline["tiling"] as? [String: Any])?["stride"] as? Int == 171)
        #expect(pipeline["classes"] as? [String] == ["background", "tree"])
        let backbone = (pipeline["model"] as? [String: Any])?["backbone"] as? [String: Any]
        #expect(backbone?["base_channels"] as? Int == 16)
        let sha = try Tool.run("sha256sum", [checkpoint]).stdout.prefix(64)
        #expect(report.first?["sha256"] as? String == String(sha))
    }

    @Test("a checkpoint without a config cannot run alone: one line saying how to give a pipeline")
    func plainStateDictNeedsAPipeline() throws {
        let plain = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam/weights.safetensors").path
        let dir = Fixtures.temporaryDirectory("runner-plain")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path
        let run = try Tool.run(Tool.aerialseg, ["run", "--checkpoint", plain, "--input",
                                                Fixtures.local("rasters/rgb1.tif").path, "--output", out])
        #expect(run.status == 2)
        #expect(run.stderr.hasPrefix("aerialseg: error: \(plain): carries no training config"), "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
