/// A mapping from source label values to class ids, written `0=0,255=1` or `tree=1,grass=2`
/// (`--class-map` of `tile`, `--truth-map` of `evaluate`).
///
/// Keys are compared as text, so one map serves raster values (`255`) and vector attribute values
/// (`"tree"`); numeric keys also match numerically (`"255"` matches the value 255.0). Values not in
/// the map become `unmapped` (255, mmseg's ignore index, unless told otherwise).
public struct ValueMap: Sendable, Equatable {
    public private(set) var entries: [(key: String, id: UInt8)]
    public var unmapped: UInt8 = 255

    public static func == (a: ValueMap, b: ValueMap) -> Bool {
        a.unmapped == b.unmapped && a.entries.map(\.key) == b.entries.map(\.key) && a.entries.map(\.id) == b.entries.map(\.id)
    }

    /// Parses `key=id,key=id`. Ids are 0...255; keys must be distinct.
    public init(parsing text: String, option: String = "--class-map") throws {
        entries = []
        var seen = Set<String>()
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, let id = UInt8(parts[1]) else {
                throw PipelineError(path: option, reason: "'\(item)' is not of the form value=class",
                                    hint: "e.g. \(option) 0=0,255=1 (class ids 0...255)")
            }
            guard seen.insert(Self.normalised(parts[0])).inserted else {
                throw PipelineError(path: option, reason: "value '\(parts[0])' is mapped twice", hint: "")
            }
            entries.append((Self.normalised(parts[0]), id))
        }
        guard !entries.isEmpty else {
            throw PipelineError(path: option, reason: "the map is empty", hint: "e.g. \(option) 0=0,255=1")
        }
    }

    /// `255.0` and `255` are the same key; text keys are kept as written.
    static func normalised(_ key: String) -> String {
        if let number = Double(key), number.rounded() == number, abs(number) < 1e15 { return String(Int64(number)) }
        return key
    }

    /// The class id of a textual value (a vector attribute).
    public func id(for value: String) -> UInt8 {
        let key = Self.normalised(value)
        return entries.first { $0.key == key }?.id ?? unmapped
    }

    /// A 256-entry lookup table for 8-bit label rasters.
    public var byteTable: [UInt8] {
        (0..<256).map { id(for: String($0)) }
    }
}
