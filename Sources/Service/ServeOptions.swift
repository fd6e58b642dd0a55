import Foundation
import Pipeline

/// Everything `aerialseg serve` needs, parsed and checked by the CLI; every default is the CLI's.
public struct ServeOptions: Sendable {
    /// Pipeline files; each is one model, named by the file's stem.
    public var pipelines: [String]
    /// Address to bind. Default 127.0.0.1 (loopback only).
    public var host = "127.0.0.1"
    /// Port to bind; 0 picks a free one (printed on start). Default 8080.
    public var port = 8080
    /// Where jobs (their state, uploads and outputs) live; survives restarts.
    public var dataDirectory: String
    /// Largest request body, in bytes. Default 2048 MiB.
    public var maxUploadBytes: Int64 = 2048 << 20
    /// Largest image (width × height) `POST /v1/models/{name}/predict` takes. Default 16777216 (4096²).
    public var maxSyncPixels = 16_777_216
    /// Folder under which `{"input": "relative/path.tif"}` names rasters; nil: such jobs are refused.
    public var inputsRoot: String?
    /// Jobs run at once. Default 1.
    public var workers = 1
    /// Jobs waiting beyond the running ones; more get 429. Default 64.
    public var queueLimit = 64
    /// The bearer token every `/v1` request must carry; nil: no authentication.
    public var token: String?
    /// Finished jobs (and their files) are removed this long after they finished. Default 168 h.
    public var jobTTL: Duration = .seconds(168 * 3600)
    /// Compute threads per model. Default 2.
    public var threads = 2
    /// Overrides every pipeline's `precision:` (`--precision`).
    public var precision: Precision?

    public init(pipelines: [String], dataDirectory: String) {
        self.pipelines = pipelines
        self.dataDirectory = dataDirectory
    }
}
