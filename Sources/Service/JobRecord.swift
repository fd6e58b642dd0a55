import Foundation

/// Where a job is in its life.
enum JobStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    /// Succeeded, failed or cancelled: nothing more will happen to it.
    var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// The files a succeeded job offers, by the name they have under `/v1/jobs/{id}/`.
enum JobOutput: String, Codable, Sendable, CaseIterable {
    case labels = "labels.tif"
    case confidence = "confidence.tif"
    case preview = "preview.png"
    case gpkg = "vectors.gpkg"
    case geojson = "vectors.geojson"

    var contentType: String {
        switch self {
        case .labels, .confidence: "image/tiff"
        case .preview: "image/png"
        case .gpkg: "application/geopackage+sqlite3"
        case .geojson: "application/geo+json"
        }
    }

    /// The output a file `run` wrote is, from its name `<stem>.<kind>`.
    init?(fileName: String, stem: String) {
        guard fileName.hasPrefix(stem + ".") else { return nil }
        self.init(rawValue: String(fileName.dropFirst(stem.count + 1)))
    }
}

/// One job, as kept in `<data>/jobs/<id>/job.json` (rewritten atomically at each state change).
struct JobRecord: Codable, Sendable {
    var id: UUID
    var model: String
    var settings: JobSettings
    /// The raster the job reads, as a server path.
    var input: String
    /// What the client calls the input: the upload's file name or the path under `--inputs-root`.
    var inputName: String
    var status: JobStatus = .queued
    var createdAt: Date
    var startedAt: Date?
    var finishedAt: Date?
    /// Windows done and in all, as of the last state change (live progress is in `JobRunner`).
    var windowsDone = 0
    var windowsTotal = 0
    /// How often the job was started (more than once after a restart or a drain).
    var starts = 0
    /// Row bands taken over from an earlier, interrupted start.
    var resumedBands = 0
    var seconds: Double?
    var modelSeconds: Double?
    /// The error line, for a failed job.
    var error: String?
    /// Files of a succeeded job: output → file name in the job's output folder.
    var outputs: [JobOutput: String] = [:]

    enum CodingKeys: String, CodingKey {
        case id, model, settings, input, status, starts, seconds, error, outputs
        case inputName = "input_name", createdAt = "created_at", startedAt = "started_at"
        case finishedAt = "finished_at", windowsDone = "windows_done", windowsTotal = "windows_total"
        case resumedBands = "resumed_bands", modelSeconds = "model_seconds"
    }
}

/// What the API says of a job.
struct JobView: Codable, Sendable {
    struct Progress: Codable, Sendable {
        var windowsDone: Int
        var windowsTotal: Int
        var windowsPerSecond: Double?
        enum CodingKeys: String, CodingKey {
            case windowsDone = "windows_done", windowsTotal = "windows_total", windowsPerSecond = "windows_per_second"
        }
    }
    struct Timings: Codable, Sendable {
        var createdAt: Date
        var startedAt: Date?
        var finishedAt: Date?
        var seconds: Double?
        var modelSeconds: Double?
        enum CodingKeys: String, CodingKey {
            case seconds
            case createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
            case modelSeconds = "model_seconds"
        }
    }
    /// The job's UUID, lowercase.
    var id: String
    var status: JobStatus
    var model: String
    var input: String
    var settings: JobSettings
    var progress: Progress
    var timings: Timings
    var starts: Int
    var resumedBands: Int
    var error: String?
    var links: [String: String]

    enum CodingKeys: String, CodingKey {
        case id, status, model, input, settings, progress, timings, starts, error, links
        case resumedBands = "resumed_bands"
    }

    init(_ record: JobRecord, live: RunProgressSnapshot?) {
        id = record.id.uuidString.lowercased()
        status = record.status
        model = record.model
        input = record.inputName
        settings = record.settings
        progress = Progress(windowsDone: live?.windowsDone ?? record.windowsDone,
                            windowsTotal: live?.windowsTotal ?? record.windowsTotal,
                            windowsPerSecond: live?.windowsPerSecond)
        timings = Timings(createdAt: record.createdAt, startedAt: record.startedAt, finishedAt: record.finishedAt,
                          seconds: record.seconds, modelSeconds: record.modelSeconds)
        starts = record.starts
        resumedBands = record.resumedBands
        error = record.error
        let base = "/v1/jobs/\(record.id.uuidString.lowercased())"
        links = ["self": base]
        for output in record.outputs.keys where record.status == .succeeded {
            links[output.rawValue] = "\(base)/\(output.rawValue)"
        }
    }
}

/// Live progress of a running job.
struct RunProgressSnapshot: Sendable {
    var windowsDone = 0
    var windowsTotal = 0
    var windowsPerSecond: Double?
}

extension JSONEncoder {
    /// The API's encoder: ISO 8601 dates, sorted keys.
    static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension JSONDecoder {
    static var api: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
