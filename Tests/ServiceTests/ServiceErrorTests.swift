import Foundation
import Testing
import TestSupport

/// Every error the API documents, from hostile and careless requests: one JSON line each, the
/// CLI's `aerialseg: error: ...` where the CLI has one, and no crash.
@Suite(.serialized) struct ServiceErrorTests {
    static let token = "s3cret-token"

    struct Setup {
        let dir: URL
        let root: URL
        let server: ServerProcess
        let pipeline: String
        let auth = [("Authorization", "Bearer \(ServiceErrorTests.token)")]

        func post(_ path: String, _ type: String, _ body: Data, auth: Bool = true) throws -> HTTPReply {
            try server.request("POST", path, headers: (auth ? self.auth : []) + [("Content-Type", type)], body: body)
        }

        func input(_ json: String) throws -> HTTPReply { try post("/v1/jobs?model=small", "application/json", Data(json.utf8)) }
    }

    /// A server with a 1 MiB upload limit, a token, an inputs root holding `ok.tif`, a folder, a
    /// symlink out of the root and a secret beside it.
    func setUp() throws -> Setup {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-errors")
        let root = dir.appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        let fm = FileManager.default
        try fm.copyItem(at: Fixtures.local("rasters/rgb1.tif"), to: root.appendingPathComponent("ok.tif"))
        try fm.copyItem(at: Fixtures.local("rasters/rgb1.tif"), to: dir.appendingPathComponent("secret.tif"))
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("escape.tif").path,
                                  withDestinationPath: dir.appendingPathComponent("secret.tif").path)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("up").path, withDestinationPath: dir.path)
        let pipeline = try ServiceFixtures.smallPipeline(in: dir)
        let server = try ServerProcess([pipeline, "--max-upload-mb", "1", "--max-sync-pixels", "10000",
                                        "--token-env", "AERIALSEG_TEST_TOKEN", "--inputs-root", root.path],
                                       data: dir.appendingPathComponent("data"),
                                       environment: ["AERIALSEG_TEST_TOKEN": Self.token])
        return Setup(dir: dir, root: root, server: server, pipeline: pipeline)
    }

    func expectError(_ reply: HTTPReply, _ status: Int, _ contains: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == status, "\(reply.status) \(reply.text.prefix(300))", sourceLocation: sourceLocation)
        #expect(reply.headers["content-type"] == "application/json", sourceLocation: sourceLocation)
        let object = try? reply.json()
        let line = object?["error"] as? String ?? ""
        #expect(line.hasPrefix("aerialseg: error: ") && !line.contains("\n") && object?["hint"] is String,
                "\(reply.text.prefix(300))", sourceLocation: sourceLocation)
        #expect(contains.isEmpty || line.contains(contains), "\(line)", sourceLocation: sourceLocation)
    }

    @Test func authenticationAndUnknownThings() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir) }
        #expect(try s.server.request("GET", "/healthz").status == 200, "health needs no token")
        expectError(try s.server.request("GET", "/v1/models"), 401, "bearer token")
        expectError(try s.server.request("GET", "/v1/models", headers: [("Authorization", "Bearer wrong")]), 401)
        expectError(try s.server.request("GET", "/v1/models", headers: [("Authorization", "Basic \(Self.token)")]), 401)
        #expect(try s.server.request("GET", "/v1/models", headers: s.auth).status == 200)
        expectError(try s.post("/v1/jobs?model=nope", "image/tiff", Data([1, 2, 3])), 404, "no model named 'nope'")
        expectError(try s.post("/v1/models/nope/predict", "image/tiff", Data([1, 2, 3])), 404)
        expectError(try s.server.request("GET", "/v1/jobs/not-a-uuid", headers: s.auth), 404)
        expectError(try s.server.request("GET", "/v1/jobs/\(UUID().uuidString.lowercased())", headers: s.auth), 404)
        expectError(try s.server.request("DELETE", "/v1/jobs/..%2f..%2fetc", headers: s.auth), 404)
        expectError(try s.server.request("GET", "/v1/nothing-here", headers: s.auth), 404)
        expectError(try s.post("/v1/jobs", "image/tiff", Data([1])), 400, "model= is missing")
        expectError(try s.post("/v1/jobs?model=small&tta=sideways", "image/tiff", Data([1])), 400, "tta=sideways")
        expectError(try s.server.request("GET", "/v1/jobs?limit=0", headers: s.auth), 400)
    }

    @Test func pathsOutsideTheInputsRoot() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir) }
        expectError(try s.input(#"{"input": "../secret.tif"}"#), 403, "'..'")
        expectError(try s.input(#"{"input": "sub/../../secret.tif"}"#), 403)
        expectError(try s.input(#"{"input": "\#(s.dir.path)/secret.tif"}"#), 403, "absolute")
        expectError(try s.input(#"{"input": "escape.tif"}"#), 403, "outside")
        expectError(try s.input(#"{"input": "up/secret.tif"}"#), 403, "outside")
        expectError(try s.input(#"{"input": "%2e%2e/secret.tif"}"#), 400, "percent")
        expectError(try s.input(#"{"input": "..\\secret.tif"}"#), 400, "backslash")
        expectError(try s.input(#"{"input": "ok.tif\u0000.png"}"#), 400)
        var overlong = Data(#"{"input": ""#.utf8)
        overlong += Data([0xC0, 0xAE, 0xC0, 0xAE, 0x2F]) + Data(#"secret.tif"}"#.utf8)  // overlong "../"
        expectError(try s.post("/v1/jobs?model=small", "application/json", overlong), 400)
        expectError(try s.input(#"{"input": 42}"#), 400)
        expectError(try s.input(#"{"input": "missing.tif"}"#), 422, "aerialseg: error: missing.tif: ")
        let ok = try s.input(#"{"input": "ok.tif"}"#)
        #expect(ok.status == 202, "\(ok.text)")
    }

    @Test func badBodies() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir) }
        expectError(try s.post("/v1/jobs?model=small", "text/plain", Data("hello".utf8)), 415)
        // A form cut before its closing boundary.
        let form = RawHTTP.multipart(try Data(contentsOf: Fixtures.local("rasters/test_tiled.tif")))
        expectError(try s.post("/v1/jobs?model=small", form.contentType, form.body.prefix(form.body.count - 30)), 400,
                    "truncated multipart")
        expectError(try s.post("/v1/jobs?model=small", "multipart/form-data", form.body), 400, "boundary")
        // Over the limit by Content-Length, with no body bytes ever sent: answered at once.
        let start = Date()
        let declared = try RawHTTP.send(port: s.server.port, Data(("POST /v1/jobs?model=small HTTP/1.1\r\nHost: x\r\n"
            + "Authorization: Bearer \(Self.token)\r\nContent-Type: image/tiff\r\nContent-Length: 10000000000\r\n\r\n").utf8),
            timeout: 20)
        expectError(declared, 413, "larger than")
        #expect(Date().timeIntervalSince(start) < 10)
        // Over the limit while streaming (chunked, no Content-Length).
        var chunked = Data(("POST /v1/models/small/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.token)\r\n"
            + "Content-Type: image/tiff\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").utf8)
        let piece = Data(repeating: 7, count: 256 << 10)
        for _ in 0..<6 { chunked += Data("40000\r\n".utf8) + piece + Data("\r\n".utf8) }
        chunked += Data("0\r\n\r\n".utf8)
        expectError(try RawHTTP.send(port: s.server.port, chunked, timeout: 20), 413)
        // Not a raster: 422 with the line `run` prints for the same file (path as the client named it).
        let notes = s.dir.appendingPathComponent("notes.tif")
        try Data("not a raster at all".utf8).write(to: notes)
        let cli = try Tool.run(Tool.aerialseg, ["run", s.pipeline, "--input", notes.path, "--output",
                                                s.dir.appendingPathComponent("o").path, "--quiet"])
        let upload = RawHTTP.multipart(try Data(contentsOf: notes), name: "notes.tif")
        let reply = try s.post("/v1/jobs?model=small", upload.contentType, upload.body)
        expectError(reply, 422)
        let cliLine = cli.stderr.trimmingCharacters(in: .newlines).replacingOccurrences(of: notes.path, with: "notes.tif")
        #expect(cliLine == (try reply.json()["error"] as? String))
        // Too large for the synchronous path: 413 pointing to jobs.
        let big = try s.post("/v1/models/small/predict", "image/tiff", try Data(contentsOf: Fixtures.local("rasters/rgb1.tif")))
        expectError(big, 413, "pixels")
        #expect((try big.json()["hint"] as? String)?.contains("/v1/jobs?model=small") == true)
        #expect(try s.server.request("GET", "/healthz").status == 200, "still alive")
    }
}
