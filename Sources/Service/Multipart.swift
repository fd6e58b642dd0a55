import Foundation

/// A streaming reader of the `file` part of a `multipart/form-data` body (RFC 7578), for clients
/// that post forms (FastAPI's `UploadFile`, `curl -F file=@x.tif`). The body is never held: bytes
/// of the file part are handed on as they arrive, and only a delimiter's length is kept back
/// between chunks. A body that ends before its closing delimiter, or has no `file` part, is a
/// `MultipartError` (a 400). Pure Foundation, so that it can be fuzzed outside the server
/// (`Tests/Fuzz/multipart`).
struct MultipartFileParser: Sendable {
    private enum State: Sendable { case preamble, afterDelimiter, headers, content(isFile: Bool), done }

    private let delimiter: [UInt8]
    private var buffer: [UInt8]
    private var state = State.preamble
    private var sawFile = false
    /// The file part's `filename`, once its headers are read.
    private(set) var fileName: String?

    /// The boundary of a `multipart/form-data; boundary=...` content type, or a 400.
    static func boundary(contentType: String) throws -> String {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2
                ? String(pair[1].dropFirst().dropLast()) : pair[1]
            guard (1...70).contains(value.utf8.count), value.utf8.allSatisfy({ (32..<127).contains($0) }) else { break }
            return value
        }
        throw MultipartError("multipart/form-data without a valid boundary",
                       hint: "let the HTTP client build the form, e.g. curl -F file=@image.tif")
    }

    init(boundary: String) {
        delimiter = Array("\r\n--\(boundary)".utf8)
        buffer = [13, 10]  // the body's first delimiter has no CRLF before it; this makes them all alike
    }

    /// Takes the next chunk of the body; calls `emit` with bytes of the file part.
    mutating func feed(_ chunk: some Collection<UInt8>, emit: ([UInt8]) throws -> Void) throws {
        buffer.append(contentsOf: chunk)
        while true {
            switch state {
            case .preamble:
                guard let at = find(delimiter) else { return keepTail() }
                buffer.removeFirst(at + delimiter.count)
                state = .afterDelimiter
            case .afterDelimiter:
                guard buffer.count >= 2 else { return }
                if buffer[0] == 45, buffer[1] == 45 {  // "--": the closing delimiter
                    state = .done
                } else if buffer[0] == 13, buffer[1] == 10 {
                    buffer.removeFirst(2)
                    state = .headers
                } else {
                    throw MultipartError("malformed multipart body (a delimiter not followed by CRLF)",
                                   hint: "let the HTTP client build the form")
                }
            case .headers:
                guard let at = find([13, 10, 13, 10]) else {
                    guard buffer.count <= 16384 else {
                        throw MultipartError("multipart part headers longer than 16 KiB", hint: "")
                    }
                    return
                }
                let isFile = !sawFile && partIsFile(String(decoding: buffer[..<at], as: UTF8.self))
                buffer.removeFirst(at + 4)
                state = .content(isFile: isFile)
            case .content(let isFile):
                if let at = find(delimiter) {
                    if isFile {
                        try emit(Array(buffer[..<at]))
                        sawFile = true
                    }
                    buffer.removeFirst(at + delimiter.count)
                    state = .afterDelimiter
                } else {
                    let keep = delimiter.count - 1
                    if buffer.count > keep {
                        if isFile { try emit(Array(buffer[..<(buffer.count - keep)])) }
                        buffer.removeFirst(buffer.count - keep)
                    }
                    return
                }
            case .done:
                buffer.removeAll()  // the epilogue
                return
            }
        }
    }

    /// The body has ended: it must have had a `file` part and its closing delimiter.
    func finish() throws {
        guard case .done = state else {
            throw MultipartError("truncated multipart body (it ends before its closing boundary)",
                           hint: "send the whole form")
        }
        guard sawFile else {
            throw MultipartError("the multipart form has no 'file' part", hint: "send the raster as file=@image.tif")
        }
    }

    private mutating func keepTail() {
        let keep = delimiter.count - 1
        if buffer.count > keep { buffer.removeFirst(buffer.count - keep) }
    }

    /// `Content-Disposition: form-data; name="file"; filename="x.tif"` → true (and the file name kept).
    private mutating func partIsFile(_ headers: String) -> Bool {
        for line in headers.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
            var name: String?, file: String?
            for item in line.split(separator: ";").dropFirst() {
                let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2 else { continue }
                let value = pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2
                    ? String(pair[1].dropFirst().dropLast()) : pair[1]
                switch pair[0].lowercased() {
                case "name": name = value
                case "filename": file = value
                default: break
                }
            }
            if name == "file" {
                fileName = file
                return true
            }
        }
        return false
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        let first = needle[0]
        var i = 0
        let last = buffer.count - needle.count
        return buffer.withUnsafeBufferPointer { b in
            while i <= last {
                if b[i] == first {
                    var j = 1
                    while j < needle.count && b[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return i }
                }
                i += 1
            }
            return nil
        }
    }
}

/// A malformed multipart body: what is wrong and what to do; answered as a 400 (`APIError(_:)`).
struct MultipartError: Error, Sendable {
    let what: String
    let hint: String

    init(_ what: String, hint: String) {
        self.what = what
        self.hint = hint
    }
}
