import Foundation
import Testing
import TestSupport

/// `aerialseg inspect` and `aerialseg bench`, run as a user would.
@Suite struct CheckpointCommandTests {
    let fixture = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam")

    @Test(arguments: ["checkpoint.pth", "checkpoint_legacy.pth", "checkpoint_runner_style.pth", "weights.safetensors"])
    func inspectRecognisesTheArchitecture(_ file: String) throws {
        let result = try Tool.run(Tool.aerialseg, ["inspect", "--json", fixture.appendingPathComponent(file).path])
        try #require(result.status == 0, "\(result.stderr)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let report = try #require(reports.first)
        #expect(report["architecture"] as? String == "DeepLabV3+ (DepthwiseSeparableASPPHead) on ResNetV1c-18")
        #expect(report["tensorCount"] as? Int == 226)
        #expect(report["numClasses"] as? Int == 6)
        if file != "weights.safetensors" {
            #expect((report["classes"] as? [String])?.first == "impervious_surface")
            #expect((report["palette"] as? [[Int]])?.count == 6)
        }
    }

    /// A pickle naming `os.system`: one clear line, exit 2, and nothing executed.
    @Test func hostileCheckpointIsRefused() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-hostile")
        defer { try? FileManager.default.removeItem(at: dir) }
        let marker = dir.appendingPathComponent("pwned").path
        // Protocol-2 pickle: os.system("touch <marker>")
        var bytes: [UInt8] = [0x80, 0x02]
        bytes += Array("cos\nsystem\n".utf8)
        let command = Array("touch \(marker)".utf8)
        bytes += [0x58] + withUnsafeBytes(of: UInt32(command.count).littleEndian, Array.init) + command
        bytes += [0x85, 0x52, 0x2E]  // TUPLE1 REDUCE STOP
        let path = dir.appendingPathComponent("evil.pth").path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let result = try Tool.run(Tool.aerialseg, ["inspect", path])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("aerialseg: error: \(path): "))
        #expect(result.stderr.contains("os.system"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// bench runs a real pipeline file with random weights and reports sane figures.
    @Test func benchReportsTiming() throws {
        let pipeline = Fixtures.packageRoot
            .appendingPathComponent("Pipelines/deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.yaml").path
        let result = try Tool.run(Tool.aerialseg, ["bench", pipeline, "--size", "64", "--runs", "1", "--json"])
        try #require(result.status == 0, "\(result.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        let row = try #require(rows.first)
        #expect(row["size"] as? Int == 64)
        #expect(row["backend"] as? String == "onednn")
        // DeepLabV3+ R-18-D8 does 54.2 GMAC at 512² (mmseg-reference §10): 1/64 of that at 64².
        let gflop = try #require(row["convGFLOP"] as? Double)
        #expect(abs(gflop - 2 * 54.16 / 64) < 0.05 * gflop)
        #expect((row["medianMs"] as? Double ?? 0) > 0)
    }

    @Test func benchRejectsAMalformedPipeline() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-yaml")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.yaml").path
        try "model: [unclosed\n  - : :".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Tool.run(Tool.aerialseg, ["bench", path])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("aerialseg: error: \(path): "))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}
