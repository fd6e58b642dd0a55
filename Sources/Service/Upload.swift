import Foundation
import Hummingbird

/// How a request hands over a raster.
enum RasterBody {
    /// `Content-Type: image/tiff`: the body is the file.
    case tiff
    /// `multipart/form-data`: the `file` part is the file.
    case multipart(boundary: String)

    /// The body kind of `contentType`, nil for JSON, or a 415.
    static func of(contentType: String?) throws -> RasterBody? {
        let type = (contentType ?? "").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        switch type {
        case "image/tiff": return .tiff
        case "multipart/form-data":
            do {
                return .multipart(boundary: try MultipartFileParser.boundary(contentType: contentType!))
            } catch let error as MultipartError {
                throw APIError(error)
            }
        case "application/json": return nil
        default:
            throw APIError(.unsupportedMediaType, "content type '\(type.prefix(60))' is not image/tiff, "
                           + "multipart/form-data or application/json",
                           hint: "send the GeoTIFF as image/tiff, as a form field file=, or JSON {\"input\": \"path\"}")
        }
    }
}

/// Streams a raster body to disk, never holding it in memory, and refuses one over the size limit
/// from its Content-Length (before reading a byte) or, without one, as soon as the limit is passed.
struct UploadReceiver: Sendable {
    let limit: Int64
    let fileIO = FileIO()

    var tooLarge: APIError {
        APIError(.contentTooLarge, "the body is larger than the server's limit of \(limit >> 20) MiB",
                 hint: "split the raster, or start the server with a larger --max-upload-mb")
    }

    /// Refuses a declared Content-Length over the limit.
    func checkLength(_ request: Request) throws {
        if let text = request.headers[.contentLength], let length = Int64(text), length > limit { throw tooLarge }
    }

    /// Writes the raster of `request` to `folder/<name>`, `name` being the form's file name (made
    /// safe) or `upload.tif`; returns the path and the name.
    func receive(_ request: Request, kind: RasterBody, into folder: URL,
                 context: some RequestContext) async throws -> (path: String, name: String) {
        try checkLength(request)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let partial = folder.appendingPathComponent(".upload.part").path
        // The file system wraps what the body throws; the request's own error (400, 413) is kept aside.
        let failure = SharedBox<APIError?>(nil)
        let limited = LimitedBody(base: request.body, limit: limit, error: tooLarge, failure: failure)
        var name = "upload.tif"
        do {
            switch kind {
            case .tiff:
                try await fileIO.writeFile(contents: limited, path: partial, context: context)
            case .multipart(let boundary):
                let body = MultipartFileBody(base: limited, parser: MultipartFileParser(boundary: boundary),
                                             failure: failure)
                try await fileIO.writeFile(contents: body, path: partial, context: context)
                if let given = body.fileName.value { name = Self.safeName(given) }
            }
        } catch {
            if let requestError = failure.value { throw requestError }
            throw error
        }
        let path = folder.appendingPathComponent(name).path
        guard rename(partial, path) == 0 else {
            throw APIError(.internalServerError, "cannot store the upload: \(String(cString: strerror(errno)))",
                           hint: "check the data folder")
        }
        return (path, name)
    }

    /// A client's file name reduced to its last component of `[A-Za-z0-9._-]` (others become `_`).
    static func safeName(_ given: String) -> String {
        let last = given.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let safe = String(last.unicodeScalars.map { scalar -> Character in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "._-".unicodeScalars.contains(scalar))
                ? Character(scalar) : "_"
        }.prefix(120))
        return safe.isEmpty || safe.hasPrefix(".") ? "upload.tif" : safe
    }
}

/// A request body that throws `error` once more than `limit` bytes have come.
struct LimitedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let limit: Int64
    let error: APIError
    /// Where the error is also left, for the receiver (file writers wrap what they catch).
    let failure: SharedBox<APIError?>

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let limit: Int64
        let error: APIError
        let failure: SharedBox<APIError?>
        var total: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else { return nil }
            total += Int64(chunk.readableBytes)
            if total > limit {
                failure.value = error
                throw error
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), limit: limit, error: error, failure: failure)
    }
}

/// The bytes of a multipart body's `file` part, as a body of their own.
struct MultipartFileBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let parser: MultipartFileParser
    let failure: SharedBox<APIError?>
    /// The part's `filename`, known once the body has been read.
    let fileName = SharedBox<String?>(nil)

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var parser: MultipartFileParser
        let fileName: SharedBox<String?>
        let failure: SharedBox<APIError?>
        var pending: [ByteBuffer] = []
        var ended = false

        mutating func next() async throws -> ByteBuffer? {
            do {
                return try await nextPart()
            } catch let error as APIError {
                if failure.value == nil { failure.value = error }
                throw error
            }
        }

        private mutating func nextPart() async throws -> ByteBuffer? {
            while pending.isEmpty {
                if ended { return nil }
                if let chunk = try await base.next() {
                    var out: [ByteBuffer] = []
                    do {
                        try parser.feed(chunk.readableBytesView) { if !$0.isEmpty { out.append(ByteBuffer(bytes: $0)) } }
                        pending = out
                    } catch let error as MultipartError {
                        throw APIError(error)
                    }
                } else {
                    do { try parser.finish() } catch let error as MultipartError { throw APIError(error) }
                    fileName.value = parser.fileName
                    ended = true
                }
            }
            return pending.removeFirst()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), parser: parser, fileName: fileName, failure: failure)
    }
}

/// A value written by one task and read by another after it is done.
final class SharedBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
