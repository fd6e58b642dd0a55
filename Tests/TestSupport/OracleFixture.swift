import Foundation

/// One mmseg oracle fixture folder (`Tests/Fixtures/mmseg/<name>`, `Tests/Fixtures/mmseg-runner`, or
/// a folder of `../shared/fixtures/mmseg`): `oracle.json` parsed once, its arrays by case, and the
/// small pipelines the tests run the fixture's model with.
public struct OracleFixture: @unchecked Sendable {  // `json` holds only JSONSerialization's immutable values
    public let folder: URL
    /// `oracle.json`'s bytes (for decoders that take JSON) and its parsed object.
    public let data: Data
    public let json: [String: Any]

    public init(folder: URL) throws {
        self.folder = folder
        data = try Data(contentsOf: folder.appendingPathComponent("oracle.json"))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ToolError(message: "\(folder.path)/oracle.json is not a JSON object")
        }
        json = object
    }

    /// The small DeepLabV3+ R-18 fixture (1/16 widths) that most tests run: `Tests/Fixtures/mmseg/dlv3p_r18_d8_potsdam`.
    public static func small() throws -> OracleFixture {
        try OracleFixture(folder: Fixtures.local("mmseg/dlv3p_r18_d8_potsdam"))
    }

    /// The fixture's `checkpoint.pth`.
    public var checkpoint: String { folder.appendingPathComponent("checkpoint.pth").path }

    /// The Potsdam class names of the fixture's six classes.
    public static let potsdamClasses = ["impervious_surface", "building", "low_vegetation", "tree", "car", "clutter"]

    /// Case `name`'s entry in `cases`.
    public func caseInfo(_ name: String) -> [String: Any] {
        (json["cases"] as? [String: Any])?[name] as? [String: Any] ?? [:]
    }

    /// The shape oracle.json lists for array `array` of case `caseName`.
    public func shape(_ caseName: String, _ array: String) -> [Int]? {
        ((caseInfo(caseName)["arrays"] as? [String: Any])?[array] as? [String: Any])?["shape"] as? [Int]
    }

    /// The raw bytes of `<case>/<name>.bin`.
    public func bytes(_ caseName: String, _ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: folder.appendingPathComponent("\(caseName)/\(name).bin")))
    }

    /// `<case>/<name>.bin` as float32.
    public func floats(_ caseName: String, _ name: String) throws -> [Float] {
        let data = try Data(contentsOf: folder.appendingPathComponent("\(caseName)/\(name).bin"))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// The model description as a JSON object (JSON is YAML): the fixture's `keys` that are present.
    public func model(keys: [String] = ["backbone", "decode_head", "data_preprocessor"]) -> [String: Any] {
        var model: [String: Any] = [:]
        for key in keys { if let value = json[key], !(value is NSNull) { model[key] = value } }
        return model
    }

    /// A pipeline file `dir/<name>.yaml` with the fixture's model, the Potsdam classes (when
    /// `classes`), the tiling, `checkpoint:` when given, and `extra` YAML lines; returns its path.
    public func writePipeline(in dir: URL, name: String = "small", crop: Int, stride: Int, blend: String = "hann",
                              classes: Bool = true, checkpoint: String? = nil, extra: [String] = [],
                              model: [String: Any]? = nil) throws -> String {
        var lines = ["model: " + String(decoding: try JSONSerialization.data(withJSONObject: model ?? self.model(),
                                                                               options: .sortedKeys), as: UTF8.self)]
        if classes { lines.append("classes: [\(Self.potsdamClasses.joined(separator: ", "))]") }
        lines.append("tiling: {crop: \(crop), stride: \(stride), blend: \(blend)}")
        if let checkpoint { lines.append("checkpoint: \(checkpoint)") }
        lines += extra
        let path = dir.appendingPathComponent("\(name).yaml").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
