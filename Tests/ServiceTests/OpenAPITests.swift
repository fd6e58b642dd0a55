import Foundation
import Logging
@testable import Service
import Testing
import TestSupport

/// `Sources/Service/openapi.yaml` against the live server: one real request for every path, method
/// and status the spec lists, each answer's status, Content-Type, required headers and JSON body as
/// the spec says, and no answer the spec does not list; and the router has no route the spec lacks.
@Suite(.serialized) struct OpenAPITests {
    /// Statuses the spec documents that no deterministic request reaches here.
    static let notExercised: Set<String> = [
        "POST /v1/models/{name}/predict 429",  // more than 2 running + queue-limit waiting predictions
    ]

    /// Every answer is checked as it comes: its status is listed for its path and method, its
    /// Content-Type is one listed (no body when none is), its required headers are there, and a JSON
    /// body has the schema's required keys with the schema's types.
    final class Checker {
        let spec: OpenAPISpec
        var seen: Set<String> = []

        init() throws {
            spec = try OpenAPISpec(url: Fixtures.packageRoot.appendingPathComponent("Sources/Service/openapi.yaml"))
        }

        func check(_ method: String, _ path: String, _ reply: HTTPReply, sourceLocation: SourceLocation = #_sourceLocation) {
            let status = "\(reply.status)"
            let key = "\(method) \(path) \(status)"
            seen.insert(key)
            guard let answer = spec.paths[path]?[method]?[status] else {
                Issue.record("\(key) is not in openapi.yaml: \(reply.text.prefix(200))", sourceLocation: sourceLocation)
                return
            }
            let type = reply.headers["content-type"]?.split(separator: ";").first.map(String.init)
            if answer.contentTypes.isEmpty {
                #expect(reply.body.isEmpty, "\(key) has a body", sourceLocation: sourceLocation)
            } else {
                #expect(type.map(answer.contentTypes.contains) == true,
                        "\(key): \(type ?? "none") not in \(answer.contentTypes)", sourceLocation: sourceLocation)
            }
            for header in answer.requiredHeaders {
                #expect(reply.headers[header] != nil, "\(key) has no \(header) header", sourceLocation: sourceLocation)
            }
            if type == "application/json", let schema = answer.jsonSchema {
                let problems = spec.problems(json: reply.body, schema)
                #expect(problems.isEmpty, "\(key): \(problems.joined(separator: "; "))", sourceLocation: sourceLocation)
            }
        }

        /// A request to a path or method the spec does not have: the server must not answer it
        /// but with a 404 in the error shape.
        func checkUndocumented(_ method: String, _ path: String, _ reply: HTTPReply,
                               sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(reply.status == 404, "\(method) \(path) answered \(reply.status)", sourceLocation: sourceLocation)
            let error = spec.resolve(["$ref": "#/components/schemas/Error"])
            #expect(spec.problems(json: reply.body, error).isEmpty, "\(method) \(path): \(reply.text.prefix(200))",
                    sourceLocation: sourceLocation)
        }

        var unseen: [String] {
            spec.paths.flatMap { path, methods in
                methods.flatMap { method, statuses in statuses.keys.map { "\(method) \(path) \($0)" } }
            }.filter { !seen.contains($0) && !OpenAPITests.notExercised.contains($0) }.sorted()
        }
    }

    @Test
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
        for (method, path) in [("GET", "/"), ("GET", "/v1/nothing"), ("PUT", "/v1/jobs"), ("POST", "/v1/models"),
                               ("PATCH", "/v1/jobs/\(UUID())"), ("GET", "/v1/models/small/predict")] {
            c.checkUndocumented(method, path, try r(method, path, auth))
        }

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
        c.check("POST", j, try r("POST", "/v1/jobs?model=none", tiff, tile))

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
        #expect(try s.waitForJob(a, headers: auth)["status"] as? String == "cancelled")
        c.check("DELETE", one, try r("DELETE", "/v1/jobs/\(a)", auth))  // 204: removed
        c.check("DELETE", one, try r("DELETE", "/v1/jobs/\(a)", auth))  // 404
        c.check("DELETE", one, try r("DELETE", "/v1/jobs/\(a)"))
        // The queue is free again: what a full queue answered with 429 first now gets its own answer
        // (403, 413, 415, and 422 before any job is queued for it).
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", auth + [("Content-Type", "application/json")],
                                 Data(#"{"input": "../x.tif"}"#.utf8)))
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", tiff + [("Content-Length", "99999999999")]))
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", auth + [("Content-Type", "text/csv")], tile))
        c.check("POST", j, try r("POST", "/v1/jobs?model=small", tiff, Data("junk".utf8)))

        FileManager.default.createFile(atPath: go.path, contents: Data())
        let done = try #require(try r("POST", "/v1/jobs?model=small", tiff, tile).json()["id"] as? String)
        #expect(try s.waitForJob(done, headers: auth)["status"] as? String == "succeeded")
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

    /// The routes the server's router has (Hummingbird lists them) are exactly the spec's paths and methods.
    @Test func everyRouteIsDocumented() async throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-routes")
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = ServeOptions(pipelines: [try ServiceFixtures.smallPipeline(in: dir)],
                                   dataDirectory: dir.appendingPathComponent("data").path)
        options.token = "tok"  // the /v1 group with its authentication, as served
        let server = try await Server(options: options, logger: Logger(label: "test"))
        let routes = Set(buildRouter(server.state).routes.map { "\($0.method) \($0.path)" })
        let spec = try Checker().spec
        let documented = Set(spec.paths.flatMap { path, methods in methods.keys.map { "\($0) \(path)" } })
        #expect(routes.subtracting(documented).isEmpty, "served, not in openapi.yaml: \(routes.subtracting(documented))")
        #expect(documented.subtracting(routes).isEmpty, "in openapi.yaml, not served: \(documented.subtracting(routes))")
        #expect(routes.count >= 10)
    }
}
