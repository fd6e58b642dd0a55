import Foundation
import Testing
import TestSupport

/// `aerialseg evaluate` as a user runs it, checked against a confusion matrix counted here from the
/// raw pixels GDAL itself writes (`gdal_translate -of ENVI`).
@Suite struct EvaluateCommandTests {
    let mask = Fixtures.local("rasters/canopy_mask.tif").path

    /// The canopy mask shifted by (dx, dy) pixels on the same grid (edge filled with 0), by gdal_translate.
    func shiftedMask(in dir: URL, dx: Int = 7, dy: Int = 4) throws -> String {
        let info = try Tool.gdalinfoJSON(mask)
        let gt = info["geoTransform"] as! [Double], size = info["size"] as! [Int]
        let ullr = [gt[0], gt[3], gt[0] + Double(size[0]) * gt[1], gt[3] + Double(size[1]) * gt[5]].map { "\($0)" }
        let path = dir.appendingPathComponent("shifted.labels.tif").path
        try run("gdal_translate", ["-q", "-srcwin", "\(dx)", "\(dy)", "\(size[0])", "\(size[1])", "-a_ullr"] + ullr
                + [mask, path])
        return path
    }

    /// Raw pixel bytes of a Byte raster, written by GDAL's ENVI driver (no AerialSeg code involved).
    func rawBytes(_ path: String, in dir: URL) throws -> [UInt8] {
        let raw = dir.appendingPathComponent(UUID().uuidString + ".raw").path
        try run("gdal_translate", ["-q", "-of", "ENVI", path, raw])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
    }

    func run(_ tool: String, _ arguments: [String]) throws {
        let result = try Tool.run(tool, arguments)
        guard result.status == 0 else { throw EvaluateTestError("\(tool) failed: \(result.stderr)") }
    }

    /// `--json`: the confusion matrix equals one counted here; IoU and mIoU follow from it.
    @Test func jsonMatchesIndependentCount() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-evaluate")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pred = try shiftedMask(in: dir)
        let result = try Tool.run(Tool.aerialseg, ["evaluate", pred, mask, "--num-classes", "2", "--json"])
        try #require(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])

        let p = try rawBytes(pred, in: dir), t = try rawBytes(mask, in: dir)
        try #require(p.count == t.count && p.count == 2048 * 2048)
        var counts = [[Int]](repeating: [0, 0], count: 2)
        for i in 0..<t.count where t[i] < 2 && p[i] < 2 { counts[Int(t[i])][Int(p[i])] += 1 }
        #expect(json["confusionMatrix"] as? [[Int]] == counts)
        let iou: [Double] = (0..<2).map { (c: Int) -> Double in
            let truthArea: Int = counts[c][0] + counts[c][1], predictedArea: Int = counts[0][c] + counts[1][c]
            return Double(counts[c][c]) / Double(truthArea + predictedArea - counts[c][c])
        }
        let classes = try #require(json["classes"] as? [[String: Any]])
        #expect(zip(classes.compactMap { $0["iou"] as? Double }, iou).allSatisfy { abs($0 - $1) < 1e-12 })
        let mIoU: Double = (iou[0] + iou[1]) / 2
        #expect(abs((json["mIoU"] as? Double ?? 0) - mIoU) < 1e-12)
        let pixels = try #require(json["pixels"] as? [String: Any])
        #expect(pixels["evaluated"] as? Int == 2048 * 2048 && pixels["ignored"] as? Int == 0)
        #expect(json["numClasses"] as? Int == 2 && json["ignoreIndex"] as? Int == 255)
    }

    /// The text report: mmseg's table with the pipeline's class names, the summary line, the matrix;
    /// a class absent from both shows `nan`.
    @Test func textTableWithPipelineClasses() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-evaluate")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pred = try shiftedMask(in: dir)
        let pipeline = dir.appendingPathComponent("p.yaml").path
        try "model: {decode_head: {type: FCNHead, num_classes: 3}}\nclasses: [background, tree, water]\n"
            .write(toFile: pipeline, atomically: true, encoding: .utf8)
        let result = try Tool.run(Tool.aerialseg, ["evaluate", pred, mask, "--pipeline", pipeline])
        try #require(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("| background |") })
        #expect(lines.contains { $0.hasPrefix("| water      |") && $0.hasSuffix("nan |   nan |") }, "\(result.stdout)")
        #expect(lines.contains { $0.hasPrefix("aAcc: ") && $0.contains("mIoU: ") && $0.contains("1 pair,") })
        #expect(lines.contains("confusion matrix (rows: truth, columns: prediction):"))
    }

    /// Folders: `run`-style `<stem>.labels.tif` predictions matched to `<stem>.tif` truth.
    @Test func foldersAggregate() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-evaluate")
        defer { try? FileManager.default.removeItem(at: dir) }
        let predDir = dir.appendingPathComponent("pred"), truthDir = dir.appendingPathComponent("truth")
        for d in [predDir, truthDir] {
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        }
        let shifted = try shiftedMask(in: dir)
        try FileManager.default.copyItem(atPath: shifted, toPath: predDir.appendingPathComponent("a.labels.tif").path)
        try FileManager.default.copyItem(atPath: mask, toPath: predDir.appendingPathComponent("b.labels.tif").path)
        for name in ["a.tif", "b.tif"] {
            try FileManager.default.copyItem(atPath: mask, toPath: truthDir.appendingPathComponent(name).path)
        }
        let both = try Tool.run(Tool.aerialseg, ["evaluate", predDir.path, truthDir.path, "--json"])
        try #require(both.status == 0, "\(both.stderr)")
        let single = try Tool.run(Tool.aerialseg, ["evaluate", shifted, mask, "--json"])
        let a = try JSONSerialization.jsonObject(with: Data(both.stdout.utf8)) as? [String: Any]
        let s = try JSONSerialization.jsonObject(with: Data(single.stdout.utf8)) as? [String: Any]
        let matrixA = try #require(a?["confusionMatrix"] as? [[Int]])
        let matrixS = try #require(s?["confusionMatrix"] as? [[Int]])
        // b is perfect: it adds its truth histogram to the diagonal.
        let t = try rawBytes(mask, in: dir)
        let ones = t.reduce(0) { $0 + Int($1) }
        let expected: [[Int]] = [[matrixS[0][0] + t.count - ones, matrixS[0][1]],
                                 [matrixS[1][0], matrixS[1][1] + ones]]
        #expect(matrixA == expected)
        #expect((a?["pairs"] as? [Any])?.count == 2)
    }

    /// Each bad input: one line `aerialseg: error: <file>: <what> (<hint>)`, exit code 2.
    @Test(arguments: ["missing", "grid", "multiband", "unmatched", "float"])
    func badInputGivesOneClearLine(_ kind: String) throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-evaluate")
        defer { try? FileManager.default.removeItem(at: dir) }
        var arguments: [String]
        var culprit: String
        switch kind {
        case "missing":
            culprit = dir.appendingPathComponent("nope.tif").path
            arguments = [culprit, mask]
        case "grid":
            culprit = dir.appendingPathComponent("coarse.tif").path
            try run("gdalwarp", ["-q", "-tr", "0.3", "0.3", "-r", "near", mask, culprit])
            arguments = [mask, culprit]
        case "multiband":
            culprit = Fixtures.local("rasters/rgb1.tif").path
            arguments = [culprit, mask]
        case "float":
            culprit = dir.appendingPathComponent("float.tif").path
            try run("gdal_translate", ["-q", "-ot", "Float32", mask, culprit])
            arguments = [mask, culprit]
        default:
            let pred = dir.appendingPathComponent("pred"), truth = dir.appendingPathComponent("truth")
            for d in [pred, truth] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
            try FileManager.default.copyItem(atPath: mask, toPath: pred.appendingPathComponent("x.labels.tif").path)
            try FileManager.default.copyItem(atPath: mask, toPath: truth.appendingPathComponent("y.tif").path)
            culprit = pred.path
            arguments = [pred.path, truth.path]
        }
        let result = try Tool.run(Tool.aerialseg, ["evaluate"] + arguments)
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("aerialseg: error: \(culprit): "), "\(result.stderr)")
        #expect(result.stderr.hasSuffix(")\n"), "a hint in parentheses: \(result.stderr)")
        #expect(result.stdout.isEmpty)
        if kind == "grid" { #expect(result.stderr.contains(mask) && result.stderr.contains("--reproject-truth")) }
        if kind == "unmatched" { #expect(result.stderr.contains("x.labels.tif") && result.stderr.contains("y.tif")) }
    }
}

struct EvaluateTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
