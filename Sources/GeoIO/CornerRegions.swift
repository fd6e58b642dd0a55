/// Components (4-connected sets of equal pixels) grouped into regions: with 8-connectivity, the
/// components that touch at corners form one region; with 4-connectivity each is its own.
///
/// `StripPolygonizer` polygonizes and unions components only (their pieces share edges across
/// strips, a cheap union), and assembles a region's components into one MultiPolygon without a
/// union: components of one region meet at points only, which a valid MultiPolygon allows. Unioning
/// every piece of a corner-connected region instead cost GEOS quadratic time (a 512² checkerboard:
/// 105 s and 950 MB before, 2 regions of 131 072 squares each).
///
/// Regions merge smaller into larger, so n joins relabel each component O(log n) times.
struct CornerRegions {
    /// Component → its region (absent: a region of its own, id = the component).
    private var regionOf: [Int: Int] = [:]
    /// Region → its components (absent: just the region id itself).
    private var members: [Int: Set<Int>] = [:]

    func region(of component: Int) -> Int { regionOf[component] ?? component }

    func components(of region: Int) -> Set<Int> { members[region] ?? [region] }

    /// Puts `a`'s and `b`'s regions together.
    mutating func join(_ a: Int, _ b: Int) {
        var ra = region(of: a), rb = region(of: b)
        guard ra != rb else { return }
        // Taken out of the dictionary, so growing the larger set does not copy it (copy-on-write).
        var big = members.removeValue(forKey: ra) ?? [ra], small = members.removeValue(forKey: rb) ?? [rb]
        if big.count < small.count {
            swap(&big, &small)
            swap(&ra, &rb)
        }
        for c in small { regionOf[c] = ra }
        big.formUnion(small)
        members[ra] = big
    }

    /// `component` was merged into `keep` (they turned out 4-connected): it leaves its region, which
    /// becomes `keep`'s.
    mutating func retire(_ component: Int, into keep: Int) {
        join(keep, component)
        let r = region(of: keep)
        members[r]?.remove(component)
        regionOf[component] = nil
        if r == component, let rest = members.removeValue(forKey: r) {  // the region was named after it
            let name = rest.min() ?? keep
            for c in rest { regionOf[c] = name }
            members[name] = rest
        }
    }

    /// Forgets a region that was emitted.
    mutating func remove(region: Int) {
        for c in components(of: region) { regionOf[c] = nil }
        members[region] = nil
    }
}
