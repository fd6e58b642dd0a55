import Foundation
import Testing
import TestSupport

/// `aerialseg serve` as a client uses it, over real HTTP on loopback: jobs give `run`'s bytes, a
/// killed or stopped server continues its jobs, and the API stays up while a job runs.
@Suite(.serialized) struct ServiceJobTests {
    /// Upload (image/tiff), poll, download: labels byte-identical to `aerialseg run` on the same file;
    /// ranges; a multipart upload; the synchronous path as GeoTIFF (== run) and PNG.
    @Test func uploadPollDownloadMatchesRun() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-job")
        defer { try? FileManager.default.removeItem(at: dir) }
        let crop = try ServiceFixtures.orthoCrop(1024, in: dir)
        let server = try ServerProcess([ServiceFixtures.treeCanopy], data: dir.appendingPathComponent("data"))
        let submitted = try server.request("POST", "/v1/jobs?model=tree-canopy&vectors=geojson",
                                           headers: [("Content-Type", "image/tiff")], body: try Data(contentsOf: crop))
        try #require(submitted.status == 202, "\(submitted.text)")
        let id = try #require(try submitted.json()["id"] as? String)
        #expect(submitted.headers["location"] == "/v1/jobs/\(id)")
        let job = try server.waitForJob(id)
        try #require(job["status"] as? String == "succeeded", "\(job) \(server.serverLog.suffix(2000))")
        let progress = try #require(job["progress"] as? [String: Any])
        #expect(progress["windows_done"] as? Int == 9 && progress["windows_total"] as? Int == 9)

        let labels = try server.request("GET", "/v1/jobs/\(id)/labels.tif")
        #expect(labels.status == 200 && labels.headers["content-type"] == "image/tiff")
        let reference = try ServiceFixtures.cliLabels(pipeline: ServiceFixtures.treeCanopy, input: crop, in: dir)
        #expect(labels.body == reference, "labels differ from aerialseg run's")
        let part = try server.request("GET", "/v1/jobs/\(id)/labels.tif", headers: [("Range", "bytes=100-199")])
        #expect(part.status == 206 && part.body == reference[100..<200])
        #expect(part.headers["content-range"] == "bytes 100-199/\(reference.count)")
        let vectors = try server.request("GET", "/v1/jobs/\(id)/vectors.geojson")
        #expect(vectors.status == 200 && vectors.headers["content-type"] == "application/geo+json")
        #expect(vectors.text.contains("FeatureCollection"))
        #expect(try server.request("GET", "/v1/jobs/\(id)/preview.png").headers["content-type"] == "image/png")

        // Synchronous predictions on a 512² crop, multipart like a FastAPI client.
        let small = try ServiceFixtures.orthoCrop(512, in: dir)
        let form = RawHTTP.multipart(try Data(contentsOf: small), name: "ortho_512.tif")
        let tif = try server.request("POST", "/v1/models/tree-canopy/predict", headers: [("Content-Type", form.contentType)],
                                     body: form.body)
        #expect(tif.status == 200 && tif.headers["content-type"] == "image/tiff", "\(tif.text.prefix(300))")
        #expect(tif.body == (try ServiceFixtures.cliLabels(pipeline: ServiceFixtures.treeCanopy, input: small, in: dir)))
        let png = try server.request("POST", "/v1/models/tree-canopy/predict",
                                     headers: [("Content-Type", "image/tiff"), ("Accept", "image/png")],
                                     body: try Data(contentsOf: small))
        #expect(png.status == 200 && png.headers["content-type"] == "image/png")
        #expect(png.body.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        #expect(server.stop(SIGTERM) == 0)
    }

    /// kill -9 mid-job (after 2 row bands, by the test hook), restart on the same --data: the job
    /// resumes from its finished bands and its labels equal an uninterrupted `run`.
    @Test func killedServerResumesItsJob() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-kill")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = try ServiceFixtures.smallPipeline(in: dir)
        let crop = try ServiceFixtures.orthoCrop(512, in: dir)
        let data = dir.appendingPathComponent("data")
        var server: ServerProcess? = try ServerProcess([pipeline], data: data,
                                                       environment: ["AERIALSEG_TEST_PAUSE_AFTER_BANDS": "2"])
        let submitted = try server!.request("POST", "/v1/jobs?model=small", headers: [("Content-Type", "image/tiff")],
                                            body: try Data(contentsOf: crop))
        try #require(submitted.status == 202, "\(submitted.text)")
        let id = try #require(try submitted.json()["id"] as? String)
        try server!.waitForFile(data.appendingPathComponent("test-paused-\(id)"))
        #expect(try server!.request("GET", "/v1/jobs/\(id)/labels.tif").status == 409, "no file before success")
        #expect(server!.stop(SIGKILL) != nil)
        server = nil

        let restarted = try ServerProcess([pipeline], data: data)
        let job = try restarted.waitForJob(id)
        try #require(job["status"] as? String == "succeeded", "\(job)")
        #expect((job["resumed_bands"] as? Int ?? 0) >= 1, "\(job)")
        #expect(job["starts"] as? Int == 2)
        let labels = try restarted.request("GET", "/v1/jobs/\(id)/labels.tif")
        #expect(labels.body == (try ServiceFixtures.cliLabels(pipeline: pipeline, input: crop, in: dir)))
    }

    /// SIGTERM drains: new work gets 503 + Retry-After while status stays readable, the running job
    /// stops at its band boundary, exit 0; both jobs are `queued` on disk and finish after a restart.
    @Test func sigtermDrainsAndKeepsJobs() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-term")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = try ServiceFixtures.smallPipeline(in: dir)
        let crop = try Data(contentsOf: try ServiceFixtures.orthoCrop(512, in: dir))
        let data = dir.appendingPathComponent("data")
        let server = try ServerProcess([pipeline], data: data, environment: ["AERIALSEG_TEST_PAUSE_AFTER_BANDS": "1"])
        func submit() throws -> HTTPReply {
            try server.request("POST", "/v1/jobs?model=small", headers: [("Content-Type", "image/tiff")], body: crop)
        }
        let first = try #require(try submit().json()["id"] as? String)
        try server.waitForFile(data.appendingPathComponent("test-paused-\(first)"))
        let second = try #require(try submit().json()["id"] as? String)
        kill(server.process.processIdentifier, SIGTERM)
        var refused: HTTPReply?
        let deadline = Date().addingTimeInterval(30)
        while refused == nil && Date() < deadline {
            let reply = try submit()
            if reply.status == 503 { refused = reply } else { usleep(20_000) }
        }
        #expect(refused?.headers["retry-after"] != nil, "draining server answers 503 with Retry-After")
        #expect(try server.request("GET", "/v1/jobs/\(first)").status == 200)
        FileManager.default.createFile(atPath: data.appendingPathComponent("test-continue").path, contents: Data())
        #expect(server.stop(SIGTERM) == 0, "\(server.serverLog.suffix(1500))")
        for id in [first, second] {
            let record = try JSONSerialization.jsonObject(
                with: Data(contentsOf: data.appendingPathComponent("jobs/\(id)/job.json"))) as! [String: Any]
            #expect(record["status"] as? String == "queued", "\(id): \(record)")
        }
        try FileManager.default.removeItem(at: data.appendingPathComponent("test-continue"))
        let restarted = try ServerProcess([pipeline], data: data)
        let resumed = try restarted.waitForJob(first)
        #expect(resumed["status"] as? String == "succeeded" && (resumed["resumed_bands"] as? Int ?? 0) >= 1, "\(resumed)")
        #expect(try restarted.waitForJob(second)["status"] as? String == "succeeded")
    }

    /// 100 concurrent requests while a job runs (held mid-job by the test hook): status, health,
    /// metrics and listings all answer 200; of 10 concurrent submissions with --queue 5, five are
    /// queued (202) and five get the documented 429 with Retry-After. Nothing else fails.
    @Test func hundredConcurrentRequestsWhileAJobRuns() throws {
        let dir = Fixtures.temporaryDirectory("aerialseg-serve-load")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pipeline = try ServiceFixtures.smallPipeline(in: dir)
        let crop = try Data(contentsOf: try ServiceFixtures.orthoCrop(512, in: dir))
        let data = dir.appendingPathComponent("data")
        let server = try ServerProcess([pipeline, "--queue", "5"], data: data,
                                       environment: ["AERIALSEG_TEST_PAUSE_AFTER_BANDS": "1"])
        let tiff = [("Content-Type", "image/tiff")]
        let running = try #require(try server.request("POST", "/v1/jobs?model=small", headers: tiff, body: crop)
            .json()["id"] as? String)
        try server.waitForFile(data.appendingPathComponent("test-paused-\(running)"))
        let paths = ["/healthz", "/readyz", "/v1/jobs/\(running)", "/metrics", "/v1/jobs?limit=5", "/v1/models"]
        let results = SharedResults()
        let group = DispatchGroup()
        for i in 0..<100 {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    let reply = i < 10
                        ? try server.request("POST", "/v1/jobs?model=small", headers: tiff, body: crop)
                        : try server.request("GET", paths[i % paths.count])
                    results.add(i, reply.status, reply.headers["retry-after"])
                } catch {
                    results.add(i, -1, "\(error)")
                }
            }
            thread.start()
        }
        #expect(group.wait(timeout: .now() + 120) == .success)
        let all = results.all
        #expect(all.count == 100)
        let submissions = all.filter { $0.index < 10 }.map(\.status).sorted()
        #expect(submissions == [202, 202, 202, 202, 202, 429, 429, 429, 429, 429], "\(all.filter { $0.index < 10 })")
        #expect(all.filter { $0.status == 429 }.allSatisfy { $0.note != nil })
        #expect(all.filter { $0.index >= 10 }.allSatisfy { $0.status == 200 }, "\(all.filter { $0.status != 200 })")
        let status = try server.request("GET", "/v1/jobs/\(running)").json()
        #expect(status["status"] as? String == "running")
        let metrics = try server.request("GET", "/metrics").text
        #expect(metrics.contains("aerialseg_http_requests_total") && metrics.contains("aerialseg_jobs_queued 5"))
    }
}

/// Results written by many threads.
final class SharedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(index: Int, status: Int, note: String?)] = []
    func add(_ index: Int, _ status: Int, _ note: String?) { lock.withLock { items.append((index, status, note)) } }
    var all: [(index: Int, status: Int, note: String?)] { lock.withLock { items } }
}
