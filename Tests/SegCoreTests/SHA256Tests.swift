import Foundation
import SegCore
import Testing
import TestSupport

@Suite struct SHA256Tests {
    @Test("FIPS 180-4 test vectors", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func vectors(_ text: String, _ digest: String) {
        #expect(SHA256.hex(Array(text.utf8)) == digest)
    }

    @Test("equals sha256sum on real files, at every padding boundary")
    func equalsSha256sum() throws {
        let dir = Fixtures.temporaryDirectory("sha")
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoint = Fixtures.local("mmseg/dlv3p_r18_d8_potsdam/checkpoint.pth")
        let bytes = [UInt8](try Data(contentsOf: checkpoint))
        for count in [55, 56, 63, 64, 65, 119, 120, 128, bytes.count] {
            let file = dir.appendingPathComponent("part").path
            try Data(bytes.prefix(count)).write(to: URL(fileURLWithPath: file))
            let expected = try Tool.run("sha256sum", [file]).stdout.prefix(64)
            #expect(SHA256.hex(Array(bytes.prefix(count))) == expected, "\(count) bytes")
        }
        #expect(try Checkpoint.load(path: checkpoint.path).sha256 == SHA256.hex(bytes))
    }
}
