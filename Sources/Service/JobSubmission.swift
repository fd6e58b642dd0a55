import Foundation
import Hummingbird
import Pipeline

/// The raster a request names: streamed to `folder` (image/tiff, multipart) or a path under
/// `--inputs-root` (JSON `{"input": ...}`); returns its server path and the name the client knows.
func receiveRaster(_ request: Request, context: ServiceRequestContext, into folder: URL,
                   state: ServerState) async throws -> (path: String, name: String) {
    if let kind = try RasterBody.of(contentType: request.headers[.contentType]) {
        return try await state.uploads.receive(request, kind: kind, into: folder, context: context)
    }
    struct Named: Decodable { var input: String }
    var request = request
    let body = try await request.collectBody(upTo: context.maxUploadSize)
    let named: Named
    do {
        named = try JSONDecoder().decode(Named.self, from: Data(body.readableBytesView))
    } catch {
        throw APIError(.badRequest, "the JSON body is not {\"input\": \"relative/path.tif\"}",
                       hint: "send UTF-8 JSON with a string 'input', or the raster itself as image/tiff")
    }
    return (try InputPath.resolve(named.input, root: state.options.inputsRoot), named.input)
}

/// `run`'s preflight of the raster (`SegmentationJob.preflight`: it opens, has the bands, is
/// georeferenced north-up, its pixels read, its open rows fit the memory budget), off the event
/// loops; a 422 with `run`'s line when it cannot be segmented, a 413 when it does not fit the
/// budget. Returns its size.
@discardableResult
func checkRaster(_ path: String, name: String, options: RunOptions, model: ServedModel) async throws
    -> (width: Int, height: Int) {
    do {
        return try await BlockingThread.run("check") {
            try SegmentationJob(options: options, loaded: model.loaded).preflight(input: path)
        }
    } catch {
        throw APIError(.unprocessableContent, cli: error, path: path, shownAs: name)
    }
}

/// `POST /v1/jobs?model=NAME[&tta=&blend=&vectors=&confidence=]`: receives the raster, checks it
/// and queues a job; 202 with the job and its `Location`.
func submitJob(_ request: Request, context: ServiceRequestContext, state: ServerState) async throws -> Response {
    let query = ServerState.query(request)
    guard let name = query["model"] else {
        throw APIError(.badRequest, "model= is missing", hint: "POST /v1/jobs?model=NAME; GET /v1/models lists them")
    }
    let model = try state.registry.model(name)
    let settings = try JobSettings(query: query)
    try await state.runner.checkAdmission()
    try state.uploads.checkLength(request)
    let id = UUID()
    do {
        let (path, inputName) = try await receiveRaster(request, context: context, into: state.store.inputFolder(id),
                                                        state: state)
        let options = model.runOptions(outputDirectory: state.store.outputFolder(id).path, settings: settings,
                                       threads: state.options.threads)
        try await checkRaster(path, name: inputName, options: options, model: model)
        let record = JobRecord(id: id, model: model.name, settings: settings, input: path, inputName: inputName,
                               createdAt: Date())
        try await state.runner.submit(record)
        let view = JobView(record, live: nil)
        return try json(view, status: .accepted, headers: [.location: view.links["self"]!])
    } catch {
        let folder = state.store.folder(id)
        if await state.store.record(id) == nil, FileManager.default.fileExists(atPath: folder.path) {
            try FileManager.default.removeItem(at: folder)
        }
        throw error
    }
}
