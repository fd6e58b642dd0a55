import Foundation
import Pipeline
import Tiling

/// Which vector file a job writes beside its labels (`vectors=`).
enum VectorsChoice: String, Codable, Sendable, CaseIterable {
    case gpkg, geojson, none

    /// The pipeline's `vectors:` block with this format (its other settings kept), or nil for `none`.
    func config(base: PipelineConfig.VectorsConfig?) -> PipelineConfig.VectorsConfig? {
        guard self != .none else { return nil }
        var config = base ?? PipelineConfig.VectorsConfig()
        config.format = rawValue
        return config
    }
}

/// The settings a request may change (query parameters `tta`, `blend`, `vectors`, `confidence`),
/// typed once when the request is parsed. Unset values are the pipeline's, as with `aerialseg run`.
struct JobSettings: Codable, Sendable, Equatable {
    var tta: TTAMode = .none
    /// nil: the pipeline's `tiling.blend`.
    var blend: Blend?
    /// nil: the pipeline's `vectors:` block (none when it has none).
    var vectors: VectorsChoice?
    var confidence: ConfidenceFormat = .uint8

    /// Parses the query parameters; an unknown value is a 400 naming the choices.
    init(query: [String: String]) throws {
        func value<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type) throws -> T? where T.RawValue == String {
            guard let text = query[key] else { return nil }
            guard let parsed = T(rawValue: text) else {
                let choices = T.allCases.map(\.rawValue).joined(separator: ", ")
                throw APIError(.badRequest, "\(key)=\(text.prefix(40)) is not one of \(choices)", hint: "e.g. \(key)="
                               + (T.allCases.first?.rawValue ?? ""))
            }
            return parsed
        }
        tta = try value("tta", TTAMode.self) ?? .none
        blend = try value("blend", Blend.self)
        vectors = try value("vectors", VectorsChoice.self)
        confidence = try value("confidence", ConfidenceFormat.self) ?? .uint8
    }

    init() {}
}
