import Foundation
import Hummingbird
import Pipeline

/// What `POST /v1/models/{name}/predict` answers: the label GeoTIFF, its palette PNG, or polygons.
enum PredictionFormat: String, CaseIterable {
    case tif, png, geojson

    var contentType: String {
        switch self {
        case .tif: "image/tiff"
        case .png: "image/png"
        case .geojson: "application/geo+json"
        }
    }

    /// `format=` wins; else the first `Accept` type we make; else (no Accept, `*/*`) the GeoTIFF; else 406.
    init(query: [String: String], accept: String?) throws {
        if let text = query["format"] {
            guard let format = PredictionFormat(rawValue: text) else {
                throw APIError(.badRequest, "format=\(text.prefix(20)) is not one of tif, png, geojson", hint: "e.g. format=png")
            }
            self = format
            return
        }
        let types = (accept ?? "*/*").split(separator: ",").map {
            $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        }
        for type in types {
            switch type {
            case "image/tiff", "image/*", "*/*": self = .tif
            case "image/png": self = .png
            case "application/geo+json", "application/json": self = .geojson
            default: continue
            }
            return
        }
        throw APIError(.notAcceptable, "cannot answer \(accept?.prefix(60) ?? "")",
                       hint: "accept image/tiff, image/png or application/geo+json, or give format=")
    }
}

/// The synchronous path for small images (≤ `--max-sync-pixels`): the same job as `run`, its one
/// output answered at once and its files removed. Larger images get a 413 pointing to `/v1/jobs`.
func predict(_ request: Request, context: ServiceRequestContext, model: ServedModel,
             state: ServerState) async throws -> Response {
    let query = ServerState.query(request)
    let format = try PredictionFormat(query: query, accept: request.headers[.accept])
    var settings = try JobSettings(query: query)
    settings.confidence = .none
    settings.vectors = format == .geojson ? .geojson : VectorsChoice.none
    if await state.runner.isDraining {
        throw APIError(.serviceUnavailable, "the server is shutting down", hint: "try again after it restarts",
                       retryAfter: 30)
    }
    try state.uploads.checkLength(request)
    try await state.predictions.acquire()
    let folder = state.temporaryFolder.appendingPathComponent(UUID().uuidString.lowercased())
    do {
        let response = try await predict(request, context: context, model: model, format: format, settings: settings,
                                          folder: folder, state: state)
        try FileManager.default.removeItem(at: folder)
        await state.predictions.release()
        return response
    } catch {
        if FileManager.default.fileExists(atPath: folder.path) { try FileManager.default.removeItem(at: folder) }
        await state.predictions.release()
        throw error
    }
}

private func predict(_ request: Request, context: ServiceRequestContext, model: ServedModel, format: PredictionFormat,
                     settings: JobSettings, folder: URL, state: ServerState) async throws -> Response {
    let (path, name) = try await receiveRaster(request, context: context, into: folder.appendingPathComponent("input"),
                                               state: state)
    var options = model.runOptions(outputDirectory: folder.appendingPathComponent("out").path, settings: settings,
                                   threads: state.options.threads)
    options.preview = format == .png ? .labels : .none  // a PNG answer is the class colours
    let size = try await checkRaster(path, name: name, options: options, model: model)
    guard size.width * size.height <= state.options.maxSyncPixels else {
        throw APIError(.contentTooLarge, "\(name): \(size.width) × \(size.height) pixels is more than the "
                       + "\(state.options.maxSyncPixels) a synchronous prediction takes",
                       hint: "submit it as a job: POST /v1/jobs?model=\(model.name)")
    }
    let result: RunResult
    let runOptions = options
    do {
        result = try await BlockingThread.run("predict") {
            try SegmentationJob(options: runOptions, loaded: model.loaded).run(input: path)
        }
    } catch {
        throw APIError(.unprocessableContent, cli: error, path: path, shownAs: name)
    }
    let suffix = [PredictionFormat.tif: ".labels.tif", .png: ".preview.png", .geojson: ".vectors.geojson"][format]!
    guard let file = result.outputs.first(where: { $0.hasSuffix(suffix) }) else {
        throw APIError(.internalServerError, "the job wrote no \(suffix)", hint: "see the server's log")
    }
    let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
    let stem = (name as NSString).deletingPathExtension
    return Response(status: .ok, headers: [.contentType: format.contentType,
                                           .contentDisposition: "inline; filename=\"\(stem)\(suffix)\""],
                    body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}
