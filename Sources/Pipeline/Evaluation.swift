import Foundation
import GeoIO
import Limits

/// Pixel counts of predicted against true classes, from which mmsegmentation's metrics follow.
///
/// `counts[t * classCount + p]` is the number of pixels of true class `t` predicted as `p`. Values
/// outside `0..<classCount` fall in no cell, as in mmseg's `torch.histc` bins, but still count in
/// mmseg's areas: a valid truth pixel predicted out of range (e.g. 255, our nodata) adds to that
/// truth class's label area only, and a truth value out of range (but not the ignore index) adds
/// to the predicted class's area only. So these are kept apart, per class.
public struct ConfusionMatrix: Sendable, Equatable {
    /// N, the number of classes.
    public private(set) var classCount: Int
    /// (N, N) row-major: rows are true classes, columns predicted classes.
    public private(set) var counts: [UInt64]
    /// Per true class: pixels whose prediction is outside 0..<N.
    public private(set) var predictionOutOfRange: [UInt64]
    /// Per predicted class: pixels whose truth is outside 0..<N and not ignored.
    public private(set) var truthOutOfRange: [UInt64]
    /// Pixels where both are outside 0..<N (truth not ignored): in no area at all.
    public private(set) var bothOutOfRange: UInt64 = 0
    /// Truth pixels left out: the ignore index, nodata or masked, outside the truth's footprint.
    public private(set) var ignoredPixels: UInt64 = 0

    public init(classCount: Int) {
        precondition(classCount >= 0, "class count must not be negative")
        self.classCount = classCount
        counts = [UInt64](repeating: 0, count: classCount * classCount)
        predictionOutOfRange = [UInt64](repeating: 0, count: classCount)
        truthOutOfRange = [UInt64](repeating: 0, count: classCount)
    }

    /// Pixels of true class `truth` predicted as `predicted` (both in 0..<N).
    public subscript(truth: Int, predicted: Int) -> UInt64 { counts[truth * classCount + predicted] }

    /// Every pixel seen, ignored ones included.
    public var totalPixels: UInt64 {
        counts.reduce(0, +) + predictionOutOfRange.reduce(0, +) + truthOutOfRange.reduce(0, +) + bothOutOfRange
            + ignoredPixels
    }

    /// Pixels mmseg evaluates: truth valid and not the ignore index.
    public var evaluatedPixels: UInt64 { totalPixels - ignoredPixels }

    /// The same counts with `n` classes. Growing adds empty rows and columns; shrinking requires the
    /// dropped classes to be empty (used when the class count is inferred from the values seen).
    public func resized(to n: Int) -> ConfusionMatrix {
        var out = ConfusionMatrix(classCount: n)
        let keep = min(n, classCount)
        for t in 0..<keep {
            for p in 0..<keep { out.counts[t * n + p] = counts[t * classCount + p] }
            out.predictionOutOfRange[t] = predictionOutOfRange[t]
            out.truthOutOfRange[t] = truthOutOfRange[t]
        }
        out.bothOutOfRange = bothOutOfRange
        out.ignoredPixels = ignoredPixels
        return out
    }

    /// Sums two matrices (of two images), as mmseg sums areas over a dataset before any ratio.
    public static func + (a: ConfusionMatrix, b: ConfusionMatrix) -> ConfusionMatrix {
        let n = max(a.classCount, b.classCount)
        var sum = a.resized(to: n)
        let other = b.resized(to: n)
        for i in 0..<sum.counts.count { sum.counts[i] += other.counts[i] }
        for i in 0..<n {
            sum.predictionOutOfRange[i] += other.predictionOutOfRange[i]
            sum.truthOutOfRange[i] += other.truthOutOfRange[i]
        }
        sum.bothOutOfRange += other.bothOutOfRange
        sum.ignoredPixels += other.ignoredPixels
        return sum
    }

    /// Counts one strip of pixels. `truth` holds class values with `Self.ignored` for pixels left out;
    /// `prediction` holds raw predicted values. Both are (pixels,).
    mutating func add(truth: UnsafeBufferPointer<Int32>, prediction: UnsafeBufferPointer<Int32>) {
        let n = Int32(classCount)
        var ignored: UInt64 = 0, both: UInt64 = 0
        counts.withUnsafeMutableBufferPointer { cells in
            predictionOutOfRange.withUnsafeMutableBufferPointer { predOut in
                truthOutOfRange.withUnsafeMutableBufferPointer { truthOut in
                    for i in 0..<truth.count {
                        let t = truth[i], p = prediction[i]
                        if t == Self.ignored { ignored += 1; continue }
                        let tIn = t >= 0 && t < n, pIn = p >= 0 && p < n
                        if tIn && pIn {
                            cells[Int(t) * Int(n) + Int(p)] += 1
                        } else if tIn {
                            predOut[Int(t)] += 1
                        } else if pIn {
                            truthOut[Int(p)] += 1
                        } else {
                            both += 1
                        }
                    }
                }
            }
        }
        ignoredPixels += ignored
        bothOutOfRange += both
    }

    /// Marks a truth pixel that is left out of the evaluation.
    static let ignored = Int32.min

    /// mmseg's `IoUMetric`: per-class areas, IoU and accuracy, and their means.
    public var metrics: SegmentationMetrics { SegmentationMetrics(self) }
}

/// mmsegmentation's segmentation metrics (`IoUMetric.intersect_and_union` summed over all images,
/// then `total_area_to_metrics`), as fractions in 0...1 (mmseg's table prints them × 100).
///
/// A ratio with a zero denominator is NaN, as in mmseg: a class absent from both prediction and truth
/// has IoU NaN and is left out of mIoU; a class absent from the truth has accuracy NaN and is left out
/// of mAcc (while a class predicted but absent from the truth has IoU 0 and lowers mIoU).
public struct SegmentationMetrics: Sendable {
    /// Per class (N,): pixels predicted and true (`area_intersect`).
    public let intersection: [UInt64]
    /// Per class: `area_pred_label + area_label - area_intersect`.
    public let union: [UInt64]
    /// Per class: pixels predicted as the class (`area_pred_label`).
    public let predictedArea: [UInt64]
    /// Per class: pixels whose truth is the class (`area_label`).
    public let truthArea: [UInt64]
    /// Per class: intersection / union (NaN when the union is 0).
    public let iou: [Double]
    /// Per class: intersection / truth area (NaN when the truth area is 0).
    public let accuracy: [Double]
    /// Sum of intersections / sum of truth areas (NaN when no truth pixel is in 0..<N).
    public let overallAccuracy: Double
    /// Mean IoU over classes whose IoU is not NaN (`np.nanmean`); NaN when all are.
    public let meanIoU: Double
    /// Mean accuracy over classes whose accuracy is not NaN; NaN when all are.
    public let meanAccuracy: Double

    public init(_ m: ConfusionMatrix) {
        let n = m.classCount
        var intersection = [UInt64](repeating: 0, count: n)
        var predicted = m.truthOutOfRange
        var truth = m.predictionOutOfRange
        for t in 0..<n {
            for p in 0..<n {
                let c = m[t, p]
                predicted[p] += c
                truth[t] += c
                if t == p { intersection[t] = c }
            }
        }
        self.intersection = intersection
        predictedArea = predicted
        truthArea = truth
        func ratio(_ a: UInt64, _ b: UInt64) -> Double { b == 0 ? .nan : Double(a) / Double(b) }
        func nanMean(_ values: [Double]) -> Double {
            let finite = values.filter { !$0.isNaN }
            return finite.isEmpty ? .nan : finite.reduce(0, +) / Double(finite.count)
        }
        let unions = (0..<n).map { predicted[$0] + truth[$0] - intersection[$0] }
        let iou = (0..<n).map { ratio(intersection[$0], unions[$0]) }
        let accuracy = (0..<n).map { ratio(intersection[$0], truth[$0]) }
        union = unions
        self.iou = iou
        self.accuracy = accuracy
        overallAccuracy = ratio(intersection.reduce(0, +), truth.reduce(0, +))
        meanIoU = nanMean(iou)
        meanAccuracy = nanMean(accuracy)
    }
}

/// A prediction raster and the truth it is scored against.
public struct EvaluationPair: Sendable, Equatable {
    public var prediction: String
    public var truth: String
    public init(prediction: String, truth: String) {
        self.prediction = prediction
        self.truth = truth
    }
}

/// How `evaluate` reads and scores label rasters.
public struct EvaluationOptions: Sendable {
    /// N; nil infers it as the largest class value seen (in truth or prediction, ignore index
    /// excepted) + 1, at most `maximumInferredClasses`.
    public var classCount: Int?
    /// Names for the report (e.g. a pipeline's `classes`); default the class numbers.
    public var classNames: [String]?
    /// Truth value left out of the evaluation, mmseg's `ignore_index`. Default 255.
    public var ignoreIndex: Int = 255
    /// Maps truth values to class ids before the ignore test (`--truth-map 0=0,255=1`); values the
    /// map does not name are ignored. Default none: truth values are class ids.
    public var truthMap: ValueMap?
    /// Warp the truth onto the prediction's grid (nearest neighbour) instead of rejecting a
    /// different grid. Default false.
    public var reprojectTruth = false
    /// Pixels read per strip (full-width row strips), bounding memory to ~12 bytes × this. Default 2²¹.
    public var pixelsPerStrip = 1 << 21

    /// The largest class count, given or inferred from the values: a 1024² confusion matrix is 8 MiB,
    /// printed as a 1024 × 1024 table; mmseg's largest datasets have a few hundred classes.
    public static let maximumInferredClasses = 1024

    public init(classCount: Int? = nil) { self.classCount = classCount }
}

/// `aerialseg evaluate`: scores predicted label rasters against truth with mmseg's `IoUMetric`,
/// streaming both rasters in full-width row strips so no raster is ever loaded whole.
public enum Evaluation {

    /// The pairs to score: two files, or two folders matched by file stem. A prediction
    /// `<stem>.labels.tif` (what `aerialseg run` writes) or `<stem>.tif` matches truth `<stem>.tif`;
    /// `run`'s `.confidence` and `.preview` files are skipped. Unmatched files are an error naming them.
    public static func pairs(prediction: String, truth: String) throws -> [EvaluationPair] {
        let predIsFolder = isFolder(prediction), truthIsFolder = isFolder(truth)
        if !predIsFolder && !truthIsFolder { return [EvaluationPair(prediction: prediction, truth: truth)] }
        guard predIsFolder && truthIsFolder else {
            let (file, folder) = predIsFolder ? (truth, prediction) : (prediction, truth)
            throw PipelineError(path: file, reason: "is a file but \(folder) is a folder",
                                hint: "give two files, or two folders whose rasters are matched by name")
        }
        let predictions = try rasters(in: prediction).filter {
            let stem = stemOf($0)
            return !stem.hasSuffix(".confidence") && !stem.hasSuffix(".preview")
        }
        let truths = try rasters(in: truth)
        let predByStem = try index(predictions, folder: prediction) { stemOf($0, dropping: ".labels") }
        let truthByStem = try index(truths, folder: truth) { stemOf($0) }
        let unmatchedPred = predByStem.filter { truthByStem[$0.key] == nil }.map(\.value).sorted()
        let unmatchedTruth = truthByStem.filter { predByStem[$0.key] == nil }.map(\.value).sorted()
        if !unmatchedPred.isEmpty || !unmatchedTruth.isEmpty {
            var parts: [String] = []
            if !unmatchedPred.isEmpty { parts.append("no truth for \(list(unmatchedPred))") }
            if !unmatchedTruth.isEmpty { parts.append("no prediction for \(list(unmatchedTruth))") }
            throw PipelineError(path: prediction, reason: "rasters do not pair up with \(truth): "
                                + parts.joined(separator: "; "),
                                hint: "prediction <stem>.labels.tif or <stem>.tif is matched to truth <stem>.tif")
        }
        return predByStem.keys.sorted().map { stem in
            EvaluationPair(prediction: (prediction as NSString).appendingPathComponent(predByStem[stem] ?? ""),
                           truth: (truth as NSString).appendingPathComponent(truthByStem[stem] ?? ""))
        }
    }

    /// Scores all pairs as one dataset: counts are summed over pairs before any ratio, as mmseg does.
    public static func evaluate(_ pairs: [EvaluationPair], options: EvaluationOptions) throws -> EvaluationReport {
        if let n = options.classCount, n < 1 {
            throw PipelineError(path: "--num-classes", reason: "\(n) classes", hint: "give at least 1")
        }
        if let n = options.classCount {
            let matrix = MemoryBudget.format(MemoryBudget.product(n, n, MemoryLayout<UInt64>.size))
            try SizeLimitError.check(n, atMost: EvaluationOptions.maximumInferredClasses, what: "class count",
                                     path: "--num-classes", reason: "a \(n) × \(n) confusion matrix takes \(matrix)",
                                     hint: "evaluate label rasters with fewer classes")
        }
        var total = ConfusionMatrix(classCount: options.classCount ?? 0)
        for pair in pairs { total = total + (try confusionMatrix(pair, options: options)) }
        guard total.evaluatedPixels > 0, total.classCount > 0 else { throw NoValidPixels(pairs: pairs) }
        return EvaluationReport(matrix: total, pairs: pairs, options: options)
    }

    /// No truth pixel was left to score (all ignored, nodata or masked): there is no metric, and
    /// `aerialseg evaluate` says so and exits 1 rather than print NaN scores.
    public struct NoValidPixels: Error, CustomStringConvertible, Sendable {
        public let pairs: [EvaluationPair]
        public var description: String {
            let file = pairs.count == 1 ? pairs[0].truth : "\(pairs.count) truth rasters"
            return "\(file): no valid truth pixels to evaluate (every pixel is the ignore index, nodata or masked; "
                + "check --ignore and --truth-map)"
        }
    }

    /// The confusion matrix of one prediction against its truth. Throws when either is not a
    /// single-band integer raster, or when the grids differ (unless `reprojectTruth`).
    public static func confusionMatrix(_ pair: EvaluationPair, options: EvaluationOptions) throws -> ConfusionMatrix {
        let prediction = try Dataset(path: pair.prediction)
        let truthFile = try Dataset(path: pair.truth)
        try checkLabelRaster(prediction, role: "prediction")
        try checkLabelRaster(truthFile, role: "truth")
        var truth = truthFile
        if let mismatch = truthFile.gridMismatch(with: prediction) {
            guard options.reprojectTruth else {
                throw PipelineError(path: pair.truth,
                                    reason: "its grid differs from the prediction \(pair.prediction): \(mismatch)",
                                    hint: "use --reproject-truth to warp it onto the prediction's grid")
            }
            do {
                truth = try truthFile.warped(onto: prediction)
            } catch let error as GeoIOError {
                throw PipelineError(path: pair.truth, reason: "cannot warp onto \(pair.prediction): \(error.message)",
                                    hint: error.hint)
            }
        }
        let lookup = TruthLookup(options)
        var matrix = ConfusionMatrix(classCount: options.classCount ?? 0)
        let width = prediction.width, height = prediction.height
        let rows = max(1, min(height, options.pixelsPerStrip / max(width, 1)))
        var predValues = [Float](repeating: 0, count: rows * width)
        var truthValues = [Float](repeating: 0, count: rows * width)
        var validity = [UInt8](repeating: 0, count: rows * width)
        var predIds = [Int32](repeating: 0, count: rows * width)
        var truthIds = [Int32](repeating: 0, count: rows * width)
        for y in stride(from: 0, to: height, by: rows) {
            let window = PixelWindow(x: 0, y: y, width: width, height: min(rows, height - y))
            let count = window.pixelCount
            try predValues.withUnsafeMutableBufferPointer {
                try prediction.read(window, bands: [1], into: $0)
            }
            do {
                try truthValues.withUnsafeMutableBufferPointer { values in
                    try validity.withUnsafeMutableBufferPointer { valid in
                        try truth.read(window, bands: [1], into: values, validity: valid)
                    }
                }
            } catch let error as GeoIOError where truth !== truthFile {
                throw GeoIOError(error.code, path: pair.truth, message: "warped: \(error.message)", hint: error.hint)
            }
            var largest: Int32 = -1
            for i in 0..<count {
                let t = validity[i] == 0 ? ConfusionMatrix.ignored : lookup.classID(truthValues[i])
                let p = clampedInt32(predValues[i])
                truthIds[i] = t
                predIds[i] = p
                if options.classCount == nil && t != ConfusionMatrix.ignored {
                    largest = max(largest, t, Int(p) == options.ignoreIndex ? -1 : p)
                }
            }
            if options.classCount == nil && Int(largest) >= matrix.classCount {
                guard Int(largest) < EvaluationOptions.maximumInferredClasses else {
                    let file = truthIds.prefix(count).contains(largest) ? pair.truth : pair.prediction
                    throw PipelineError(path: file, reason: "holds the value \(largest), taken as a class id",
                                        hint: "give --num-classes N (values outside 0..N-1 are then out of range)")
                }
                matrix = matrix.resized(to: Int(largest) + 1)
            }
            truthIds.withUnsafeBufferPointer { t in
                predIds.withUnsafeBufferPointer { p in
                    matrix.add(truth: UnsafeBufferPointer(rebasing: t[0..<count]),
                               prediction: UnsafeBufferPointer(rebasing: p[0..<count]))
                }
            }
        }
        return matrix
    }

    /// Label rasters are one band of integers.
    static func checkLabelRaster(_ ds: Dataset, role: String) throws {
        if ds.bandCount != 1 {
            throw PipelineError(path: ds.path, reason: "the \(role) has \(ds.bandCount) bands, not 1",
                                hint: "give a single-band label raster (class ids), e.g. `run`'s .labels.tif")
        }
        let type = ds.band(1).dataType
        let integers: Set<RasterDataType> = [.byte, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64]
        if !integers.contains(type) {
            throw PipelineError(path: ds.path, reason: "the \(role) holds \(type.rawValue) values, not class ids",
                                hint: "label rasters must be of an integer type (Byte, UInt16, Int16, ...)")
        }
    }

    static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    static func rasters(in folder: String) throws -> [String] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw PipelineError(path: folder, reason: "cannot list the folder: \((error as NSError).localizedDescription)",
                                hint: "check its permissions")
        }
        let names = entries.filter {
            !$0.hasPrefix(".") && InputExpansion.rasterExtensions.contains(($0 as NSString).pathExtension.lowercased())
        }
        if names.isEmpty {
            throw PipelineError(path: folder, reason: "the folder holds no rasters",
                                hint: "expected .tif, .png, ... files")
        }
        return names
    }

    static func stemOf(_ name: String, dropping suffix: String? = nil) -> String {
        let stem = (name as NSString).deletingPathExtension
        if let suffix, stem.hasSuffix(suffix), stem.count > suffix.count { return String(stem.dropLast(suffix.count)) }
        return stem
    }

    static func index(_ names: [String], folder: String, stem: (String) -> String) throws -> [String: String] {
        var byStem: [String: String] = [:]
        for name in names.sorted() {
            if let other = byStem[stem(name)] {
                throw PipelineError(path: (folder as NSString).appendingPathComponent(name),
                                    reason: "has the same stem as \(other)", hint: "keep one raster per image")
            }
            byStem[stem(name)] = name
        }
        return byStem
    }

    static func list(_ names: [String]) -> String {
        names.count <= 5 ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ")
            + " and \(names.count - 5) more"
    }
}

/// A label value as Int32, saturating: Float32 holds every class id exactly (up to 2²⁴), and huge
/// values stay huge, out of any class range.
func clampedInt32(_ value: Float) -> Int32 {
    value >= 2.0e9 ? Int32.max : value <= -2.0e9 ? Int32.min + 1 : Int32(value)
}

/// Truth value → class id: the `--truth-map` (values it does not name are ignored), then the ignore index.
struct TruthLookup {
    let ignore: Int32
    /// Class ids of truth values 0...255, when a map is given.
    let table: [Int32]?
    /// Class ids of other mapped values (negative or above 255).
    let others: [Int32: Int32]

    init(_ options: EvaluationOptions) {
        ignore = Int32(clamping: options.ignoreIndex)
        guard let map = options.truthMap else {
            table = nil
            others = [:]
            return
        }
        var table = [Int32](repeating: ConfusionMatrix.ignored, count: 256)
        var others: [Int32: Int32] = [:]
        for (key, id) in map.entries {
            guard let value = Int32(key) else { continue }  // a text key (vector attribute) names no pixel value
            if (0...255).contains(value) { table[Int(value)] = Int32(id) } else { others[value] = Int32(id) }
        }
        self.table = table
        self.others = others
    }

    /// The class id of a (valid) truth value, or `ConfusionMatrix.ignored`.
    @inline(__always)
    func classID(_ value: Float) -> Int32 {
        var v = clampedInt32(value)
        if let table {
            v = v >= 0 && v < 256 ? table[Int(v)] : others[v] ?? ConfusionMatrix.ignored
            if v == ConfusionMatrix.ignored { return v }
        }
        return v == ignore ? ConfusionMatrix.ignored : v
    }
}

/// What `aerialseg evaluate` reports (its `--json` output). Scores are fractions in 0...1, unrounded
/// (mmseg's table shows them × 100, rounded to 2 decimals); a NaN score (a zero denominator: class
/// absent, left out of the means) is `null`.
public struct EvaluationReport: Codable, Sendable {
    public struct ClassRow: Codable, Sendable {
        public var index: Int
        public var name: String
        public var iou: Double?
        public var acc: Double?
        public var intersection: UInt64
        public var union: UInt64
        public var predictedPixels: UInt64
        public var truthPixels: UInt64

        enum CodingKeys: String, CodingKey {
            case index, name, iou, acc, intersection, union, predictedPixels, truthPixels
        }

        /// Writes absent scores as `null` (the synthesized encoder would leave the keys out).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(name, forKey: .name)
            try c.encode(iou, forKey: .iou)
            try c.encode(acc, forKey: .acc)
            try c.encode(intersection, forKey: .intersection)
            try c.encode(union, forKey: .union)
            try c.encode(predictedPixels, forKey: .predictedPixels)
            try c.encode(truthPixels, forKey: .truthPixels)
        }
    }

    public struct Pair: Codable, Sendable {
        public var prediction: String
        public var truth: String
    }

    public struct PixelCounts: Codable, Sendable {
        /// All pixels of all pairs.
        public var total: UInt64
        /// Truth valid and not the ignore index (mmseg's mask).
        public var evaluated: UInt64
        /// Ignore index, nodata/masked truth, or outside the truth's footprint.
        public var ignored: UInt64
        /// Evaluated pixels predicted outside 0..N-1 (e.g. 255, nodata of `run`'s labels).
        public var predictionOutOfRange: UInt64
        /// Evaluated pixels whose truth is outside 0..N-1.
        public var truthOutOfRange: UInt64
    }

    public var pairs: [Pair]
    public var numClasses: Int
    public var ignoreIndex: Int
    public var classes: [ClassRow]
    public var aAcc: Double?
    public var mIoU: Double?
    public var mAcc: Double?
    /// (N, N): rows are true classes, columns predicted classes.
    public var confusionMatrix: [[UInt64]]
    public var pixels: PixelCounts

    enum CodingKeys: String, CodingKey {
        case pairs, numClasses, ignoreIndex, classes, aAcc, mIoU, mAcc, confusionMatrix, pixels
    }

    /// Writes absent scores as `null`, so every key is always there.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pairs, forKey: .pairs)
        try c.encode(numClasses, forKey: .numClasses)
        try c.encode(ignoreIndex, forKey: .ignoreIndex)
        try c.encode(classes, forKey: .classes)
        try c.encode(aAcc, forKey: .aAcc)
        try c.encode(mIoU, forKey: .mIoU)
        try c.encode(mAcc, forKey: .mAcc)
        try c.encode(confusionMatrix, forKey: .confusionMatrix)
        try c.encode(pixels, forKey: .pixels)
    }

    public init(matrix: ConfusionMatrix, pairs: [EvaluationPair], options: EvaluationOptions) {
        let m = matrix.metrics
        let n = matrix.classCount
        func number(_ x: Double) -> Double? { x.isNaN ? nil : x }
        self.pairs = pairs.map { Pair(prediction: $0.prediction, truth: $0.truth) }
        numClasses = n
        ignoreIndex = options.ignoreIndex
        classes = (0..<n).map { c in
            let names = options.classNames ?? []
            return ClassRow(index: c, name: c < names.count ? names[c] : "\(c)", iou: number(m.iou[c]),
                            acc: number(m.accuracy[c]), intersection: m.intersection[c], union: m.union[c],
                            predictedPixels: m.predictedArea[c], truthPixels: m.truthArea[c])
        }
        aAcc = number(m.overallAccuracy)
        mIoU = number(m.meanIoU)
        mAcc = number(m.meanAccuracy)
        confusionMatrix = (0..<n).map { t in (0..<n).map { p in matrix[t, p] } }
        let bothOut = matrix.bothOutOfRange
        pixels = PixelCounts(
            total: matrix.totalPixels, evaluated: matrix.evaluatedPixels, ignored: matrix.ignoredPixels,
            predictionOutOfRange: matrix.predictionOutOfRange.reduce(0, +) + bothOut,
            truthOutOfRange: matrix.truthOutOfRange.reduce(0, +) + bothOut)
    }

    /// mmseg's per-class table (IoU and Acc in %, 2 decimals, `nan` for absent classes), the summary
    /// line, and the confusion matrix when it fits (at most 16 classes).
    public var table: String {
        func percent(_ x: Double?) -> String { x.map { String(format: "%.2f", $0 * 100) } ?? "nan" }
        let header = ["Class", "IoU", "Acc"]
        let rows = classes.map { [$0.name, percent($0.iou), percent($0.acc)] }
        var lines = alignedTable(header: header, rows: rows)
        lines.append("aAcc: \(percent(aAcc))  mIoU: \(percent(mIoU))  mAcc: \(percent(mAcc))  "
                     + "(\(pairs.count) pair\(pairs.count == 1 ? "" : "s"), \(pixels.evaluated) pixels evaluated, "
                     + "\(pixels.ignored) ignored)")
        if pixels.predictionOutOfRange > 0 {
            lines.append("note: \(pixels.predictionOutOfRange) evaluated pixels are predicted outside "
                         + "0..\(numClasses - 1) (counted as errors, as mmseg does)")
        }
        if pixels.truthOutOfRange > 0 {
            lines.append("note: \(pixels.truthOutOfRange) truth pixels are outside 0..\(numClasses - 1) and not "
                         + "the ignore index \(ignoreIndex) (their predictions count in the predicted areas)")
        }
        if numClasses <= 16 {
            lines.append("confusion matrix (rows: truth, columns: prediction):")
            let header = ["truth \\ pred"] + classes.map(\.name)
            let rows = classes.map { [$0.name] + confusionMatrix[$0.index].map { "\($0)" } }
            lines += alignedTable(header: header, rows: rows)
        }
        return lines.joined(separator: "\n")
    }
}

/// A PrettyTable-style table: `+---+` rules, centred header, names left- and numbers right-aligned.
func alignedTable(header: [String], rows: [[String]]) -> [String] {
    let widths = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(\.count).max() ?? 0 }
    let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) + "+" }.joined()
    func pad(_ text: String, _ width: Int, centred: Bool) -> String {
        let space = width - text.count
        let left = centred ? space / 2 : (Double(text) == nil && text != "nan" ? 0 : space)
        return String(repeating: " ", count: left) + text + String(repeating: " ", count: space - left)
    }
    func line(_ cells: [String], centred: Bool) -> String {
        "|" + cells.enumerated().map { " " + pad($1, widths[$0], centred: centred) + " |" }.joined()
    }
    return [rule, line(header, centred: true), rule] + rows.map { line($0, centred: false) } + [rule]
}
