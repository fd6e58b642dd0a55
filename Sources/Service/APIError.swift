import Foundation
import GeoIO
import Hummingbird
import Limits
import Pipeline

/// An error answered as `{"error": "...", "hint": "..."}` with an HTTP status.
///
/// `error` is the line the CLI prints, `aerialseg: error: <file>: <what> (<hint>)`, where the CLI has
/// one (an unreadable raster, a pipeline problem); other errors use the same form without a file.
struct APIError: Error, HTTPResponseError, Sendable {
    var status: HTTPResponse.Status
    /// The whole line, `aerialseg: error: ...`.
    var line: String
    var hint: String
    /// Seconds a client should wait before trying again (429, 503).
    var retryAfter: Int?

    /// A malformed multipart body: 400.
    init(_ error: MultipartError) { self.init(.badRequest, error.what, hint: error.hint) }

    init(_ status: HTTPResponse.Status, _ what: String, hint: String, retryAfter: Int? = nil) {
        self.status = status
        line = "aerialseg: error: " + what + (hint.isEmpty ? "" : " (\(hint))")
        self.hint = hint
        self.retryAfter = retryAfter
    }

    /// The CLI's error for a file, with the server's path of the file replaced by the name the
    /// client knows it by (an upload's file name, or the path it gave under `--inputs-root`).
    /// The line is `run`'s (`ErrorLine`); a `MemoryBudgetError` is a 413 whatever `status` says.
    init(_ status: HTTPResponse.Status, cli error: any Error, path: String, shownAs name: String) {
        self.status = error is MemoryBudgetError ? .contentTooLarge : status
        line = "aerialseg: error: " + ErrorLine.capped("\(error)".replacingOccurrences(of: path, with: name))
        switch error {
        case let error as GeoIOError: hint = error.hint
        case let error as PipelineError: hint = error.hint
        case let error as MemoryBudgetError: hint = error.hint
        default: hint = ""
        }
    }

    struct Body: Codable {
        var error: String
        var hint: String
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        let data = try JSONEncoder.api.encode(Body(error: line, hint: hint))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error thrown below it into an `APIError` answer (Hummingbird's own `HTTPError`s
/// included, so every error body has the same shape); unexpected errors become a logged 500.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let what = error.body ?? error.status.reasonPhrase.lowercased()
            let hint = error.status == .notFound ? "see the API in openapi.yaml" : ""
            return try APIError(error.status, what, hint: hint).response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            return try APIError(error.status, error.status.reasonPhrase.lowercased(), hint: "")
                .response(from: request, context: context)
        } catch {
            context.logger.error("internal error", metadata: ["error": "\(error)"])
            return try APIError(.internalServerError, "internal error: \(error)", hint: "see the server's log")
                .response(from: request, context: context)
        }
    }
}
