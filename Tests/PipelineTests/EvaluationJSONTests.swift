import Foundation
@testable import Pipeline
import Testing

/// `evaluate --json` keeps every key: an absent class's scores are `null`, not left out.
@Suite struct EvaluationJSONTests {
    @Test func absentScoresAreNull() throws {
        var matrix = ConfusionMatrix(classCount: 2)
        let truth: [Int32] = [0, 0, 0], prediction: [Int32] = [0, 0, 0]
        truth.withUnsafeBufferPointer { t in prediction.withUnsafeBufferPointer { matrix.add(truth: t, prediction: $0) } }
        let report = EvaluationReport(matrix: matrix, pairs: [], options: EvaluationOptions(classCount: 2))
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as! [String: Any]
        let classes = json["classes"] as! [[String: Any]]
        #expect(classes[1].keys.contains("iou") && classes[1]["iou"] is NSNull)
        #expect(classes[1].keys.contains("acc") && classes[1]["acc"] is NSNull)
        #expect(Set(["aAcc", "mIoU", "mAcc"]).isSubset(of: json.keys))
    }
}
