import Foundation

/// An HTTP answer as bytes: status, headers (lowercased names) and body.
struct HTTPReply: Sendable {
    var status: Int
    var headers: [String: String]
    var body: Data

    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw RawHTTP.Failure(message: "not a JSON object: \(String(decoding: body.prefix(300), as: UTF8.self))")
        }
        return object
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// HTTP/1.1 over a plain loopback socket: exact bytes out (hostile requests included — truncated
/// bodies, lying Content-Lengths, raw paths), one answer in. Each request has its own connection.
enum RawHTTP {
    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    static func request(port: Int, _ method: String, _ path: String, headers: [(String, String)] = [],
                        body: Data? = nil, timeout: Double = 120) throws -> HTTPReply {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body, !headers.contains(where: { $0.0.lowercased() == "content-length" }) {
            head += "Content-Length: \(body.count)\r\n"
        }
        return try send(port: port, Data((head + "\r\n").utf8) + (body ?? Data()), timeout: timeout)
    }

    /// Writes `bytes`, then reads one answer (by its Content-Length, else until the server closes).
    static func send(port: Int, _ bytes: Data, timeout: Double = 120) throws -> HTTPReply {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(message: "socket: \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // A server that answers before reading the body (401, 406, 415, ...) may stop reading: then
        // sending stalls, and the answer is read instead.
        var sendTimeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(message: "connect to \(port): errno \(errno)") }
        var sent = 0
        try bytes.withUnsafeBytes { raw in
            while sent < raw.count {
                let n = Foundation.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 {
                    if errno == EPIPE || errno == ECONNRESET || errno == EAGAIN { return }  // answered early
                    throw Failure(message: "send: errno \(errno)")
                }
                sent += n
            }
        }
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var headEnd: Range<Data.Index>?
        var reply: HTTPReply?
        var expected: Int?
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 && errno != ECONNRESET { throw Failure(message: "recv: errno \(errno) after \(received.count) bytes") }
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
            if headEnd == nil, let end = received.range(of: Data("\r\n\r\n".utf8)) {
                headEnd = end
                let lines = String(decoding: received[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
                let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
                var headers: [String: String] = [:]
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                reply = HTTPReply(status: status, headers: headers, body: Data())
                expected = headers["content-length"].flatMap(Int.init)
            }
            if let end = headEnd, let expected, received.count - end.upperBound >= expected { break }
        }
        guard var reply, let end = headEnd else {
            throw Failure(message: "no HTTP answer (\(received.count) bytes)")
        }
        reply.body = received[end.upperBound...]
        if let expected { reply.body = reply.body.prefix(expected) }
        return reply
    }

    /// A `multipart/form-data` body with one `file` part.
    static func multipart(_ file: Data, name: String = "image.tif", boundary: String = "aerialsegBoundary42")
        -> (body: Data, contentType: String) {
        var body = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n".utf8)
        body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(name)\"\r\n".utf8)
        body += Data("Content-Type: image/tiff\r\n\r\n".utf8) + file + Data("\r\n--\(boundary)--\r\n".utf8)
        return (body, "multipart/form-data; boundary=\(boundary)")
    }
}
