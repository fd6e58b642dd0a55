import Foundation
import GeoIO
import Testing
import TestSupport

/// `--precision bf16` with trained weights (random weights give near ties everywhere, so they test
/// nothing): the tree-canopy demo model on its OAM-TCD orthophoto and on the unseen Manila tile.
/// Where the CPU runs bf16, labels agree with f32 on ≥ 99.5 % of the valid pixels and the outputs
/// do differ (bf16 really ran); where it cannot, `run` says so in one line and the bytes are f32's.
@Suite struct PrecisionTests {
    let example = Fixtures.packageRoot.appendingPathComponent("Examples/tree-canopy")

    func run(_ precision: String, _ inputs: [String], _ out: String) throws -> ToolResult {
        try Tool.run(Tool.aerialseg, ["run", Fixtures.packageRoot.appendingPathComponent("Pipelines/tree-canopy.yaml").path,
                                      "--input"] + inputs + ["--output", out, "--precision", precision,
                                                             "--confidence", "float32", "--preview", "none", "--quiet"])
    }

    @Test func bf16AgreesWithF32OnTrainedWeights() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-bf16")
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputs = ["data/ortho_10cm.vrt", "data/unseen_oam_10cm.vrt"].map { example.appendingPathComponent($0).path }
        let f32 = dir.appendingPathComponent("f32").path, bf16 = dir.appendingPathComponent("bf16").path
        let a = try run("f32", inputs, f32)
        try #require(a.status == 0, "\(a.stderr)")
        let b = try run("bf16", inputs, bf16)
        try #require(b.status == 0, "\(b.stderr)")
        let unsupported = b.stderr.contains("aerialseg: note: --precision bf16: this CPU has no")
        for stem in ["ortho_10cm", "unseen_oam_10cm"] {
            let l32 = try Dataset(path: "\(f32)/\(stem).labels.tif"), l16 = try Dataset(path: "\(bf16)/\(stem).labels.tif")
            let whole = PixelWindow(x: 0, y: 0, width: l32.width, height: l32.height)
            let (x, y) = (try l32.readBytes(whole), try l16.readBytes(whole))
            let c32 = try Dataset(path: "\(f32)/\(stem).confidence.tif").readFloats(decimatedTo: l32.width, l32.height)
            let c16 = try Dataset(path: "\(bf16)/\(stem).confidence.tif").readFloats(decimatedTo: l32.width, l32.height)
            let valid = x.indices.filter { x[$0] != 255 }
            #expect(valid.count > 1_000_000, "\(stem): \(valid.count) valid pixels")
            #expect(valid.allSatisfy { y[$0] != 255 } && x.indices.allSatisfy { (x[$0] == 255) == (y[$0] == 255) },
                    "\(stem): the same nodata")
            let agree = Double(valid.filter { x[$0] == y[$0] }.count) / Double(valid.count)
            let maxDiff = valid.map { abs(c32[$0] - c16[$0]) }.max() ?? 0
            if unsupported {
                #expect(x == y && c32 == c16, "\(stem): f32 ran, so the bytes are f32's")
            } else {
                #expect(agree >= 0.995, "\(stem): labels agree on \(100 * agree) % of the valid pixels")
                #expect(maxDiff > 0 && maxDiff < 0.2, "\(stem): max confidence difference \(maxDiff)")
            }
        }
    }

    /// `bench --profile --json`: one entry per convolution of the model, in layer order, each with
    /// the kernel that ran and its arithmetic, and the rest of the pass; the layers' work adds up
    /// to the model's conv GFLOP.
    @Test func benchProfileListsEveryConvolution() throws {
        let pipeline = Fixtures.packageRoot.appendingPathComponent("Pipelines/tree-canopy.yaml").path
        let r = try Tool.run(Tool.aerialseg, ["bench", pipeline, "--size", "64", "--runs", "2", "--profile", "--json"])
        try #require(r.status == 0, "\(r.stderr)")
        let results = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let result = try #require(results.first)
        let layers = try #require(result["profile"] as? [[String: Any]])
        #expect(layers.count > 10)
        #expect(layers.map { $0["index"] as? Int } == (0..<layers.count).map { $0 })
        #expect(layers.allSatisfy { ($0["kernel"] as? String)?.contains(", f32") == true && ($0["ms"] as? Double ?? -1) >= 0 })
        let work = layers.reduce(0) { $0 + ($1["gflop"] as? Double ?? 0) }
        let total = try #require(result["convGFLOP"] as? Double)
        #expect(abs(work - total) <= 1e-6 * total, "layers \(work) GFLOP, model \(total)")
        #expect(result["otherMs"] as? Double != nil)
    }
}
