import Foundation
import Yams

/// `Sources/Service/openapi.yaml`, read for checking answers against it: each path, method and
/// status with its content types, required headers and JSON schema, and a validator for the subset
/// of JSON Schema the spec uses (`$ref`, `type`, `required`, `properties`, `additionalProperties`,
/// `items`, `enum`, `format: uuid | date-time`).
struct OpenAPISpec {
    struct Answer {
        /// Content types the spec lists; empty: no body.
        var contentTypes: [String]
        /// The schema of the `application/json` body, if the spec gives one.
        var jsonSchema: [String: Any]?
        /// Header names (lowercased) the spec marks required.
        var requiredHeaders: [String]
    }

    /// path → method (uppercase) → status → answer.
    var paths: [String: [String: [String: Answer]]] = [:]
    private var root: [String: Any]

    init(url: URL) throws {
        root = try Yams.load(yaml: String(contentsOf: url, encoding: .utf8)) as! [String: Any]
        for (path, item) in root["paths"] as! [String: [String: Any]] {
            for (method, operation) in item where method != "parameters" {
                let responses = (operation as! [String: Any])["responses"] as! [String: [String: Any]]
                for (status, response) in responses {
                    let resolved = resolve(response)
                    let content = resolved["content"] as? [String: Any] ?? [:]
                    let json = (content["application/json"] as? [String: Any])?["schema"] as? [String: Any]
                    let headers = (resolved["headers"] as? [String: [String: Any]] ?? [:])
                        .filter { $0.value["required"] as? Bool == true }.keys.map { $0.lowercased() }
                    paths[path, default: [:]][method.uppercased(), default: [:]][status] =
                        Answer(contentTypes: Array(content.keys), jsonSchema: json, requiredHeaders: headers)
                }
            }
        }
    }

    /// The object a `$ref` (`#/components/...`) names, or `object` itself.
    func resolve(_ object: [String: Any]) -> [String: Any] {
        guard let ref = object["$ref"] as? String else { return object }
        var node: Any = root
        for key in ref.dropFirst(2).split(separator: "/") { node = (node as! [String: Any])[String(key)]! }
        return resolve(node as! [String: Any])
    }

    /// What is wrong with the JSON `body` against `schema`, one line per problem, each naming where (`$.a.b`).
    func problems(json body: Data, _ schema: [String: Any]) -> [String] {
        do {
            return problems(try JSONDecoder().decode(JSONValue.self, from: body), schema)
        } catch {
            return ["$: not JSON: \(String(decoding: body.prefix(200), as: UTF8.self))"]
        }
    }

    func problems(_ value: JSONValue, _ schema: [String: Any], at path: String = "$") -> [String] {
        let schema = resolve(schema)
        var found: [String] = []
        if let choices = schema["enum"] as? [Any], !choices.map({ "\($0)" }).contains(value.text ?? "") {
            found.append("\(path): \(value) is not one of \(choices)")
        }
        switch (schema["type"] as? String, value) {
        case ("object", .object(let object)):
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                found.append("\(path): required key '\(key)' is missing")
            }
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            for (key, item) in object {
                if let property = properties[key] {
                    found += problems(item, property, at: "\(path).\(key)")
                } else if let extra = schema["additionalProperties"] as? [String: Any] {
                    found += problems(item, extra, at: "\(path).\(key)")
                }
            }
        case ("array", .array(let array)):
            if let items = schema["items"] as? [String: Any] {
                for (i, item) in array.enumerated() { found += problems(item, items, at: "\(path)[\(i)]") }
            }
        case ("string", .string(let text)):
            switch schema["format"] as? String {
            case "uuid" where UUID(uuidString: text) == nil: found.append("\(path): '\(text)' is not a UUID")
            case "date-time" where ISO8601DateFormatter().date(from: text) == nil:
                found.append("\(path): '\(text)' is not an RFC 3339 date-time")
            default: break
            }
        case ("integer", .integer), ("number", .integer), ("number", .number), ("boolean", .bool), (nil, _): break
        case (let type?, _): found.append("\(path): \(value) is not of type \(type)")
        }
        return found
    }
}

/// A JSON value with its JSON type kept (an integer is not a number with a fraction, nor a Bool).
enum JSONValue: Decodable, CustomStringConvertible {
    case null, bool(Bool), integer(Int), number(Double), string(String), array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .integer(v) }
        else if let v = try? c.decode(Double.self) { self = .number(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// The value of a string, number or Bool as text (what an `enum` lists).
    var text: String? {
        switch self {
        case .string(let v): v
        case .integer(let v): "\(v)"
        case .number(let v): "\(v)"
        case .bool(let v): "\(v)"
        default: nil
        }
    }

    var description: String {
        switch self {
        case .null: "null"
        case .array(let a): "[\(a.count) items]"
        case .object(let o): "{\(o.keys.sorted().joined(separator: ", "))}"
        default: text ?? ""
        }
    }
}
