import Foundation
import Hummingbird

/// A file answered whole (200) or in one byte range (206, `Range: bytes=a-b`, `a-`, `-n`), streamed
/// from disk; a range past the end is a 416. Several ranges in one request get the whole file
/// (RFC 9110 lets a server ignore Range).
enum FileResponse {
    static func make(path: String, contentType: String, downloadName: String, request: Request,
                     context: some RequestContext, fileIO: FileIO) async throws -> Response {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        var headers: HTTPFields = [.contentType: contentType, .acceptRanges: "bytes",
                                   .contentDisposition: "attachment; filename=\"\(downloadName)\""]
        if let text = request.headers[.range], let range = try byteRange(text, size: size) {
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
            headers[.contentLength] = "\(range.count)"
            let body = try await fileIO.loadFile(path: path, range: range, context: context)
            return Response(status: .partialContent, headers: headers, body: body)
        }
        headers[.contentLength] = "\(size)"
        let body = try await fileIO.loadFile(path: path, context: context)
        return Response(status: .ok, headers: headers, body: body)
    }

    /// The one range `header` asks for, nil to send the whole file, or a 416.
    static func byteRange(_ header: String, size: Int) throws -> ClosedRange<Int>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else { return nil }
        let unsatisfiable = APIError(.rangeNotSatisfiable, "range \(spec.prefix(40)) is outside the file of \(size) bytes",
                                     hint: "ask for bytes=0-\(max(0, size - 1)) or less")
        if parts[0].isEmpty {  // the last n bytes
            guard let n = Int(parts[1]) else { return nil }
            guard n > 0, size > 0 else { throw unsatisfiable }
            return max(0, size - n)...(size - 1)
        }
        guard let start = Int(parts[0]), start >= 0 else { return nil }
        guard start < size else { throw unsatisfiable }
        let end = parts[1].isEmpty ? size - 1 : Int(parts[1]).map { min($0, size - 1) }
        guard let end, end >= start else { return nil }
        return start...end
    }
}
