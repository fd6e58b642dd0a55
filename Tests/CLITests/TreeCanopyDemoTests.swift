import Foundation
import GeoIO
import Testing
import TestSupport

/// The tree-canopy demo's deploy path (Examples/tree-canopy): `aerialseg run` with the committed
/// checkpoint and Pipelines/tree-canopy.yaml on a held-out window of the orthophoto gives the labels
/// mmsegmentation 1.2.2 itself computed with the same checkpoint (Tests/Fixtures/tree-canopy,
/// written by Examples/tree-canopy/mmseg_agreement.py).
@Suite struct TreeCanopyDemoTests {
    let example = Fixtures.packageRoot.appendingPathComponent("Examples/tree-canopy")

    @Test("aerialseg run = mmseg inference on the held-out window (≥ 99.9 % equal labels)")
    func agreesWithMmseg() throws {
        let meta = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Fixtures.local("tree-canopy/heldout_window.json"))) as! [String: Any]
        let window = meta["window"] as! [String: Int]
        let (x, y, w, h) = (window["x"]!, window["y"]!, window["width"]!, window["height"]!)
        let dir = Fixtures.temporaryDirectory("tree-canopy")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("heldout.tif").path
        let cut = try Tool.run("gdal_translate", ["-q", "-srcwin", "\(x)", "\(y)", "\(w)", "\(h)",
                                                  example.appendingPathComponent("data/ortho_10cm.tif").path, input])
        #expect(cut.status == 0, "\(cut.stderr)")
        let out = dir.appendingPathComponent("out").path
        let run = try Tool.run(Tool.aerialseg, [
            "run", Fixtures.packageRoot.appendingPathComponent("Pipelines/tree-canopy.yaml").path, "--input", input,
            "--output", out, "--blend", "mean",  // mmseg's plain average; the pipeline names its checkpoint
            "--quiet",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let whole = PixelWindow(x: 0, y: 0, width: w, height: h)
        let ours = try Dataset(path: out + "/heldout.labels.tif").readBytes(whole)
        let mmseg = try Dataset(path: Fixtures.local("tree-canopy/heldout_mmseg_labels.png").path).readBytes(whole)
        let equal = zip(ours, mmseg).filter { $0 == $1 }.count
        let trees = mmseg.filter { $0 == 1 }.count
        #expect(trees > 10_000, "the window holds trees, so agreement is not trivial")
        #expect(Double(equal) / Double(w * h) >= 0.999, "\(equal) of \(w * h) labels equal")
        // The pipeline's vectors block wrote the tree polygons next to the labels.
        let info = try Tool.run("ogrinfo", ["-so", "-al", out + "/heldout.vectors.gpkg"])
        #expect(info.status == 0 && info.stdout.contains("class_name") && info.stdout.contains("3395"))
    }
}
