import ArgumentParser
import Foundation
import Pipeline

/// `aerialseg evaluate PRED TRUTH [--num-classes N | --pipeline P.yaml] [--ignore 255] [--json]`
struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score predicted label rasters against truth: per-class IoU and accuracy, mIoU, mAcc, aAcc.",
        discussion: """
            Metrics are mmsegmentation's IoUMetric: pixels are counted over all pairs first, then \
            per class; classes absent from both prediction and truth are left out of the means. \
            Truth pixels equal to the ignore index, nodata or masked are left out; predictions outside \
            0..N-1 (e.g. 255, nodata in `run`'s labels) count as errors. Rasters must share their grid \
            unless --reproject-truth is given. Folders are matched by name: prediction \
            <stem>.labels.tif or <stem>.tif against truth <stem>.tif.
            """)

    @Argument(help: "Predicted labels: a raster, or a folder of them (e.g. `run`'s output folder).")
    var prediction: String

    @Argument(help: "Truth labels: a raster, or a folder of rasters named like the predictions.")
    var truth: String

    @Option(help: "Number of classes N; default: the pipeline's, else the largest value seen + 1.")
    var numClasses: Int?

    @Option(help: "A pipeline file whose classes (names and count) are evaluated.")
    var pipeline: String?

    @Option(help: "Truth value left out of the evaluation (mmseg's ignore_index).")
    var ignore = 255

    @Option(help: "Map truth values to class ids first, e.g. 0=0,255=1; values not named are ignored.")
    var truthMap: String?

    @Flag(help: "Warp the truth onto the prediction's grid (nearest neighbour) when the grids differ.")
    var reprojectTruth = false

    @Flag(help: "Print one JSON object (scores as fractions 0...1, null for absent classes).")
    var json = false

    func validate() throws {
        if numClasses != nil && pipeline != nil { throw ValidationError("give --num-classes or --pipeline, not both") }
        if let numClasses, numClasses < 1 { throw ValidationError("--num-classes must be at least 1") }
    }

    func run() async throws {
        let report: EvaluationReport
        do {
            var options = EvaluationOptions(classCount: numClasses)
            options.ignoreIndex = ignore
            options.reprojectTruth = reprojectTruth
            if let truthMap { options.truthMap = try ValueMap(parsing: truthMap, option: "--truth-map") }
            if let pipeline {
                let config = try PipelineConfig.load(path: pipeline)
                let count = config.classes?.count ?? config.model.decodeHead?.numClasses ?? config.model.numClasses
                guard let count else {
                    throw PipelineError(path: pipeline, reason: "names no classes and no num_classes",
                                        hint: "add `classes: [...]` to the pipeline, or give --num-classes")
                }
                options.classCount = count
                options.classNames = config.classes
            }
            report = try Evaluation.evaluate(Evaluation.pairs(prediction: prediction, truth: truth), options: options)
        } catch let error as Evaluation.NoValidPixels {
            throw fail(error, code: 1)  // the inputs are usable, they just hold nothing to score
        } catch {
            throw fail(error)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.table)
        }
    }
}
