import CGDAL

/// A raster band's pixel type. The corresponding C type is `GDALDataType`.
public enum RasterDataType: String, Sendable, CaseIterable, Codable {
    case byte = "Byte", int8 = "Int8", uint16 = "UInt16", int16 = "Int16", uint32 = "UInt32", int32 = "Int32"
    case uint64 = "UInt64", int64 = "Int64", float32 = "Float32", float64 = "Float64"
    case cint16 = "CInt16", cint32 = "CInt32", cfloat32 = "CFloat32", cfloat64 = "CFloat64", unknown = "Unknown"

    init(_ gdal: GDALDataType) {
        switch gdal {
        case GDT_Byte: self = .byte
        case GDT_UInt16: self = .uint16
        case GDT_Int16: self = .int16
        case GDT_UInt32: self = .uint32
        case GDT_Int32: self = .int32
        case GDT_UInt64: self = .uint64
        case GDT_Int64: self = .int64
        case GDT_Float32: self = .float32
        case GDT_Float64: self = .float64
        case GDT_CInt16: self = .cint16
        case GDT_CInt32: self = .cint32
        case GDT_CFloat32: self = .cfloat32
        case GDT_CFloat64: self = .cfloat64
        default:
            // GDT_Int8 only exists from GDAL 3.7; older GDAL reports a signed Byte band as Byte.
            self = String(cString: GDALGetDataTypeName(gdal)) == "Int8" ? .int8 : .unknown
        }
    }

    var gdal: GDALDataType {
        switch self {
        case .byte: GDT_Byte
        case .uint16: GDT_UInt16
        case .int16: GDT_Int16
        case .uint32: GDT_UInt32
        case .int32: GDT_Int32
        case .uint64: GDT_UInt64
        case .int64: GDT_Int64
        case .float32: GDT_Float32
        case .float64: GDT_Float64
        case .cint16: GDT_CInt16
        case .cint32: GDT_CInt32
        case .cfloat32: GDT_CFloat32
        case .cfloat64: GDT_CFloat64
        case .int8, .unknown: GDALGetDataTypeByName(rawValue)
        }
    }

    /// Bytes per pixel.
    public var size: Int { Int(GDALGetDataTypeSizeBytes(gdal)) }

    /// Whether the type holds (real) integers: what a label raster must be.
    public var isInteger: Bool {
        [.byte, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64].contains(self)
    }
}

/// What a band holds (red, alpha, palette index...). The C type is `GDALColorInterp`; names are
/// GDAL's (`GDALGetColorInterpretationName`), e.g. "Red", "Alpha", "Palette", "Gray", "Undefined".
public struct ColorInterpretation: Hashable, Sendable, CustomStringConvertible {
    let raw: GDALColorInterp
    public var name: String { String(cString: GDALGetColorInterpretationName(raw)) }
    public var description: String { name }

    public static let undefined = ColorInterpretation(raw: GCI_Undefined)
    public static let gray = ColorInterpretation(raw: GCI_GrayIndex)
    public static let palette = ColorInterpretation(raw: GCI_PaletteIndex)
    public static let red = ColorInterpretation(raw: GCI_RedBand)
    public static let green = ColorInterpretation(raw: GCI_GreenBand)
    public static let blue = ColorInterpretation(raw: GCI_BlueBand)
    public static let alpha = ColorInterpretation(raw: GCI_AlphaBand)
}

/// An RGBA colour-table entry.
public struct RGBA: Hashable, Sendable, Codable {
    public var r: UInt8, g: UInt8, b: UInt8, a: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8, _ a: UInt8 = 255) {
        self.r = r
        self.g = g
        self.b = b
        self.a = a
    }
}

/// How GDAL decides which pixels are valid for a band (`GDALGetMaskFlags`).
public struct MaskFlags: OptionSet, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// No mask: every pixel is valid.
    public static let allValid = MaskFlags(rawValue: GMF_ALL_VALID)
    /// The mask is shared by all bands (alpha band or internal/external mask).
    public static let perDataset = MaskFlags(rawValue: GMF_PER_DATASET)
    /// The mask comes from an alpha band.
    public static let alpha = MaskFlags(rawValue: GMF_ALPHA)
    /// The mask comes from the nodata value.
    public static let nodata = MaskFlags(rawValue: GMF_NODATA)
}
