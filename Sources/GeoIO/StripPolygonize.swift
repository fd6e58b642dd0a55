import CGDAL
import Foundation

/// One connected region of equal label value, polygonized.
public struct LabelRegion {
    /// The label value of its pixels.
    public let value: Int
    /// Its pixels, counted exactly (its area in pixels).
    public let pixelCount: Int
    /// Its outline in the raster's map coordinates: a Polygon, or with 8-connectivity a MultiPolygon
    /// when parts touch only at corners. Vertices are pixel corners, placed with the geotransform.
    public let geometry: VectorGeometry
}

/// Polygonizes a label band streamed in strips of rows, with the same result as one whole-image
/// `GDALPolygonize` (one region per connected set of equal valid values, same outlines and areas),
/// while holding only one strip of pixels and the outlines of regions still open.
///
/// How: 4-connected components are labelled row by row with union-find, carrying only the
/// component of each pixel of the strip's last row into the next strip; with 8-connectivity,
/// components touching at a corner are joined into regions (`CornerRegions`). Each strip's
/// component ids are polygonized with `GDALPolygonize` in pixel coordinates (integers, so pieces of
/// one component in adjacent strips share exactly equal vertices). When a region no longer reaches
/// the strip's last row, each of its components' pieces are unioned (`OGR_G_UnionCascaded`, pieces
/// sharing edges), its components gathered into one MultiPolygon (they meet at points only), and
/// moved to map coordinates as GDAL does: `X = c0 + col·c1 + row·c2`, `Y = c3 + col·c4 + row·c5`.
/// Time and memory are linear in the pieces (a 2048² checkerboard, 8-connected: see the tests).
///
/// Pixels that are invalid in the mask (nodata, alpha, mask band) or hold an excluded value never
/// become regions and do not connect regions. Band values are read as Int32, as `GDALPolygonize` does.
public struct StripPolygonizer {
    /// 4 (edges) or 8 (edges and corners) connectivity.
    public var connectivity: Connectivity
    /// Label values that never become regions (in addition to invalid pixels).
    public var excludedValues: [Int]
    /// Rows per strip; nil picks about 4 Mi pixels per strip, between 64 and 1024 rows.
    public var stripHeight: Int?

    public init(connectivity: Connectivity = .four, excludedValues: [Int] = [], stripHeight: Int? = nil) {
        self.connectivity = connectivity
        self.excludedValues = excludedValues
        self.stripHeight = stripHeight
    }

    /// Pixel types read exactly as Int32 class ids.
    public static let supportedTypes: Set<RasterDataType> = [.byte, .int8, .uint16, .int16, .int32]

    /// Polygonizes `band`, calling `emit` once per region (in no particular order). Validity comes from
    /// the mask of `validity` (default: `band` itself), e.g. the original of a sieved copy.
    /// Returns the number of regions.
    @discardableResult
    public func polygonize(_ band: RasterBand, validity: RasterBand? = nil,
                           emit: (LabelRegion) throws -> Void) throws -> Int {
        let path = band.dataset.path
        guard Self.supportedTypes.contains(band.dataType) else {
            throw GeoIOError(.unsupportedFormat, path: path,
                             message: "pixel type \(band.dataType.rawValue) is not an integer class id",
                             hint: "vectorize takes Byte/Int16/UInt16/Int32 labels; convert whole-valued rasters "
                                 + "with gdal_translate -ot Int32")
        }
        let validitySource = validity ?? band
        guard validitySource.dataset.width == band.dataset.width,
              validitySource.dataset.height == band.dataset.height else {
            throw GeoIOError(.invalidArgument, path: validitySource.dataset.path,
                             message: "mask raster size differs from \(path)", hint: "")
        }
        let width = band.dataset.width, height = band.dataset.height
        let rows = max(1, stripHeight ?? min(1024, max(64, (4 << 20) / max(width, 1))))
        let mask: GDALRasterBandH? = validitySource.maskFlags.contains(.allValid)
            ? nil : GDALGetMaskBand(validitySource.handle)
        let state = StripState(width: width, connectivity: connectivity,
                               excluded: excludedValues.map { Int32(clamping: $0) },
                               transform: band.dataset.geoTransform ?? .identity, path: path)
        var count = 0
        for top in stride(from: 0, to: height, by: rows) {
            let h = min(rows, height - top)
            try state.read(band: band.handle, mask: mask, top: top, height: h)
            let roots = state.label(height: h)
            let pieces = try state.polygonize(top: top, height: h, roots: roots)
            for (component, geometry) in pieces { state.open[component, default: []].append(geometry) }
            count += try state.emitClosed(final: top + h == height, emit: emit)
        }
        return count
    }
}

/// A geometry handle destroyed with its owner unless taken.
final class OwnedGeometry {
    var handle: OGRGeometryH?
    init(_ handle: OGRGeometryH) { self.handle = handle }
    deinit { if let handle { OGR_G_DestroyGeometry(handle) } }
    func take() -> OGRGeometryH? {
        defer { handle = nil }
        return handle
    }
}

/// The state carried from strip to strip: the last row's components and the regions still open.
final class StripState {
    let width: Int
    let eight: Bool
    let excluded: [Int32]
    let transform: GeoTransform
    let path: String

    // The current strip: values and validity (1 = becomes a region), (height, width) row-major.
    var values: [Int32] = []
    var valid: [UInt8] = []
    // The row above the strip: values and global component (-1 = none).
    var aboveValues: [Int32]
    var aboveComponent: [Int]
    // The global component each local label of the strip continues (-1: born in this strip).
    var carried: [Int] = []

    /// Global component → its polygon pieces (pixel coordinates), and its value.
    var open: [Int: [OwnedGeometry]] = [:]
    var componentValue: [Int: Int32] = [:]
    var nextComponent = 0
    /// Components joined through corners (8-connectivity only).
    var regions = CornerRegions()

    init(width: Int, connectivity: Connectivity, excluded: [Int32], transform: GeoTransform, path: String) {
        self.width = width
        self.eight = connectivity == .eight
        self.excluded = excluded
        self.transform = transform
        self.path = path
        aboveValues = [Int32](repeating: 0, count: width)
        aboveComponent = [Int](repeating: -1, count: width)
    }

    /// Reads rows top..<top+height: values as Int32, validity from the mask and the excluded values.
    func read(band: GDALRasterBandH, mask: GDALRasterBandH?, top: Int, height: Int) throws {
        let n = width * height
        if values.count != n {
            values = [Int32](repeating: 0, count: n)
            valid = [UInt8](repeating: 1, count: n)
        }
        let err = values.withUnsafeMutableBytes { buf in
            withQuietGDAL {
                GDALRasterIOEx(band, GF_Read, 0, Int32(top), Int32(width), Int32(height), buf.baseAddress,
                               Int32(width), Int32(height), GDT_Int32, 4, Int64(4 * width), nil)
            }
        }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "cannot read rows \(top)..<\(top + height)",
                            hint: "the file may be truncated or corrupt; `gdalinfo -checksum` shows it")
        }
        if let mask {
            let err = valid.withUnsafeMutableBytes { buf in
                withQuietGDAL {
                    GDALRasterIOEx(mask, GF_Read, 0, Int32(top), Int32(width), Int32(height), buf.baseAddress,
                                   Int32(width), Int32(height), GDT_Byte, 1, Int64(width), nil)
                }
            }
            guard err == CE_None else {
                throw gdalError(.readFailed, path: path, fallback: "cannot read the mask of rows \(top)...",
                                hint: "the file's mask or alpha band may be corrupt")
            }
        } else {
            for i in 0..<n { valid[i] = 1 }
        }
        if !excluded.isEmpty {
            for i in 0..<n where valid[i] != 0 && excluded.contains(values[i]) { valid[i] = 0 }
        }
    }

    /// Labels the strip's connected components (linked to the row above); returns each pixel's root
    /// label (-1 where invalid) and sets `rootComponent`. Regions continuing from the row above keep
    /// their global component; regions joined through this strip are merged.
    func label(height: Int) -> [Int32] {
        let w = width, n = w * height
        var sets = UnionFind()
        carried.removeAll(keepingCapacity: true)
        // Labels of the row above: one per global component present there.
        var aboveLabel = [Int32](repeating: -1, count: w)
        var labelOf: [Int: Int32] = [:]
        for x in 0..<w where aboveComponent[x] >= 0 {
            let c = aboveComponent[x]
            if let l = labelOf[c] {
                aboveLabel[x] = l
            } else {
                let l = sets.make()
                carried.append(c)
                labelOf[c] = l
                aboveLabel[x] = l
            }
        }
        var labels = [Int32](repeating: -1, count: n)
        let eight = self.eight
        var corners: [(Int32, Int32)] = []  // labels touching only diagonally (8-connectivity)
        values.withUnsafeBufferPointer { V in
            valid.withUnsafeBufferPointer { M in
                labels.withUnsafeMutableBufferPointer { L in
                    aboveLabel.withUnsafeBufferPointer { AL in
                        aboveValues.withUnsafeBufferPointer { AV in
                            for y in 0..<height {
                                let row = y * w
                                // The row above: the previous strip's last row, or this strip's.
                                let upLabels = y == 0 ? AL.baseAddress! : UnsafePointer(L.baseAddress! + (row - w))
                                let upValues = y == 0 ? AV.baseAddress! : V.baseAddress! + (row - w)
                                for x in 0..<w where M[row + x] != 0 {
                                    let i = row + x, v = V[i]
                                    var l: Int32 = x > 0 && L[i - 1] >= 0 && V[i - 1] == v ? L[i - 1] : -1
                                    let up = upLabels[x]
                                    if up >= 0, upValues[x] == v {
                                        if l < 0 { l = up } else if l != up { sets.union(l, up) }
                                    }
                                    if l < 0 { l = sets.make() }
                                    L[i] = l
                                    guard eight else { continue }
                                    for ux in [x - 1, x + 1] where ux >= 0 && ux < w {
                                        let other = upLabels[ux]
                                        if other >= 0, other != l, upValues[ux] == v { corners.append((l, other)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        carried += [Int](repeating: -1, count: sets.count - carried.count)
        // Each root's global component: a carried one (merging others joined through this strip),
        // else a new one.
        var rootComponent = [Int](repeating: -1, count: sets.count)
        for l in 0..<sets.count where carried[l] >= 0 {
            let r = Int(sets.find(Int32(l)))
            let c = carried[l]
            if rootComponent[r] < 0 {
                rootComponent[r] = c
            } else if rootComponent[r] != c {
                let keep = rootComponent[r]
                open[keep, default: []].append(contentsOf: open.removeValue(forKey: c) ?? [])
                componentValue.removeValue(forKey: c)
                regions.retire(c, into: keep)
            }
        }
        var roots = [Int32](repeating: -1, count: n)
        for i in 0..<n where labels[i] >= 0 {
            let r = sets.find(labels[i])
            roots[i] = r
            if rootComponent[Int(r)] < 0 {
                rootComponent[Int(r)] = nextComponent
                componentValue[nextComponent] = values[i]
                nextComponent += 1
            }
        }
        for (a, b) in corners {
            regions.join(rootComponent[Int(sets.find(a))], rootComponent[Int(sets.find(b))])
        }
        self.rootComponent = rootComponent
        // The strip's last row becomes the row above the next strip.
        let last = (height - 1) * w
        for x in 0..<w {
            aboveValues[x] = values[last + x]
            aboveComponent[x] = roots[last + x] >= 0 ? rootComponent[Int(roots[last + x])] : -1
        }
        return roots
    }

    var rootComponent: [Int] = []

    /// Polygonizes the strip's root labels in pixel coordinates; returns (component, polygon) pieces.
    func polygonize(top: Int, height: Int, roots: [Int32]) throws -> [(Int, OwnedGeometry)] {
        guard let memDriver = GDALGetDriverByName("MEM"), let vectorDriver = GDALGetDriverByName("Memory") else {
            throw GeoIOError(.unsupportedFormat, path: path, message: "GDAL lacks the MEM/Memory drivers",
                             hint: "reinstall GDAL")
        }
        let raster: GDALDatasetH? = withQuietGDAL {
            GDALCreate(memDriver, "", Int32(width), Int32(height), 1, GDT_Int32, nil)
        }
        guard let raster else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot allocate a strip", hint: "out of memory?")
        }
        defer { GDALClose(raster) }
        var gt = [0, 1, 0, Double(top), 0, 1]
        guard withQuietGDAL({ GDALSetGeoTransform(raster, &gt) }) == CE_None,
              withQuietGDAL({ GDALAddBand(raster, GDT_Byte, nil) }) == CE_None,
              let idBand = GDALGetRasterBand(raster, 1), let maskBand = GDALGetRasterBand(raster, 2) else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot allocate a strip", hint: "out of memory?")
        }
        var ids = roots
        let e1 = ids.withUnsafeMutableBytes { buf in
            GDALRasterIOEx(idBand, GF_Write, 0, 0, Int32(width), Int32(height), buf.baseAddress,
                           Int32(width), Int32(height), GDT_Int32, 4, Int64(4 * width), nil)
        }
        var validity = roots.map { $0 >= 0 ? UInt8(1) : 0 }
        let e2 = validity.withUnsafeMutableBytes { buf in
            GDALRasterIOEx(maskBand, GF_Write, 0, 0, Int32(width), Int32(height), buf.baseAddress,
                           Int32(width), Int32(height), GDT_Byte, 1, Int64(width), nil)
        }
        guard e1 == CE_None, e2 == CE_None else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot fill a strip", hint: "out of memory?")
        }
        let vectors: GDALDatasetH? = withQuietGDAL { GDALCreate(vectorDriver, "", 0, 0, 0, GDT_Unknown, nil) }
        guard let vectors, let layer = GDALDatasetCreateLayer(vectors, "strip", nil, wkbPolygon, nil) else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot allocate a strip layer", hint: "")
        }
        defer { GDALClose(vectors) }
        let field = OGR_Fld_Create("id", OFTInteger)
        defer { OGR_Fld_Destroy(field) }
        guard withQuietGDAL({ OGR_L_CreateField(layer, field, 1) }) == OGRERR_NONE else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot allocate a strip layer", hint: "")
        }
        // 4-connected pieces are valid polygons; 8-connected regions are rejoined by the union.
        let err = withQuietGDAL { GDALPolygonize(idBand, maskBand, layer, 0, nil, nil, nil) }
        guard err == CE_None else {
            throw gdalError(.readFailed, path: path, fallback: "polygonizing rows \(top)... failed",
                            hint: "check the label raster with `gdalinfo -checksum`")
        }
        var pieces: [(Int, OwnedGeometry)] = []
        OGR_L_ResetReading(layer)
        while let feature = OGR_L_GetNextFeature(layer) {
            let root = Int(OGR_F_GetFieldAsInteger(feature, 0))
            if let geometry = OGR_F_StealGeometry(feature), root >= 0, root < rootComponent.count {
                pieces.append((rootComponent[root], OwnedGeometry(geometry)))
            }
            OGR_F_Destroy(feature)
        }
        return pieces
    }

    /// Emits every open region that does not reach the last row read (all of them when `final`).
    func emitClosed(final: Bool, emit: (LabelRegion) throws -> Void) throws -> Int {
        let live = final ? Set<Int>() : Set(aboveComponent.filter { $0 >= 0 }.map { regions.region(of: $0) })
        var closed: [Int: [Int]] = [:]
        for component in open.keys where !live.contains(regions.region(of: component)) {
            closed[regions.region(of: component), default: []].append(component)
        }
        for (region, components) in closed.sorted(by: { $0.value.min()! < $1.value.min()! }) {
            let value = componentValue[components[0]] ?? 0
            var parts: [VectorGeometry] = []
            for component in components.sorted() {
                parts.append(try merge(open.removeValue(forKey: component) ?? []))
                componentValue.removeValue(forKey: component)
            }
            regions.remove(region: region)
            let geometry = parts.count == 1 ? parts[0] : gathered(parts)
            let pixels = Int(OGR_G_Area(geometry.handle).rounded())
            toMapCoordinates(geometry.handle)
            try emit(LabelRegion(value: Int(value), pixelCount: pixels, geometry: geometry))
        }
        // Components that ended without a piece (cannot happen) must not linger.
        if final { componentValue.removeAll() }
        return closed.count
    }

    /// One MultiPolygon of a region's components (polygons meeting at points only: no union needed).
    private func gathered(_ parts: [VectorGeometry]) -> VectorGeometry {
        let multi = OGR_G_CreateGeometry(wkbMultiPolygon)!
        for part in parts {
            let count = Int(OGR_G_GetGeometryCount(part.handle))
            if OGR_GT_Flatten(OGR_G_GetGeometryType(part.handle)) == wkbMultiPolygon {
                for i in 0..<count { _ = OGR_G_AddGeometry(multi, OGR_G_GetGeometryRef(part.handle, Int32(i))) }
            } else {
                _ = OGR_G_AddGeometry(multi, part.handle)  // copies
            }
        }
        return VectorGeometry(owning: multi)
    }

    /// One geometry from a component's pieces (pixel coordinates).
    private func merge(_ pieces: [OwnedGeometry]) throws -> VectorGeometry {
        if pieces.count == 1, let only = pieces[0].take() { return VectorGeometry(owning: only) }
        let collection = OGR_G_CreateGeometry(wkbMultiPolygon)
        defer { OGR_G_DestroyGeometry(collection) }
        for piece in pieces {
            if let h = piece.take() { _ = OGR_G_AddGeometryDirectly(collection, h) }
        }
        let union: OGRGeometryH? = withQuietGDAL { OGR_G_UnionCascaded(collection) }
        guard let union else {
            throw gdalError(.writeFailed, path: path, fallback: "cannot join a region's pieces across strips",
                            hint: "report this raster as a bug")
        }
        return VectorGeometry(owning: union)
    }

    /// Pixel → map coordinates, the same arithmetic as GDALPolygonize.
    private func toMapCoordinates(_ geometry: OGRGeometryH) {
        let parts = Int(OGR_G_GetGeometryCount(geometry))
        if parts > 0 {
            for i in 0..<parts { toMapCoordinates(OGR_G_GetGeometryRef(geometry, Int32(i))) }
            return
        }
        let n = Int(OGR_G_GetPointCount(geometry))
        guard n > 0 else { return }
        var xs = [Double](repeating: 0, count: n), ys = [Double](repeating: 0, count: n)
        _ = OGR_G_GetPoints(geometry, &xs, 8, &ys, 8, nil, 0)
        let c = transform.coefficients
        for i in 0..<n {
            let col = xs[i], row = ys[i]
            xs[i] = c[0] + col * c[1] + row * c[2]
            ys[i] = c[3] + col * c[4] + row * c[5]
        }
        OGR_G_SetPoints(geometry, Int32(n), &xs, 8, &ys, 8, nil, 0)
    }
}

/// Disjoint sets of labels 0..<count (union by smaller label, path compression).
struct UnionFind {
    private var parent: [Int32] = []

    var count: Int { parent.count }

    /// A new singleton label.
    mutating func make() -> Int32 {
        let l = Int32(parent.count)
        parent.append(l)
        return l
    }

    mutating func find(_ label: Int32) -> Int32 {
        var root = label
        while parent[Int(root)] != root { root = parent[Int(root)] }
        var l = label
        while parent[Int(l)] != root {
            let next = parent[Int(l)]
            parent[Int(l)] = root
            l = next
        }
        return root
    }

    mutating func union(_ a: Int32, _ b: Int32) {
        let ra = find(a), rb = find(b)
        if ra < rb { parent[Int(rb)] = ra } else if rb < ra { parent[Int(ra)] = rb }
    }
}
