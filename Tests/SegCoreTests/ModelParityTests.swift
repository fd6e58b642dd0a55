import Foundation
import SegCore
import TestSupport
import Testing

/// One fixture folder (an `OracleFixture`) with its model description decoded and, per case, the
/// arrays mmseg computed, typed.
struct Oracle {
    struct Array: Sendable {
        let file: URL
        let dtype: String
        let shape: [Int]
    }

    let folder: URL
    let config: ModelConfig
    let json: [String: Any]

    let fixture: OracleFixture

    init(_ folder: URL) throws {
        self.folder = folder
        fixture = try OracleFixture(folder: folder)
        config = try ModelConfig.decode(json: fixture.data, source: folder.path)
        json = fixture.json
    }

    func caseInfo(_ name: String) -> [String: Any] { fixture.caseInfo(name) }

    /// The array `name` of case `caseName`, or nil when the oracle does not list it.
    func array(_ caseName: String, _ name: String) -> Array? {
        let info = caseInfo(caseName)
        guard let dir = info["dir"] as? String,
              let entry = (info["arrays"] as? [String: Any])?[name] as? [String: Any],
              let bin = entry["bin"] as? String, let dtype = entry["dtype"] as? String,
              let shape = entry["shape"] as? [Int] else { return nil }
        return Array(file: folder.appendingPathComponent(dir).appendingPathComponent(bin), dtype: dtype, shape: shape)
    }

    func bytes(_ a: Array) throws -> [UInt8] {
        let data = try Data(contentsOf: a.file)
        let item = a.dtype == "uint8" ? 1 : 4
        guard data.count == a.shape.reduce(1, *) * item else {
            throw TestFailure("\(a.file.path): \(data.count) bytes do not hold \(a.dtype) \(a.shape)")
        }
        return [UInt8](data)
    }

    func tensor(_ a: Array) throws -> Tensor {
        let raw = try bytes(a)
        let values = (0..<(raw.count / 4)).map { i in
            Float(bitPattern: UInt32(raw[4 * i]) | UInt32(raw[4 * i + 1]) << 8
                  | UInt32(raw[4 * i + 2]) << 16 | UInt32(raw[4 * i + 3]) << 24)
        }
        return Tensor(shape: a.shape, data: values)
    }

    func labels(_ a: Array) throws -> [Int32] {
        try tensor(a).data.map { Int32(bitPattern: $0.bitPattern) }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Max |a - b| over equal shapes (infinity when the shapes differ).
func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
    guard a.shape == b.shape else { return .infinity }
    var worst: Float = 0
    for i in a.data.indices { worst = max(worst, abs(a.data[i] - b.data[i])) }
    return worst
}

/// Labels that differ where the oracle's top-2 logits are at least `margin` apart.
private func labelMismatches(_ ours: [Int32], _ oracle: [Int32], oracleLogits: Tensor, margin: Float = 1e-4) -> Int {
    let c = oracleLogits.shape[1], hw = oracleLogits.shape[2] * oracleLogits.shape[3]
    var bad = 0
    for p in 0..<min(ours.count, hw) where ours[p] != oracle[p] {
        var values = (0..<c).map { oracleLogits.data[$0 * hw + p] }
        values.sort(by: >)
        if values[0] - values[1] >= margin { bad += 1 }
    }
    return bad + abs(ours.count - oracle.count)
}

/// The backends every parity test runs on. The oneDNN one (`FastBackendTests.backend`) is created
/// once and shared by every model, so its primitive caches and buffer pool see them all in turn.
enum TestBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case reference, onednn

    var testDescription: String { rawValue }

    /// `config` with `weights` on this backend.
    func model(_ config: ModelConfig, _ weights: [String: Tensor]) throws -> SegmentationModel {
        switch self {
        case .reference: return try SegmentationModel(config: config, weights: weights, backend: ReferenceBackend())
        case .onednn:
            let backend = try #require(FastBackendTests.backend, "oneDNN engine could not be created")
            return try SegmentationModel(config: config, weights: weights, backend: backend)
        }
    }
}

/// Arrays of the fixtures that belong to other modules' tests: slide inference and TTA (Pipeline)
/// and EncNet's training-only SE-loss logits.
private func isCheckedElsewhere(_ name: String) -> Bool {
    name == "logits_slide" || name == "decode_se_logits" || name.hasPrefix("tta_")
}

/// Runs one fixture case on `backend` and compares every array mmseg wrote: the preprocessed
/// input, backbone and neck features, the raw head output, whole-image, original-size and
/// flipped logits (max |diff| ≤ 1e-4) and the labels (equal where the oracle's top-2 margin ≥ 1e-4).
/// With `requireAll`, every array the oracle lists must exist and be compared (except those
/// `isCheckedElsewhere`); otherwise missing files are skipped.
func checkParity(folder: URL, caseName: String, backend: TestBackend, requireAll: Bool) throws {
    let tolerance: Float = 1e-4
    let oracle = try Oracle(folder)
    var compared: Set<String> = []
    func array(_ name: String) -> Oracle.Array? {
        guard let a = oracle.array(caseName, name) else { return nil }
        if !requireAll && !FileManager.default.fileExists(atPath: a.file.path) { return nil }
        compared.insert(name)
        return a
    }
    let checkpoint = try Checkpoint.load(path: folder.appendingPathComponent("weights.safetensors").path)
    let model = try backend.model(oracle.config, checkpoint.floatTensors())
    let name = "\(folder.lastPathComponent) \(caseName) \(backend)"
    var report: [String] = []
    func compare(_ label: String, _ ours: Tensor, _ theirs: Tensor) {
        let diff = maxAbsDiff(ours, theirs)
        report.append("\(label) \(String(format: "%.2e", diff))")
        #expect(ours.shape == theirs.shape, "\(name) \(label): shape \(ours.shape) vs mmseg \(theirs.shape)")
        #expect(diff <= tolerance, "\(name) \(label): max abs diff \(diff)")
    }
    func compareLabels(_ label: String, _ logits: Tensor, _ oracleLogits: Tensor) throws {
        guard let p = array(label) else { return }
        let bad = labelMismatches(SegmentationModel.argmax(logits), try oracle.labels(p), oracleLogits: oracleLogits)
        report.append("\(label) \(bad)")
        #expect(bad == 0, "\(name): \(bad) labels differ from mmseg's \(label)")
    }

    // Preprocessing: image_bgr_u8 → input.
    let inputArray = try #require(array("input"), "\(name): no input array")
    let input = try oracle.tensor(inputArray)
    if let image = array("image_bgr_u8") {
        let pixels = try oracle.bytes(image)
        let ours = try model.preprocess(pixels, height: image.shape[0], width: image.shape[1], order: .bgr)
        let diff = maxAbsDiff(ours, input)
        report.append("input \(String(format: "%.1e", diff))")
        #expect(diff <= 1e-6, "\(name) preprocessing: max abs diff \(diff)")
    }

    // Intermediate features and the raw head output.
    let forward = try model.forward(input)
    let backboneNames = oracle.config.isRegSeg
        ? ["feat_stem", "feat_body_4", "feat_body_8", "feat_body_16"]
        : (0..<forward.backbone.count).map { "feat_backbone_\($0)" }
    #expect(oracle.config.isRegSeg || oracle.array(caseName, "feat_backbone_\(forward.backbone.count)") == nil,
            "\(name): mmseg returned more backbone features than we do")
    #expect(oracle.array(caseName, "feat_neck_\(forward.neck.count)") == nil,
            "\(name): mmseg returned more neck features than we do")
    for (i, key) in backboneNames.enumerated() {
        guard let a = array(key) else { continue }
        try #require(i < forward.backbone.count, "\(name): missing backbone output \(i)")
        compare(key, forward.backbone[i], try oracle.tensor(a))
    }
    for (i, feature) in forward.neck.enumerated() {
        guard let a = array("feat_neck_\(i)") else { continue }
        compare("feat_neck_\(i)", feature, try oracle.tensor(a))
    }
    if let a = array("decode_raw") { compare("decode_raw", forward.decodeRaw, try oracle.tensor(a)) }

    // Whole inference, labels, original-size logits, flip.
    let logits = try model.logits(input)
    if let a = array(oracle.config.isRegSeg ? "logits" : "logits_whole") {
        let theirs = try oracle.tensor(a)
        compare("logits_whole", logits, theirs)
        try compareLabels(oracle.config.isRegSeg ? "pred" : "pred_whole", logits, theirs)
    }
    if let a = array("logits_ori") {
        let ori = try #require(oracle.caseInfo(caseName)["ori_shape_for_logits_ori"] as? [Int],
                               "\(name): logits_ori without ori_shape_for_logits_ori")
        let theirs = try oracle.tensor(a)
        let ours = try model.resizeLogits(logits, to: Size2(height: ori[0], width: ori[1]))
        compare("logits_ori", ours, theirs)
        try compareLabels("pred_ori", ours, theirs)
    }
    if let a = array("logits_flip") {
        compare("logits_flip", try model.flippedLogits(input), try oracle.tensor(a))
    }
    if requireAll {
        let listed = (oracle.caseInfo(caseName)["arrays"] as? [String: Any] ?? [:]).keys
        let unchecked = listed.filter { !compared.contains($0) && !isCheckedElsewhere($0) }.sorted()
        #expect(unchecked.isEmpty, "\(name): arrays not compared: \(unchecked)")
    }
    print("parity \(name): " + report.joined(separator: ", "))
}

/// One case of one shared fixture.
struct FixtureCase: Sendable, CustomTestStringConvertible {
    let model: String
    let caseName: String
    var testDescription: String { "\(model) \(caseName)" }
}

@Suite("Model parity with mmsegmentation")
struct ModelParityTests {
    static let models = [
        "fcn_r18_d8", "fcn_r50_d8", "dlv3_r101_d16_mg124", "dlv3p_r18_d8_potsdam", "dlv3p_r18b_d8_v1b",
        "dlv3p_r50_d8_potsdam", "fastfcn_jpu_psp_r50_d32", "fastfcn_jpu_aspp_r50_d32", "fastfcn_jpu_enc_r50_d32",
        "regseg_exp48_decoder26",
    ]
    static let fixtureCases = models.flatMap { model in
        ["64x64", "96x80"].map { FixtureCase(model: model, caseName: $0) }
    }

    @Test("every seed model matches mmseg's outputs", .enabled(if: Fixtures.hasShared("fixtures/mmseg"), "needs ../shared/fixtures/mmseg"), arguments: fixtureCases, TestBackend.allCases)
    func sharedFixture(_ fixture: FixtureCase, backend: TestBackend) throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/\(fixture.model)")
        try checkParity(folder: folder, caseName: fixture.caseName, backend: backend, requireAll: true)
    }

    /// Runs from `Tests/Fixtures`, so it also runs where `../shared` is absent.
    @Test("DeepLabV3+ R-18 Potsdam matches mmseg from the committed fixture", arguments: TestBackend.allCases)
    func localFixture(backend: TestBackend) throws {
        let folder = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("weights.safetensors").path) else {
            print("skipped: localFixture: \(folder.path)/weights.safetensors is missing")
            return
        }
        try checkParity(folder: folder, caseName: "64x64", backend: backend, requireAll: false)
    }

    @Test("a checkpoint that does not fit the description is rejected with the key and both shapes", .enabled(if: Fixtures.hasShared("fixtures/mmseg/fcn_r18_d8"), "needs ../shared/fixtures/mmseg/fcn_r18_d8"))
    func strictLoading() throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/fcn_r18_d8")
        let oracle = try Oracle(folder)
        let weights = try Checkpoint.load(path: folder.appendingPathComponent("weights.safetensors").path)
            .floatTensors()
        let backend = ReferenceBackend()

        var missing = weights
        missing["backbone.layer2.0.conv1.weight"] = nil
        let missingError = #expect(throws: WeightError.self) {
            try SegmentationModel(config: oracle.config, weights: missing, backend: backend)
        }
        #expect(missingError?.kind == .missingKey)
        #expect(missingError?.key == "backbone.layer2.0.conv1.weight")

        var extra = weights
        extra["decode_head.extra.weight"] = Tensor(zeros: [2])
        extra["auxiliary_head.anything"] = Tensor(zeros: [1])
        let extraError = #expect(throws: WeightError.self) {
            try SegmentationModel(config: oracle.config, weights: extra, backend: backend)
        }
        #expect(extraError?.keys == ["decode_head.extra.weight"])

        var wrongConfig = oracle.config
        wrongConfig.backbone?.stemChannels = 8      // the fixture's deep stem is 3→2→2→4
        let shapeError = #expect(throws: WeightError.self) {
            try SegmentationModel(config: wrongConfig, weights: weights, backend: backend)
        }
        #expect(shapeError?.kind == .mismatchedSize)
        #expect(shapeError?.key == "backbone.stem.0.weight")
        #expect(shapeError?.expected == [4, 3, 3, 3] && shapeError?.actual == [2, 3, 3, 3])
    }

    @Test("random weights have exactly the checkpoint's keys and shapes", .enabled(if: Fixtures.hasShared("fixtures/mmseg"), "needs ../shared/fixtures/mmseg"), arguments: models.dropLast())
    func randomWeightsMatchCheckpoint(model: String) throws {
        let folder = try Fixtures.requireShared("fixtures/mmseg/\(model)")
        let oracle = try Oracle(folder)
        let real = try Checkpoint.load(path: folder.appendingPathComponent("weights.safetensors").path)
            .floatTensors()
            .filter { !$0.key.hasPrefix("auxiliary_head.") && !$0.key.hasPrefix("decode_head.se_layer.") }
        let random = try SegmentationModel.randomWeights(config: oracle.config, seed: 7)
        #expect(random.mapValues(\.shape) == real.mapValues(\.shape))
        let logits = try SegmentationModel(config: oracle.config, weights: random, backend: ReferenceBackend())
            .logits(Tensor(zeros: [1, 3, 40, 24]))
        #expect(logits.shape == [1, oracle.config.decodeHead?.numClasses ?? 0, 40, 24])
        let finite = logits.data.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test("full-size RegSeg random weights match upstream's key list", .enabled(if: Fixtures.hasShared("docs/mmseg-keys/regseg_exp48_decoder26.txt"), "needs ../shared/docs/mmseg-keys/regseg_exp48_decoder26.txt"))
    func randomRegSegMatchesUpstreamKeys() throws {
        let list = try Fixtures.requireShared("docs/mmseg-keys/regseg_exp48_decoder26.txt")
        var expected: [String: [Int]] = [:]
        for line in try String(contentsOf: list, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: "\t")
            guard fields.count >= 2, !fields[0].hasSuffix("num_batches_tracked") else { continue }
            expected[String(fields[0])] = fields[1].dropFirst().dropLast().split(separator: ",")
                .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }
        let random = try SegmentationModel.randomWeights(config: ModelConfig(type: "RegSeg", numClasses: 19), seed: 1)
        #expect(random.count == expected.count)
        #expect(random.mapValues(\.shape) == expected)
    }
}
