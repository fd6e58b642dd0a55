import Foundation
import GeoIO
import Pipeline
import TestSupport
import Testing

/// `aerialseg tile`: crop layout against mmseg's converter formulas, pixels against GDAL, vector
/// labels against `gdal_rasterize`, and bad input.
@Suite("Training crops")
struct TrainingCropsTests {
    let ortho = Fixtures.local("rasters/ortho_10cm.tif").path
    let mask = Fixtures.local("rasters/canopy_mask.tif").path

    /// The distinct boxes mmseg's iSAID converter writes (`slide_crop_image`: x in range(0, W, step),
    /// each crop shifted inward to end at the border), as (x0, y0, x1, y1).
    static func isaidBoxes(width: Int, height: Int, patch: Int, overlap: Int) -> Set<[Int]> {
        var boxes = Set<[Int]>()
        for x in Swift.stride(from: 0, to: width, by: patch - overlap) {
            for y in Swift.stride(from: 0, to: height, by: patch - overlap) {
                var xs = x, xe = x + patch, ys = y, ye = y + patch
                if xe > width { xs -= xe - width; xe = width }
                if ye > height { ys -= ye - height; ye = height }
                boxes.insert([xs, ys, xe, ye])
            }
        }
        return boxes
    }

    /// The distinct boxes of mmseg's Potsdam converter code (`clip_big_image`), literally: the grid
    /// counts use the stride, the offsets `x * clip_size`.
    static func potsdamBoxes(width w: Int, height h: Int, clip: Int, stride: Int) -> Set<[Int]> {
        func count(_ length: Int) -> Int {
            let n = Int((Double(length - clip) / Double(stride)).rounded(.up))
            return n * stride + clip >= length ? n : n + 1
        }
        var boxes = Set<[Int]>()
        for y in 0...count(h) {
            for x in 0...count(w) {
                let xmin = x * clip, ymin = y * clip
                let xo = xmin + clip > w ? w - xmin - clip : 0
                let yo = ymin + clip > h ? h - ymin - clip : 0
                boxes.insert([xmin + xo, ymin + yo, min(xmin + clip, w), min(ymin + clip, h)])
            }
        }
        return boxes
    }

    /// (x0, y0, x1, y1) parsed from the crop names in `folder`.
    static func boxes(in folder: String, stem: String) throws -> [[Int]] {
        try FileManager.default.contentsOfDirectory(atPath: folder).map { name in
            let base = (name as NSString).deletingPathExtension
            #expect(base.hasPrefix(stem + "_"))
            return base.dropFirst(stem.count + 1).split(separator: "_").compactMap { Int($0) }
        }
    }

    func tile(_ configure: (inout TileOptions) -> Void, size: Int, stride: Int,
              labels: TileOptions.Labels? = nil) throws -> (TileResult, String) {
        let out = Fixtures.temporaryDirectory("tile").path
        var options = TileOptions(image: ortho, labels: labels ?? .raster(mask), size: size, stride: stride,
                                  outputDirectory: out)
        configure(&options)
        return (try TrainingCrops.run(options), out)
    }

    @Test("crop layout = mmseg's converters (Potsdam 512/256 as documented, iSAID 896/384, Potsdam code 512/512)")
    func layoutMatchesConverters() throws {
        // The formula alone, on the shared orthophoto's size and others (no files written).
        for (w, h) in [(2048, 2048), (6000, 6000), (1366, 2048), (900, 5000), (513, 1024)] {
            for (size, stride) in [(512, 256), (896, 512), (512, 512)] where w >= size && h >= size {
                let ours = Set(try TrainingCrops.windows(width: w, height: h, size: size, stride: stride)
                    .map { [$0.x, $0.y, $0.x + $0.width, $0.y + $0.height] })
                #expect(ours == Self.isaidBoxes(width: w, height: h, patch: size, overlap: size - stride),
                        "\(w)×\(h) \(size)/\(stride)")
                if size == stride {
                    #expect(ours == Self.potsdamBoxes(width: w, height: h, clip: size, stride: stride))
                }
            }
        }
        // Real crops of the OAM-TCD tile: file names carry the same boxes.
        for (size, stride) in [(512, 256), (896, 512)] {
            let (result, out) = try tile({ _ in }, size: size, stride: stride)
            defer { try? FileManager.default.removeItem(atPath: out) }
            let images = try Self.boxes(in: out + "/img_dir", stem: "ortho_10cm")
            let labels = try Self.boxes(in: out + "/ann_dir", stem: "ortho_10cm")
            let expected = Self.isaidBoxes(width: 2048, height: 2048, patch: size, overlap: size - stride)
            #expect(result.crops == expected.count && images.count == expected.count)
            #expect(Set(images) == expected && Set(labels) == expected)
        }
    }

    @Test("crop pixels equal the source windows read by GDAL; GeoTIFF crops keep their georeferencing")
    func cropPixels() throws {
        let (result, out) = try tile({ $0.format = "tif"; $0.window = PixelWindow(x: 1000, y: 0, width: 1048, height: 900) },
                                     size: 512, stride: 384)
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(result.crops == Self.isaidBoxes(width: 1048, height: 900, patch: 512, overlap: 128).count)
        let source = try Dataset(path: ortho), labels = try Dataset(path: mask)
        for box in try Self.boxes(in: out + "/img_dir", stem: "ortho_10cm") {
            let window = PixelWindow(x: box[0], y: box[1], width: box[2] - box[0], height: box[3] - box[1])
            let name = "ortho_10cm_\(box.map(String.init).joined(separator: "_")).tif"
            let crop = try Dataset(path: out + "/img_dir/" + name)
            let crop1 = PixelWindow(x: 0, y: 0, width: window.width, height: window.height)
            for b in 1...3 {
                #expect(try crop.readBytes(crop1, band: b) == source.readBytes(window, band: b))
            }
            #expect(try Dataset(path: out + "/ann_dir/" + name).readBytes(crop1) == labels.readBytes(window))
            // gdalinfo's geotransform of the crop = the source's, shifted to the window.
            let info = try Tool.gdalinfoJSON(out + "/img_dir/" + name)
            let gt = try #require(info["geoTransform"] as? [Double])
            let expected = try #require(source.geoTransform?.window(window).coefficients)
            #expect(zip(gt, expected).allSatisfy { abs($0 - $1) <= 1e-9 * max(1, abs($1)) })
            #expect((info["coordinateSystem"] as? [String: Any])?["wkt"] != nil)
        }
    }

    @Test("an area smaller than the crop gives one crop padded to full size (image 0, labels 255), as iSAID pads")
    func padded() throws {
        let (result, out) = try tile({ $0.window = PixelWindow(x: 1500, y: 300, width: 300, height: 200) },
                                     size: 512, stride: 256)
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(result.crops == 1)
        let crop = try Dataset(path: out + "/ann_dir/ortho_10cm_1500_300_1800_500.png")
        #expect(crop.width == 512 && crop.height == 512)
        let labels = try crop.readBytes(PixelWindow(x: 0, y: 0, width: 512, height: 512))
        let source = try Dataset(path: mask).readBytes(PixelWindow(x: 1500, y: 300, width: 300, height: 200))
        var wrong = 0
        for r in 0..<512 {
            for c in 0..<512 where labels[r * 512 + c] != (r < 200 && c < 300 ? source[r * 300 + c] : 255) { wrong += 1 }
        }
        #expect(wrong == 0)
    }

    @Test("split lists, class map, nodata → 255 and --skip-empty")
    func splitAndSkip() throws {
        // The white collar declared nodata through a VRT, as the tree-canopy example does.
        let dir = Fixtures.temporaryDirectory("tile-vrt").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vrt = dir + "/ortho.vrt"
        #expect(try Tool.run("gdal_translate", ["-q", "-of", "VRT", "-a_nodata", "255", ortho, vrt]).status == 0)
        var options = TileOptions(image: vrt, labels: .raster(mask), size: 512, stride: 256, outputDirectory: dir + "/all")
        options.classMap = try ValueMap(parsing: "0=3,1=7")
        options.trainFraction = 0.8
        let all = try TrainingCrops.run(options)
        #expect(all.crops == 49 && all.train == 39 && all.val == 10)
        let train = try String(contentsOfFile: dir + "/all/train.txt", encoding: .utf8).split(separator: "\n")
        let val = try String(contentsOfFile: dir + "/all/val.txt", encoding: .utf8).split(separator: "\n")
        #expect(train.count == 39 && val.count == 10 && Set(train).isDisjoint(with: val))
        for name in train + val {
            #expect(FileManager.default.fileExists(atPath: dir + "/all/ann_dir/\(name).png"))
        }
        // Labels only take the mapped ids or 255; 255 exactly where all three bands are 255 (nodata).
        let source = try Dataset(path: ortho)
        let name = "ortho_1024_0_1536_512"  // half collar, half imagery
        let label = try Dataset(path: dir + "/all/ann_dir/\(name).png").readBytes(PixelWindow(x: 0, y: 0, width: 512, height: 512))
        let window = PixelWindow(x: 1024, y: 0, width: 512, height: 512)
        let (r, g, b) = (try source.readBytes(window, band: 1), try source.readBytes(window, band: 2),
                         try source.readBytes(window, band: 3))
        let mapped = try Dataset(path: mask).readBytes(window).map { $0 == 0 ? UInt8(3) : 7 }
        var wrong = 0
        for i in 0..<label.count {
            let expected: UInt8 = r[i] == 255 && g[i] == 255 && b[i] == 255 ? 255 : mapped[i]
            if label[i] != expected { wrong += 1 }
        }
        #expect(wrong == 0 && Set(label).isSubset(of: [3, 7, 255]) && label.contains(255) && label.contains(7))

        options.outputDirectory = dir + "/kept"
        options.minLabelledFraction = 0.05
        let kept = try TrainingCrops.run(options)
        #expect(kept.crops + kept.skipped == 49 && kept.skipped > 0 && kept.crops > 0)
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/kept/ann_dir") {
            let l = try Dataset(path: dir + "/kept/ann_dir/" + name).readBytes(PixelWindow(x: 0, y: 0, width: 512, height: 512))
            #expect(l.filter { $0 != 255 }.count >= Int(0.05 * 512 * 512))
        }
    }

    @Test("vector labels = gdal_rasterize on the same grid (integer field, text field with --class-map)")
    func vectorLabels() throws {
        let dir = Fixtures.temporaryDirectory("tile-vector").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Polygons from the canopy mask (GDAL's own polygonizer), a text attribute added by ogr2ogr.
        let poly = dir + "/canopy.gpkg", named = dir + "/named.gpkg"
        #expect(try Tool.run("gdal_polygonize.py", ["-q", mask, "-f", "GPKG", poly, "canopy", "DN"]).status == 0)
        let sql = "SELECT geom, DN, CASE WHEN DN = 1 THEN 'tree' ELSE 'ground' END AS kind FROM canopy"
        #expect(try Tool.run("ogr2ogr", ["-f", "GPKG", named, poly, "-sql", sql, "-nln", "named"]).status == 0)
        let whole = dir + "/rasterized.tif"
        let source = try Dataset(path: ortho)
        let gt = try #require(source.geoTransform)
        let te = [gt.originX, gt.originY + 2048 * gt.pixelHeight, gt.originX + 2048 * gt.pixelWidth, gt.originY]
        let rasterize = try Tool.run("gdal_rasterize", ["-q", "-a", "DN", "-te"] + te.map { "\($0)" }
            + ["-ts", "2048", "2048", "-ot", "Byte", "-init", "0", poly, whole])
        #expect(rasterize.status == 0, "\(rasterize.stderr)")
        let reference = try Dataset(path: whole)

        let (byField, out1) = try tile({ _ in }, size: 512, stride: 384, labels: .vector(path: poly, field: "DN", layer: nil))
        let (byName, out2) = try tile({ $0.classMap = try? ValueMap(parsing: "tree=1,ground=0") }, size: 512, stride: 384,
                                      labels: .vector(path: named, field: "kind", layer: "named"))
        defer { for o in [out1, out2] { try? FileManager.default.removeItem(atPath: o) } }
        #expect(byField.crops == 25 && byName.crops == 25)
        var differing = 0, treePixels = 0
        for box in try Self.boxes(in: out1 + "/ann_dir", stem: "ortho_10cm") {
            let window = PixelWindow(x: box[0], y: box[1], width: 512, height: 512)
            let name = "/ann_dir/ortho_10cm_\(box.map(String.init).joined(separator: "_")).png"
            let crop = PixelWindow(x: 0, y: 0, width: 512, height: 512)
            let expected = try reference.readBytes(window)
            let a = try Dataset(path: out1 + name).readBytes(crop), b = try Dataset(path: out2 + name).readBytes(crop)
            differing += zip(a, expected).filter { $0 != $1 }.count + zip(b, expected).filter { $0 != $1 }.count
            treePixels += a.filter { $0 == 1 }.count
            // Polygons of the mask rasterize back to the mask itself.
            differing += zip(a, try Dataset(path: mask).readBytes(window)).filter { $0 != $1 }.count
        }
        #expect(differing == 0 && treePixels > 10_000)
    }

    @Test("bad input: label grid, unknown field, unmapped text, stride > size, window outside")
    func badInput() throws {
        let road = Fixtures.shared("data/spacenet-roads/road_mask.tif")?.path ?? Fixtures.local("rasters/rgb1.tif").path
        #expect(throws: PipelineError.self) { try tile({ _ in }, size: 512, stride: 256, labels: .raster(road)) }
        do {
            _ = try tile({ _ in }, size: 512, stride: 600)
            Issue.record("stride > size accepted")
        } catch let error as PipelineError {
            #expect("\(error)".contains("stride 600"))
        }
        #expect(throws: PipelineError.self) {
            try tile({ $0.window = PixelWindow(x: 2000, y: 0, width: 100, height: 100) }, size: 512, stride: 256)
        }
        let dir = Fixtures.temporaryDirectory("tile-bad").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let poly = dir + "/canopy.gpkg"
        #expect(try Tool.run("gdal_polygonize.py", ["-q", mask, "-f", "GPKG", poly, "canopy", "DN"]).status == 0)
        do {
            _ = try tile({ _ in }, size: 512, stride: 256, labels: .vector(path: poly, field: "class", layer: nil))
            Issue.record("unknown field accepted")
        } catch let error as GeoIOError {
            #expect(error.message.contains("no field 'class'") && error.hint.contains("DN"))
        }
    }
}
