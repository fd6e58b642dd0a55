// Fuzz target over the server's streaming multipart/form-data reader (Sources/Service/Multipart.swift):
// the first line is the Content-Type header, the rest the body, fed in chunks whose sizes the
// input's first byte chooses (a delimiter split across chunks is the reader's hard case).

/// The targets, by folder name.
let targets: [String: ([UInt8]) throws -> Void] = [
    "multipart": { bytes in
        guard let newline = bytes.firstIndex(of: 10), newline > 0 else { return }
        let contentType = String(decoding: bytes[1..<newline], as: UTF8.self)
        let chunk = Int(bytes[0] % 64) + 1
        var parser = MultipartFileParser(boundary: try MultipartFileParser.boundary(contentType: contentType))
        var emitted = 0
        var at = newline + 1
        while at < bytes.count {
            let end = min(bytes.count, at + chunk)
            try parser.feed(bytes[at..<end]) { emitted += $0.count }
            at = end
        }
        try parser.finish()
        precondition(emitted <= bytes.count, "the file part cannot be longer than the body")
    },
]
