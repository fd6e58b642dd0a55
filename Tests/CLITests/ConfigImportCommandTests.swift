import Foundation
import Testing
import TestSupport

/// `aerialseg import-config`, run as a user would.
@Suite struct ConfigImportCommandTests {
    static let config = "deeplabv3plus/deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.py"
    static let configPath = Fixtures.local("mmseg-configs/configs/\(config)").path

    /// The lines of a YAML file that are not comments.
    func body(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
            .filter { !$0.hasPrefix("#") }
    }

    @Test func writesThePipelineFileAsShipped() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-import")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = Self.configPath
        let output = dir.appendingPathComponent("potsdam.yaml").path
        let checkpoint = dir.appendingPathComponent("models/potsdam r18.pth").path
        let result = try Tool.run(Tool.aerialseg, ["import-config", config, "--output", output,
                                                   "--checkpoint", checkpoint])
        try #require(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == output + "\n")
        let written = try String(contentsOfFile: output, encoding: .utf8)
        #expect(written.hasPrefix("# Imported by aerialseg import-config from \(config)\n"))
        let shipped = Fixtures.packageRoot
            .appendingPathComponent("Pipelines/deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.yaml")
        let lines = try body(output)
        #expect(lines.filter { !$0.hasPrefix("checkpoint:") } == (try body(shipped.path)),
                "Pipelines/ holds what import-config writes")
        #expect(lines.contains("checkpoint: models/potsdam r18.pth"), "relative to the pipeline's folder")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "no staged file left behind")
    }

    @Test func checkpointWithNoCommonFolderIsAbsolute() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-import")
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("p.yaml").path
        let result = try Tool.run(Tool.aerialseg, ["import-config", Self.configPath,
                                                   "--output", output, "--checkpoint", "/models/x.pth"])
        try #require(result.status == 0, "\(result.stderr)")
        #expect(try body(output).contains("checkpoint: /models/x.pth"))
    }

    @Test func hostileConfigGivesOneLineNamingTheLine() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-import")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("evil.py").path
        try "crop_size = (512, 512)\n\nimport os\nmodel = dict(x=os.system('touch pwned'))\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let output = dir.appendingPathComponent("p.yaml").path
        let result = try Tool.run(Tool.aerialseg, ["import-config", config, "--output", output])
        #expect(result.status == 2)
        #expect(result.stderr == "aerialseg: error: \(config):3: import statements are not supported "
                + "(configs are read, not run: remove the import)\n")
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test func missingOutputFolderIsAnError() throws {
        let result = try Tool.run(Tool.aerialseg, ["import-config", Self.configPath,
                                                   "--output", "/nonexistent-aerialseg/p.yaml"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix(
            "aerialseg: error: /nonexistent-aerialseg/p.yaml: cannot write the pipeline file"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func configWithoutAModelIsAnError() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-import")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("empty.py").path
        try "crop_size = (512, 512)\n".write(toFile: config, atomically: true, encoding: .utf8)
        let output = dir.appendingPathComponent("p.yaml").path
        let result = try Tool.run(Tool.aerialseg, ["import-config", config, "--output", output])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("aerialseg: error: \(config): the config has no model dict"))
    }
}
