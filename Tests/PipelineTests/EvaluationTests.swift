import Foundation
import GeoIO
import Pipeline
import Testing
import TestSupport

/// `evaluate`'s metrics against mmseg's definitions: hand-computed tiny cases, and a second
/// implementation (mmseg's `intersect_and_union` transcribed to numpy, reading with osgeo.gdal) on
/// the canopy mask against shifted and re-gridded copies made with GDAL's tools.
@Suite struct EvaluationTests {
    let mask = Fixtures.local("rasters/canopy_mask.tif").path

    // MARK: hand-computed cases

    /// 4×4 truth and prediction, 4 classes, ignore 255. By hand (rows truth, columns prediction):
    /// class 0: 8 truth px, 6 right, predicted 6× → IoU 6/8, Acc 6/8; class 1: 6 truth px, 4 right,
    /// predicted 5× (one prediction is 255: counted in class 1's truth area only) → IoU 4/7, Acc 4/6;
    /// class 2: predicted twice, never true → IoU 0, Acc NaN; class 3: absent → NaN, NaN. 2 px ignored.
    static let truthA: [UInt8] = [0, 0, 1, 1, 0, 0, 1, 1, 255, 255, 1, 1, 0, 0, 0, 0]
    static let predA: [UInt8] = [0, 1, 1, 1, 0, 0, 1, 2, 0, 1, 1, 255, 0, 0, 0, 2]

    @Test func tinyCaseByHand() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pair = try writePair(in: dir, "a", truth: Self.truthA, prediction: Self.predA)
        let matrix = try Evaluation.confusionMatrix(pair, options: EvaluationOptions(classCount: 4))
        let expected: [UInt64] = [6, 1, 1, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(matrix.counts == expected)
        #expect(matrix.predictionOutOfRange == [0, 1, 0, 0] as [UInt64])
        #expect(matrix.ignoredPixels == 2 && matrix.evaluatedPixels == 14)
        let m = matrix.metrics
        #expect(m.intersection == [6, 4, 0, 0] as [UInt64])
        #expect(m.union == [8, 7, 2, 0] as [UInt64])
        #expect(m.predictedArea == [6, 5, 2, 0] as [UInt64])
        #expect(m.truthArea == [8, 6, 0, 0] as [UInt64])
        #expect(close(m.iou[0], 0.75) && close(m.iou[1], 4.0 / 7))
        #expect(m.iou[2] == 0 && m.iou[3].isNaN)
        #expect(close(m.accuracy[0], 0.75) && close(m.accuracy[1], 4.0 / 6))
        #expect(m.accuracy[2].isNaN && m.accuracy[3].isNaN)
        let meanIoU: Double = (0.75 + 4.0 / 7 + 0) / 3, meanAcc: Double = (0.75 + 4.0 / 6) / 2
        #expect(close(m.meanIoU, meanIoU), "class 3 (absent from both) is left out")
        #expect(close(m.meanAccuracy, meanAcc), "classes without truth are left out of mAcc")
        #expect(close(m.overallAccuracy, 10.0 / 14))
    }

    /// Two pairs score as one dataset (areas summed first), not as the mean of per-image scores.
    @Test func pairsAggregateAsTotals() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try writePair(in: dir, "a", truth: Self.truthA, prediction: Self.predA)
        let b = try writePair(in: dir, "b", truth: [UInt8](repeating: 3, count: 16),
                              prediction: [UInt8](repeating: 3, count: 16))
        let report = try Evaluation.evaluate([a, b], options: EvaluationOptions(classCount: 4))
        // Class 3 now: 16 px, all right → IoU 1, Acc 1; the others as in `tinyCaseByHand`.
        let expectedIoU: Double = (0.75 + 4.0 / 7 + 0 + 1) / 4
        let expectedAcc: Double = (0.75 + 4.0 / 6 + 1) / 3
        #expect(close(report.mIoU ?? .nan, expectedIoU))
        #expect(close(report.mAcc ?? .nan, expectedAcc))
        #expect(close(report.aAcc ?? .nan, 26.0 / 30))
        #expect(report.pixels.evaluated == 30 && report.pixels.ignored == 2 && report.pixels.total == 32)
        #expect(report.confusionMatrix[3] == [0, 0, 0, 16] as [UInt64])
        #expect(report.classes[2].iou == 0 && report.classes[2].acc == nil)
    }

    /// Truth nodata is ignored; `--truth-map` maps values first, and values it does not name are ignored.
    @Test func truthNodataAndValueMap() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Truth stores tree as 255 and background as 0 (the canopy mask convention), 7 = nodata, 9 unmapped.
        let truth: [UInt8] = [0, 0, 255, 255, 7, 7, 255, 9, 0, 0, 0, 0, 255, 255, 255, 255]
        let pred: [UInt8] = [0, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1]
        let pair = try writePair(in: dir, "m", truth: truth, prediction: pred, truthNoData: 7)
        var options = EvaluationOptions(classCount: 2)
        options.truthMap = try ValueMap(parsing: "0=0,255=1", option: "--truth-map")
        let matrix = try Evaluation.confusionMatrix(pair, options: options)
        // Evaluated: (0,0) (0,1) (1,1) (1,1) | (1,0) | (0,0)×4 | (1,1)×4 — nodata ×2 and 9 ignored.
        #expect(matrix.counts == [5, 1, 1, 6] as [UInt64])
        #expect(matrix.ignoredPixels == 3)
        // Without the map, 255 is the ignore index and the nodata pixels still are ignored.
        let plain = try Evaluation.confusionMatrix(pair, options: EvaluationOptions(classCount: 2))
        #expect(plain.counts == [5, 1, 0, 0] as [UInt64])
        #expect(plain.ignoredPixels == 9 && plain.truthOutOfRange == [0, 1] as [UInt64])
    }

    /// Without a class count, N is the largest value seen + 1 (the ignore index excepted).
    @Test func inferredClassCount() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pair = try writePair(in: dir, "a", truth: Self.truthA, prediction: Self.predA)
        let report = try Evaluation.evaluate([pair], options: EvaluationOptions())
        #expect(report.numClasses == 3)
        let full = try Evaluation.confusionMatrix(pair, options: EvaluationOptions(classCount: 3))
        #expect(report.confusionMatrix.flatMap { $0 } == full.counts)
    }

    // MARK: against numpy (mmseg's code) on real rasters

    /// The canopy mask against a copy shifted by (5, 3) pixels, and an eroded-edge copy with some
    /// truth set to the ignore index.
    @Test(.enabled(if: NumpyOracle.python != nil, NumpyOracle.skipReason))
    func canopyMaskAgainstShiftedCopy() throws {
        try checkAgainstShiftedCopy(mask)
    }

    @Test(.enabled(if: Fixtures.hasShared("data/oam-tcd/canopy_mask.tif"), "needs ../shared/data/oam-tcd"),
          .enabled(if: NumpyOracle.python != nil, NumpyOracle.skipReason))
    func sharedCanopyMaskAgainstShiftedCopy() throws {
        try checkAgainstShiftedCopy(try Fixtures.requireShared("data/oam-tcd/canopy_mask.tif").path)
    }

    func checkAgainstShiftedCopy(_ truth: String) throws {
        let python = try #require(NumpyOracle.python)
        let dir = Fixtures.temporaryDirectory("aerialseg-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let shifted = dir.appendingPathComponent("shifted.tif").path
        let info = try Tool.gdalinfoJSON(truth)
        let gt = info["geoTransform"] as! [Double]
        let size = info["size"] as! [Int]
        let ullr = [gt[0], gt[3], gt[0] + Double(size[0]) * gt[1], gt[3] + Double(size[1]) * gt[5]].map { "\($0)" }
        try run("gdal_translate", ["-q", "-srcwin", "5", "3", "\(size[0])", "\(size[1])", "-a_ullr"] + ullr
                + [truth, shifted])
        // A truth with a block of ignore (255) and of an out-of-range value (7) and prediction 255 in places.
        let holed = dir.appendingPathComponent("holed.tif").path
        try run(python, ["-c", """
            from osgeo import gdal
            src = gdal.Open('\(truth)'); a = src.GetRasterBand(1).ReadAsArray()
            a[100:400, 200:900] = 255; a[1500:1600, :] = 7
            dst = gdal.GetDriverByName('GTiff').CreateCopy('\(holed)', src); dst.GetRasterBand(1).WriteArray(a)
            p = gdal.Open('\(shifted)', 1); b = p.GetRasterBand(1).ReadAsArray(); b[0:50, 0:2048] = 255
            p.GetRasterBand(1).WriteArray(b); p = None; dst = None
            """])
        for (pairs, n) in [([(shifted, truth)], 2), ([(shifted, holed)], 2), ([(shifted, truth), (truth, holed)], 3)] {
            let oracle = try NumpyOracle.run(python, pairs: pairs, classCount: n, ignore: 255)
            let report = try Evaluation.evaluate(pairs.map { EvaluationPair(prediction: $0.0, truth: $0.1) },
                                                 options: EvaluationOptions(classCount: n))
            #expect(report.confusionMatrix == oracle.confusion)
            #expect(report.classes.map(\.intersection) == oracle.intersect)
            #expect(report.classes.map(\.union) == oracle.union)
            #expect(report.classes.map(\.predictedPixels) == oracle.predicted)
            #expect(report.classes.map(\.truthPixels) == oracle.label)
            #expect(same(report.classes.map(\.iou), oracle.iou) && same(report.classes.map(\.acc), oracle.acc))
            #expect(same([report.mIoU, report.mAcc, report.aAcc], [oracle.mIoU, oracle.mAcc, oracle.aAcc]))
        }
    }

    /// `reprojectTruth` on a truth in another CRS and resolution equals evaluating against that truth
    /// warped by `gdalwarp -r near -et 0` onto the prediction's grid; without the flag, a clear error.
    @Test func reprojectedTruthEqualsGdalwarp() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let utm = dir.appendingPathComponent("truth_utm.tif").path
        try run("gdalwarp", ["-q", "-t_srs", "EPSG:32632", "-tr", "0.25", "0.25", "-r", "near", "-dstnodata", "255",
                             mask, utm])
        let info = try Tool.gdalinfoJSON(mask)
        let gt = info["geoTransform"] as! [Double]
        let size = info["size"] as! [Int]
        let te = [gt[0], gt[3] + Double(size[1]) * gt[5], gt[0] + Double(size[0]) * gt[1], gt[3]].map { "\($0)" }
        let back = dir.appendingPathComponent("truth_back.tif").path
        try run("gdalwarp", ["-q", "-r", "near", "-et", "0", "-t_srs", "EPSG:3395", "-te"] + te
                + ["-ts", "\(size[0])", "\(size[1])", "-dstnodata", "255", utm, back])

        let pair = EvaluationPair(prediction: mask, truth: utm)
        let mismatch = #expect(throws: PipelineError.self) {
            try Evaluation.confusionMatrix(pair, options: EvaluationOptions(classCount: 2))
        }
        let text = mismatch.map { "\($0)" } ?? ""
        #expect(text.hasPrefix(utm) && text.contains(mask) && text.contains("--reproject-truth"), "\(text)")
        var options = EvaluationOptions(classCount: 2)
        options.reprojectTruth = true
        let warped = try Evaluation.confusionMatrix(pair, options: options)
        let oracle = try Evaluation.confusionMatrix(EvaluationPair(prediction: mask, truth: back),
                                                    options: EvaluationOptions(classCount: 2))
        #expect(warped == oracle)
        #expect(warped.ignoredPixels < warped.totalPixels / 100, "the warped truth covers the prediction")
        #expect(warped.metrics.meanIoU > 0.8, "a re-gridded copy of the same mask mostly agrees")
    }

    // MARK: bad inputs and pairing

    @Test func badLabelRastersAreRejected() throws {
        let rgb = Fixtures.local("rasters/rgb1.tif").path
        let multi = EvaluationPair(prediction: rgb, truth: mask)
        let bands = #expect(throws: PipelineError.self) {
            try Evaluation.confusionMatrix(multi, options: EvaluationOptions())
        }
        #expect(bands?.description.hasPrefix("\(rgb): the prediction has 3 bands, not 1 (") == true)
        let dir = Fixtures.temporaryDirectory("aerialseg-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let float = dir.appendingPathComponent("float.tif").path
        try run("gdal_translate", ["-q", "-ot", "Float32", mask, float])
        let type = #expect(throws: PipelineError.self) {
            try Evaluation.confusionMatrix(EvaluationPair(prediction: mask, truth: float), options: EvaluationOptions())
        }
        #expect(type?.description.hasPrefix("\(float): the truth holds Float32 values") == true)
        #expect(throws: GeoIOError.self) {
            try Evaluation.confusionMatrix(EvaluationPair(prediction: "/nonexistent.tif", truth: mask),
                                           options: EvaluationOptions())
        }
    }

    @Test func foldersPairByStem() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pred = dir.appendingPathComponent("pred").path, truth = dir.appendingPathComponent("truth").path
        for folder in [pred, truth] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        for name in ["a.labels.tif", "a.confidence.tif", "a.preview.png", "b.tif", "notes.txt"] {
            _ = FileManager.default.createFile(atPath: "\(pred)/\(name)", contents: Data())
        }
        for name in ["a.tif", "b.tif", "b.tif.aux.xml"] {
            _ = FileManager.default.createFile(atPath: "\(truth)/\(name)", contents: Data())
        }
        let pairs = try Evaluation.pairs(prediction: pred, truth: truth)
        #expect(pairs == [EvaluationPair(prediction: "\(pred)/a.labels.tif", truth: "\(truth)/a.tif"),
                          EvaluationPair(prediction: "\(pred)/b.tif", truth: "\(truth)/b.tif")])
        _ = FileManager.default.createFile(atPath: "\(pred)/c.labels.tif", contents: Data())
        _ = FileManager.default.createFile(atPath: "\(truth)/d.tif", contents: Data())
        let unmatched = #expect(throws: PipelineError.self) { try Evaluation.pairs(prediction: pred, truth: truth) }
        let text = unmatched?.description ?? ""
        #expect(text.hasPrefix("\(pred): ") && text.contains("no truth for c.labels.tif")
                && text.contains("no prediction for d.tif"), "\(text)")
        #expect(throws: PipelineError.self) { try Evaluation.pairs(prediction: pred, truth: "\(truth)/a.tif") }
    }

    // MARK: helpers

    /// Writes a 4×4 truth/prediction pair of Byte GeoTIFFs on the same grid.
    func writePair(in dir: URL, _ name: String, truth: [UInt8], prediction: [UInt8], truthNoData: Double? = nil)
        throws -> EvaluationPair
    {
        func write(_ values: [UInt8], _ path: String, noData: Double?) throws {
            var spec = RasterSpec(width: 4, height: 4)
            spec.geoTransform = GeoTransform([500_000, 1, 0, 4_000_000, 0, -1])
            spec.crsWKT = try SpatialReference(epsg: 32618).wkt
            spec.noDataValue = noData
            let writer = try RasterWriter(path: path, spec: spec)
            let window = PixelWindow(x: 0, y: 0, width: 4, height: 4)
            try values.withUnsafeBufferPointer { try writer.write(window, bytes: $0) }
            try writer.close()
        }
        let pair = EvaluationPair(prediction: dir.appendingPathComponent("\(name).labels.tif").path,
                                  truth: dir.appendingPathComponent("\(name).tif").path)
        try write(truth, pair.truth, noData: truthNoData)
        try write(prediction, pair.prediction, noData: 255)
        return pair
    }

    func run(_ tool: String, _ arguments: [String]) throws {
        let result = try Tool.run(tool, arguments)
        guard result.status == 0 else { throw EvaluationTestError("\(tool) failed: \(result.stderr)") }
    }

    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-12 }

    func same(_ a: [Double?], _ b: [Double?]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in
            switch (x, y) {
            case (nil, nil): true
            case let (x?, y?): abs(x - y) <= 1e-12 * max(1, abs(y))
            default: false
            }
        }
    }
}

/// mmseg's `IoUMetric` (intersect_and_union summed over pairs, total_area_to_metrics) in numpy.
enum NumpyOracle {
    struct Result {
        var intersect, union, predicted, label: [UInt64]
        var iou, acc: [Double?]
        var aAcc, mIoU, mAcc: Double?
        var confusion: [[UInt64]]
    }

    static let script = """
        import json, sys
        import numpy as np
        from osgeo import gdal
        spec = json.loads(sys.argv[1]); n, ignore = spec["n"], spec["ignore"]
        def hist(x):  # torch.histc(x, bins=n, min=0, max=n-1): values outside fall in no bin
            return np.histogram(x.astype(np.float64), bins=n, range=(0, n - 1))[0].astype(np.int64)
        tot = [np.zeros(n, np.int64) for _ in range(4)]; cm = np.zeros((n, n), np.int64)
        for p, t in spec["pairs"]:
            pds, tds = gdal.Open(p), gdal.Open(t)
            pred = pds.GetRasterBand(1).ReadAsArray().astype(np.int64).ravel()
            label = tds.GetRasterBand(1).ReadAsArray().astype(np.int64).ravel()
            mask = label != ignore; pred, label = pred[mask], label[mask]
            ai = hist(pred[pred == label]); ap = hist(pred); al = hist(label)
            for i, a in enumerate([ai, ap + al - ai, ap, al]): tot[i] += a
            ok = (label >= 0) & (label < n) & (pred >= 0) & (pred < n)
            cm += np.bincount(label[ok] * n + pred[ok], minlength=n * n).reshape(n, n)
        ai, au, ap, al = tot
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = ai / au; acc = ai / al; aacc = ai.sum() / al.sum()
            miou = np.nanmean(iou) if not np.all(np.isnan(iou)) else np.nan
            macc = np.nanmean(acc) if not np.all(np.isnan(acc)) else np.nan
        f = lambda v: None if np.isnan(v) else float(v)
        print(json.dumps({"intersect": ai.tolist(), "union": au.tolist(), "pred": ap.tolist(), "label": al.tolist(),
                          "iou": [f(x) for x in iou], "acc": [f(x) for x in acc], "aAcc": f(aacc),
                          "mIoU": f(miou), "mAcc": f(macc), "cm": cm.tolist()}))
        """

    /// A Python with osgeo.gdal and numpy, or nil: the condition of the `.enabled(if:)` trait of
    /// tests that need it (reported as skipped without it, never a silent pass).
    static let python: String? = ["/usr/bin/python3", "python3"].first { candidate in
        (try? Tool.run(candidate, ["-c", "import numpy; from osgeo import gdal"]))?.status == 0  // absent: nil
    }

    static let skipReason: Comment = "needs python3 with numpy and osgeo.gdal (python3-gdal)"

    static func run(_ python: String, pairs: [(String, String)], classCount: Int, ignore: Int) throws -> Result {
        let spec: [String: Any] = ["n": classCount, "ignore": ignore, "pairs": pairs.map { [$0.0, $0.1] }]
        let argument = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let result = try Tool.run(python, ["-c", script, argument])
        guard result.status == 0,
              let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        else { throw EvaluationTestError("numpy oracle failed: \(result.stderr)") }
        func counts(_ key: String) -> [UInt64] { (json[key] as? [Int] ?? []).map { UInt64($0) } }
        func scores(_ key: String) -> [Double?] { (json[key] as? [Any] ?? []).map { $0 as? Double } }
        return Result(intersect: counts("intersect"), union: counts("union"), predicted: counts("pred"),
                      label: counts("label"), iou: scores("iou"), acc: scores("acc"), aAcc: json["aAcc"] as? Double,
                      mIoU: json["mIoU"] as? Double, mAcc: json["mAcc"] as? Double,
                      confusion: (json["cm"] as? [[Int]] ?? []).map { $0.map { UInt64($0) } })
    }
}

struct EvaluationTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
