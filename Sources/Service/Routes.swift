import Foundation
import Hummingbird
import Pipeline

/// Builds the router: health, readiness and metrics open; `/v1` behind the bearer token when one is set.
/// Separate from `main` so that tests and the `serve` command build the same thing.
func buildRouter(_ state: ServerState) -> Router<ServiceRequestContext> {
    let router = Router(context: ServiceRequestContext.self)
    router.add(middleware: RequestLogMiddleware(metrics: state.metrics))
    router.add(middleware: ErrorMiddleware())

    router.get("/healthz") { _, _ in try json(["status": "ok"]) }
    router.get("/readyz") { _, _ in try await readiness(state) }
    router.get("/metrics") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                 body: .init(byteBuffer: ByteBuffer(string: state.metrics.text())))
    }

    let v1 = router.group("v1")
    if let token = state.options.token {
        v1.add(middleware: BearerTokenAuthenticator(token: token))
        v1.add(middleware: RequireClient())
    }
    v1.get("models") { _, _ in
        try json(["models": state.registry.models.values.sorted { $0.name < $1.name }.map(\.summary)])
    }
    v1.post("models/{name}/predict") { request, context in
        try await predict(request, context: context, model: try state.registry.model(context.parameters.require("name")),
                          state: state)
    }
    v1.post("jobs") { request, context in try await submitJob(request, context: context, state: state) }
    v1.get("jobs") { request, _ in try await listJobs(ServerState.query(request), state: state) }
    v1.get("jobs/{id}") { _, context in
        let id = try jobID(context)
        guard let record = await state.store.record(id) else { throw APIError.unknownJob(id) }
        return try json(JobView(record, live: await state.runner.progress(id)))
    }
    v1.delete("jobs/{id}") { _, context in
        let id = try jobID(context)
        guard let record = try await state.runner.delete(id) else { return Response(status: .noContent) }
        return try json(JobView(record, live: await state.runner.progress(id)),
                        status: record.status == .running ? .accepted : .ok)
    }
    v1.get("jobs/{id}/{file}") { request, context in
        let id = try jobID(context)
        guard let record = await state.store.record(id) else { throw APIError.unknownJob(id) }
        guard let output = JobOutput(rawValue: try context.parameters.require("file")) else {
            throw APIError(.notFound, "a job has no file '\(context.parameters.get("file")?.prefix(60) ?? "")'",
                           hint: "its files: " + JobOutput.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard record.status == .succeeded else {
            throw APIError(.conflict, "job \(id.uuidString.lowercased()) is \(record.status.rawValue), not succeeded",
                           hint: record.status.isFinished ? "see its error with GET /v1/jobs/{id}"
                               : "poll GET /v1/jobs/{id} until it succeeds")
        }
        guard let name = record.outputs[output] else {
            throw APIError(.notFound, "job \(id.uuidString.lowercased()) wrote no \(output.rawValue)",
                           hint: output == .gpkg || output == .geojson ? "ask for vectors with vectors=gpkg or geojson"
                               : "it was not asked for")
        }
        return try await FileResponse.make(path: state.store.outputFolder(id).appendingPathComponent(name).path,
                                           contentType: output.contentType, downloadName: name, request: request,
                                           context: context, fileIO: state.fileIO)
    }
    return router
}

/// A JSON answer.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    var headers = headers
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers,
                    body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder.api.encode(value))))
}

/// The `{id}` of a job route, or a 404 (job ids are UUIDs; anything else names no job).
private func jobID(_ context: ServiceRequestContext) throws -> UUID {
    let text = try context.parameters.require("id")
    guard let id = UUID(uuidString: text) else {
        throw APIError(.notFound, "no job '\(text.prefix(60))'", hint: "job ids are UUIDs, as POST /v1/jobs answers them")
    }
    return id
}

/// 200 when the models are loaded (they are, before the server binds) and the data folder takes
/// a file; 503 otherwise, and while draining.
private func readiness(_ state: ServerState) async throws -> Response {
    let probe = URL(fileURLWithPath: state.options.dataDirectory).appendingPathComponent(".ready-probe-\(UUID())")
    let writable = FileManager.default.createFile(atPath: probe.path, contents: Data("ok".utf8))
    if writable { try FileManager.default.removeItem(at: probe) }
    let draining = await state.runner.isDraining
    let body: [String: String] = ["models": "\(state.registry.models.count) loaded",
                                  "data": writable ? "writable" : "not writable",
                                  "status": writable && !draining ? "ready" : draining ? "draining" : "not ready"]
    return try json(body, status: writable && !draining ? .ok : .serviceUnavailable,
                    headers: writable && !draining ? [:] : [.retryAfter: "10"])
}

/// `GET /v1/jobs?limit=50&offset=0`: jobs newest first, one page, with a link to the next.
private func listJobs(_ query: [String: String], state: ServerState) async throws -> Response {
    func number(_ key: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = query[key] else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw APIError(.badRequest, "\(key)=\(text.prefix(20)) is not a number in \(range)", hint: "e.g. \(key)=\(value)")
        }
        return n
    }
    let limit = try number("limit", default: 50, in: 1...1000)
    let offset = try number("offset", default: 0, in: 0...Int(Int32.max))
    let all = await state.store.all()
    var views: [JobView] = []
    for record in all.dropFirst(offset).prefix(limit) {
        views.append(JobView(record, live: await state.runner.progress(record.id)))
    }
    struct Page: Encodable {
        var jobs: [JobView]
        var total: Int
        var limit: Int
        var offset: Int
        var next: String?
    }
    let next = offset + limit < all.count ? "/v1/jobs?limit=\(limit)&offset=\(offset + limit)" : nil
    return try json(Page(jobs: views, total: all.count, limit: limit, offset: offset, next: next))
}
