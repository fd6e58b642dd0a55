import Foundation
import Pipeline
import Testing
import TestSupport

/// The `vectors:` block of pipeline files: decoding, validation, and `aerialseg run` writing
/// `<stem>.vectors.<ext>` beside the labels.
@Suite struct VectorsConfigTests {
    let model = "model: {decode_head: {type: FCNHead}}\n"

    func load(_ yaml: String) throws -> PipelineConfig {
        let dir = Fixtures.temporaryDirectory("aerialseg-yaml")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("p.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try PipelineConfig.load(path: path)
    }

    @Test func decodesSnakeCaseKeys() throws {
        let config = try load(model + """
            vectors:
              format: shp
              min_area: 2.5
              simplify: 0.5
              connectivity: 8
              exclude: [0, 3]
            """)
        let vectors = try #require(config.vectors)
        #expect(vectors.format == "shp")
        #expect(vectors.minArea == 2.5)
        #expect(vectors.simplify == 0.5)
        #expect(vectors.connectivity == 8)
        #expect(vectors.exclude == [0, 3])
        #expect(try load(model).vectors == nil, "absent by default")
        #expect(try load(model + "vectors: {}\n").vectors != nil, "an empty block asks for defaults")
    }

    static let badBlocks: [(String, String)] = [
        ("vectors: {format: kml}\n", "unknown format 'kml'"),
        ("vectors: {connectivity: 6}\n", "connectivity 6 must be 4 or 8"),
        ("vectors: {min_area: -1}\n", "min_area -1.0 must be positive"),
        ("vectors: {simplify: -0.5}\n", "simplify -0.5 must be zero or positive"),
        ("vectors: {exclude: [300]}\n", "exclude [300] must list class ids"),
        ("vectors: {min_area: big}\n", "vectors.min_area"),
    ]

    @Test(arguments: badBlocks)
    func badBlockGivesAClearError(_ yaml: String, _ expected: String) throws {
        #expect { try load(model + yaml) } throws: { error in
            let text = "\(error)"
            return text.contains(expected) && !text.contains("\n")
        }
    }

    /// A run with a `vectors:` block writes `<stem>.vectors.shp` (with .prj/.cpg) whose polygons are
    /// the labels' regions (whole-image gdal_polygonize of the labels COG, nodata excluded), named
    /// after the pipeline's classes, also when the run resumes with its labels already done.
    @Test func runWritesVectorsBesideTheLabels() throws {
        let small = try OracleFixture.small()
        let fixture = small.folder
        let modelDict = small.model()
        let dir = Fixtures.temporaryDirectory("aerialseg-run-vectors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let names = ["impervious_surface", "building", "low_vegetation", "tree", "car", "clutter"]
        let yaml = "model: " + String(decoding: try JSONSerialization.data(withJSONObject: modelDict), as: UTF8.self)
            + "\nclasses: [\(names.joined(separator: ", "))]\ntiling: {crop: 256, stride: 192}\n"
            + "vectors: {format: shp, connectivity: 8}\n"
        let pipelinePath = dir.appendingPathComponent("small.yaml").path
        try yaml.write(toFile: pipelinePath, atomically: true, encoding: .utf8)

        let out = dir.appendingPathComponent("out").path
        var options = RunOptions(pipeline: try PipelineConfig.load(path: pipelinePath), outputDirectory: out)
        options.checkpoint = fixture.appendingPathComponent("checkpoint.pth").path
        options.preview = .none
        let input = Fixtures.local("rasters/rgb1.tif").path
        let shp = "\(out)/rgb1.vectors.shp"
        // First run: a folder in the way makes the final commit fail after every row band is done.
        try FileManager.default.createDirectory(atPath: shp + "/blocker", withIntermediateDirectories: true)
        let job = try SegmentationJob(options: options)
        #expect(throws: (any Error).self) { try job.run(input: input) }
        try FileManager.default.removeItem(atPath: shp)
        // Second run: resumes with the labels done, and still writes the vectors.
        let result = try job.run(input: input)
        #expect(result.resumedBands > 0 && result.windowsRun == 0, "resumed without inference")
        #expect(result.outputs.contains(shp))
        for ext in ["shx", "dbf", "prj", "cpg"] {
            #expect(FileManager.default.fileExists(atPath: "\(out)/rgb1.vectors.\(ext)"), "\(ext)")
        }

        let oracle = dir.appendingPathComponent("oracle.gpkg").path
        let labels = "\(out)/rgb1.labels.tif"
        let r = try Tool.run("gdal_polygonize.py", ["-8", "-q", labels, "-f", "GPKG", oracle, "o", "DN"])
        try #require(r.status == 0, "\(r.stderr)")
        func count(_ path: String, _ sql: String) throws -> String {
            let r = try Tool.run("ogrinfo", ["-q", path, "-dialect", "sqlite", "-sql", sql])
            return r.stdout.split(separator: "\n").filter { $0.contains("=") }.joined(separator: "\n")
        }
        let expected = try count(oracle, "SELECT DN AS class, COUNT(*) AS n FROM o WHERE DN <> 255 GROUP BY DN")
        let actual = try count(shp, "SELECT class, COUNT(*) AS n FROM \"rgb1.vectors\" GROUP BY class")
        #expect(!actual.isEmpty)
        #expect(actual.replacingOccurrences(of: "Integer64", with: "Integer") == expected, "\(actual)\n\(expected)")
        let classNames = try count(shp, "SELECT DISTINCT class_name FROM \"rgb1.vectors\"")
        #expect(classNames.split(separator: "\n").allSatisfy { line in names.contains { line.hasSuffix("= \($0)") } })

        // Without given names, `vectorize` takes them from the labels' category names (the pipeline's).
        let again = dir.appendingPathComponent("again.gpkg").path
        var options8 = VectorizeOptions()
        options8.connectivity = .eight
        options8.excludedValues = [255]
        let result8 = try Vectorizer.vectorize(labels: labels, output: again, options: options8)
        let againNames = try count(again, "SELECT DISTINCT class_name FROM again")
        func values(_ text: String, _ field: String) -> [String] {
            text.split(separator: "\n").filter { $0.contains(" \(field) (") }
                .compactMap { $0.split(separator: "=", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) }
        }
        #expect(Set(values(againNames, "class_name")) == Set(values(classNames, "class_name")))
        #expect(result8.features == values(actual, "n").compactMap { Int($0) }.reduce(0, +))
    }
}
