import Foundation
import Hummingbird
import HummingbirdAuth
import Logging

/// The server's request context: Hummingbird's core plus the authenticated client.
public struct ServiceRequestContext: AuthRequestContext, RequestContext {
    /// A client that presented the server's bearer token.
    public struct Client: Sendable {}

    public var coreContext: CoreRequestContextStorage
    public var identity: Client?

    public init(source: Source) {
        coreContext = .init(source: source)
        identity = nil
    }

    /// Raster bodies are streamed and limited by `--max-upload-mb`; this bounds only bodies that
    /// are collected (JSON).
    public var maxUploadSize: Int { 1 << 20 }
}

/// `Authorization: Bearer <token>` checked against `--token-env`'s token (hummingbird-auth), in
/// constant time.
struct BearerTokenAuthenticator: AuthenticatorMiddleware {
    typealias Context = ServiceRequestContext
    let token: String

    func authenticate(request: Request, context: Context) async throws -> Context.Client? {
        guard let bearer = request.headers.bearer else { return nil }
        let a = Array(bearer.token.utf8), b = Array(token.utf8)
        var difference = a.count ^ b.count
        for i in 0..<max(a.count, b.count) { difference |= Int((i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)) }
        return difference == 0 ? Context.Client() : nil
    }
}

/// Lets only authenticated requests through (a 401 otherwise).
struct RequireClient: RouterMiddleware {
    typealias Context = ServiceRequestContext

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.identity != nil else {
            throw APIError(.unauthorized, "missing or wrong bearer token",
                           hint: "send Authorization: Bearer <the token in the server's --token-env variable>")
        }
        return try await next(request, context)
    }
}

/// One log line per request (method, path, route, status, duration) and the request metrics.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = ServiceRequestContext
    let metrics: ServiceMetrics

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let seconds = (ContinuousClock.now - start).seconds
        let route = context.endpointPath ?? "unmatched"
        metrics.request(method: request.method.rawValue, route: route, status: response.status.code, seconds: seconds)
        context.logger.info("request", metadata: [
            "method": "\(request.method.rawValue)", "path": "\(request.uri.path.prefix(200))", "route": "\(route)",
            "status": "\(response.status.code)", "ms": "\(String(format: "%.1f", seconds * 1000))",
        ])
        return response
    }
}
