import Foundation
import GeoIO
import Limits
import Tiling

/// `aerialseg tile`: cuts a labelled orthophoto into image/label crop pairs for mmsegmentation.
///
/// Layout (what mmseg's `BaseSegDataset` reads with `data_prefix=dict(img_path='img_dir',
/// seg_map_path='ann_dir')` and `ann_file='train.txt'`):
///
///     DIR/img_dir/<stem>_<x0>_<y0>_<x1>_<y1>.png   image crop (pixel offsets in the source image)
///     DIR/ann_dir/<stem>_<x0>_<y0>_<x1>_<y1>.png   label crop, class ids, 255 = ignore
///     DIR/train.txt, DIR/val.txt                   crop names without extension
///
/// Crop positions are mmseg's sliding-window positions (start 0, step `stride`, the last crop shifted
/// inward to end at the border, no padding) — exactly the set of distinct crops mmseg's iSAID
/// converter writes (896/overlap 384) and what its Potsdam converter's comment describes (512/256).
/// (Potsdam's code multiplies by the clip size, not the stride, so it actually writes non-overlapping
/// crops plus duplicates; `--stride 512` reproduces that output.) An image smaller than the crop
/// gives one crop padded to the full size (image 0, labels 255), as the iSAID converter pads.
///
/// Streamed: one crop is in memory at a time; files are written to a staging folder and moved into
/// place when all are done.
public struct TileOptions: Sendable {
    public enum Labels: Sendable {
        case raster(String)
        case vector(path: String, field: String, layer: String?)
    }

    public var image: String
    public var labels: Labels
    public var classMap: ValueMap?
    public var size: Int
    public var stride: Int
    public var outputDirectory: String
    public var format: String = "png"
    /// Skip crops in which fewer than this fraction of pixels are labelled (label ≠ 255, image valid).
    public var minLabelledFraction: Double?
    /// Fraction of the crops (in row-major order, so the hold-out is the bottom of the image) listed in
    /// train.txt; the rest go to val.txt. Nil: every crop in train.txt.
    public var trainFraction: Double?
    /// Only this pixel window of the image is cut (e.g. the left two thirds for training).
    public var window: PixelWindow?
    /// Image bands written (1-based); default 1,2,3 when the image has three or more bands.
    public var bands: [Int]?
    /// Label of pixels no vector feature covers.
    public var background: UInt8 = 0

    public init(image: String, labels: Labels, size: Int, stride: Int, outputDirectory: String) {
        self.image = image
        self.labels = labels
        self.size = size
        self.stride = stride
        self.outputDirectory = outputDirectory
    }
}

public struct TileResult: Sendable, Encodable {
    public var crops: Int
    public var train: Int
    public var val: Int
    public var skipped: Int
    public var outputDirectory: String
    /// Label pixels per class id over the written crops (255 = ignore), for a quick sanity check.
    public var labelHistogram: [String: Int]
}

public enum TrainingCrops {
    /// The crop windows for an area of `width` × `height` pixels starting at (`x`, `y`).
    public static func windows(x: Int = 0, y: Int = 0, width: Int, height: Int, size: Int,
                               stride: Int) throws -> [PixelWindow] {
        let grid: WindowGrid
        do {
            grid = try WindowGrid(imageWidth: width, imageHeight: height, crop: size, stride: stride)
        } catch let error as TilingError {
            throw PipelineError(path: "--size/--stride", reason: error.message, hint: error.hint)
        }
        return grid.tiles.map { PixelWindow(x: x + $0.x, y: y + $0.y, width: $0.width, height: $0.height) }
    }

    /// Refuses a crop size above `PipelineConfig.maxCrop` before anything is opened: one crop of
    /// every band (as floats), its validity and labels are held in memory.
    static func checkCropSize(_ options: TileOptions) throws {
        let bytesPerPixel = 4 * (options.bands?.count ?? 3) + 8
        let needed = MemoryBudget.format(MemoryBudget.product(options.size, options.size, bytesPerPixel))
        try SizeLimitError.check(options.size, atMost: PipelineConfig.maxCrop, what: "crop size", path: "--size",
                                 reason: "a \(options.size)² crop is held in memory whole: \(needed)",
                                 hint: "mmseg trains on 512–1024 crops")
    }

    public static func run(_ options: TileOptions, progress: (Int, Int) -> Void = { _, _ in }) throws -> TileResult {
        guard options.format == "png" || options.format == "tif" else {
            throw PipelineError(path: "--format", reason: "unknown crop format '\(options.format)'", hint: "use png or tif")
        }
        if let f = options.trainFraction, !(f > 0 && f <= 1) {
            throw PipelineError(path: "--split", reason: "train fraction \(f) is not in (0, 1]", hint: "e.g. --split 0.8")
        }
        if let f = options.minLabelledFraction, !(0...1).contains(f) {
            throw PipelineError(path: "--skip-empty", reason: "fraction \(f) is not in [0, 1]", hint: "e.g. --skip-empty 0.5")
        }
        try checkCropSize(options)
        let image = try Dataset(path: options.image)
        let bands = options.bands ?? (image.bandCount >= 3 ? [1, 2, 3] : Array(1...image.bandCount))
        guard bands.allSatisfy({ (1...image.bandCount).contains($0) }) else {
            throw PipelineError(path: options.image, reason: "has \(image.bandCount) band(s), asked for bands \(bands)",
                                hint: "choose bands with --bands")
        }
        let png = options.format == "png"
        let dataType = cropType(image.band(bands[0]).dataType, png: png)
        guard let dataType else {
            throw PipelineError(path: options.image, reason: "\(image.band(bands[0]).dataType.rawValue) pixels cannot "
                                + "be written as PNG", hint: "use --format tif")
        }
        let area = try region(options.window, image: image)
        let labels = try LabelReader(options, image: image)

        let windows = try windows(x: area.x, y: area.y, width: area.width, height: area.height, size: options.size,
                                  stride: options.stride)
        let output = try StagedOutput(directory: options.outputDirectory)
        for folder in ["img_dir", "ann_dir"] {
            try FileManager.default.createDirectory(atPath: output.stagingPath(folder), withIntermediateDirectories: true)
        }
        let stem = ((options.image as NSString).lastPathComponent as NSString).deletingPathExtension
        let ext = png ? "png" : "tif"
        let crs = image.spatialReference?.wkt
        let n = options.size
        var names: [String] = []
        var skipped = 0
        var histogram = [Int](repeating: 0, count: 256)
        var pixels = [Float](repeating: 0, count: bands.count * n * n)
        var validity = [UInt8](repeating: 0, count: n * n)
        for (i, w) in windows.enumerated() {
            // Read a full size × size window: past the image edge (only when the image is smaller than
            // the crop) pixels are 0 and invalid.
            let read = PixelWindow(x: w.x, y: w.y, width: n, height: n)
            try pixels.withUnsafeMutableBufferPointer { p in
                try validity.withUnsafeMutableBufferPointer { v in
                    try image.read(read, bands: bands, into: p, validity: v, fill: 0)
                }
            }
            // Pixels outside the cut region (padding, only when the area is smaller than the crop) are invalid too.
            if w.width < n || w.height < n {
                for r in 0..<n {
                    for c in 0..<n where c >= w.width || r >= w.height { validity[r * n + c] = 0 }
                }
            }
            var label = try labels.read(read)
            var labelled = 0
            for p in 0..<(n * n) {
                if validity[p] == 0 { label[p] = 255 }
                if label[p] != 255 { labelled += 1 }
            }
            if let minimum = options.minLabelledFraction, Double(labelled) < minimum * Double(n * n) {
                skipped += 1
                progress(i + 1, windows.count)
                continue
            }
            for value in label { histogram[Int(value)] += 1 }
            let name = "\(stem)_\(w.x)_\(w.y)_\(w.x + w.width)_\(w.y + w.height)"
            let transform = image.geoTransform?.window(read)
            try writeSmallRaster(path: output.stagingPath("img_dir/\(name).\(ext)"), png: png, width: n, height: n,
                                 bands: bands.count, dataType: dataType, planes: pixels, geoTransform: transform,
                                 crsWKT: crs)
            try writeSmallRaster(path: output.stagingPath("ann_dir/\(name).\(ext)"), png: png, width: n, height: n,
                                 bands: 1, dataType: .byte, planes: label.map(Float.init), geoTransform: transform,
                                 crsWKT: crs)
            names.append(name)
            progress(i + 1, windows.count)
        }
        let trainCount = options.trainFraction.map { Int((Double(names.count) * $0).rounded()) } ?? names.count
        try write(lines: Array(names.prefix(trainCount)), to: output.stagingPath("train.txt"))
        if options.trainFraction != nil {
            try write(lines: Array(names.dropFirst(trainCount)), to: output.stagingPath("val.txt"))
        }
        try output.commit(primaries: ["train.txt", "val.txt"])
        var counts: [String: Int] = [:]
        for (value, count) in histogram.enumerated() where count > 0 { counts[String(value)] = count }
        return TileResult(crops: names.count, train: trainCount, val: names.count - trainCount, skipped: skipped,
                          outputDirectory: options.outputDirectory, labelHistogram: counts)
    }

    /// Byte and UInt16 stay as they are (PNG holds both); other types only as GeoTIFF.
    static func cropType(_ type: RasterDataType, png: Bool) -> RasterDataType? {
        switch type {
        case .byte, .uint16: type
        case .int16, .float32: png ? nil : type
        default: png ? nil : .float32
        }
    }

    static func region(_ window: PixelWindow?, image: Dataset) throws -> PixelWindow {
        let whole = PixelWindow(x: 0, y: 0, width: image.width, height: image.height)
        guard let window else { return whole }
        guard window.width > 0, window.height > 0, window.clipped(toWidth: image.width, height: image.height) == window
        else {
            throw PipelineError(path: "--window", reason: "\(window) is not inside the \(image.width)×\(image.height) image",
                                hint: "give x,y,width,height in pixels within the image")
        }
        return window
    }

    static func write(lines: [String], to path: String) throws {
        let text = lines.map { $0 + "\n" }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw GeoIOError(.writeFailed, path: path, message: "cannot write the split list", hint: "check free space")
        }
    }
}

/// Label crops from a label raster on the image's grid or from rasterized vector polygons.
private struct LabelReader {
    let raster: Dataset?
    let vector: VectorLabels?
    let table: [UInt8]?
    let background: UInt8

    init(_ options: TileOptions, image: Dataset) throws {
        table = options.classMap?.byteTable
        background = options.background
        switch options.labels {
        case .raster(let path):
            let ds = try Dataset(path: path)
            guard ds.bandCount == 1, ds.band(1).dataType.isInteger else {
                throw PipelineError(path: path, reason: "a label raster must have one integer band, it has "
                                    + "\(ds.bandCount) band(s) of \(ds.band(1).dataType.rawValue)",
                                    hint: "class ids 0...254, 255 = ignore")
            }
            try Self.checkSameGrid(ds, image)
            raster = ds
            vector = nil
        case .vector(let path, let field, let layer):
            guard let transform = image.geoTransform, let crs = image.spatialReference else {
                throw PipelineError(path: options.image, reason: "has no georeferencing, so vector labels cannot be placed",
                                    hint: "use a label raster on the image's grid, or georeference the image")
            }
            let map = options.classMap
            vector = try VectorLabels(path: path, layer: layer, field: field, grid: transform, crs: crs) { text in
                if let map { return map.id(for: text) }
                guard let value = Double(text), value.rounded() == value, (0...255).contains(value) else {
                    throw PipelineError(path: path, reason: "field '\(field)' holds '\(text)', not a class id 0...255",
                                        hint: "map its values to class ids with --class-map, e.g. \(text)=1")
                }
                return UInt8(value)
            }
            raster = nil
        }
    }

    static func checkSameGrid(_ labels: Dataset, _ image: Dataset) throws {
        guard labels.width == image.width, labels.height == image.height else {
            throw PipelineError(path: labels.path, reason: "is \(labels.width)×\(labels.height) pixels but the image "
                                + "\(image.path) is \(image.width)×\(image.height)",
                                hint: "labels must be on the image's grid; resample with gdalwarp -r near")
        }
        if let a = labels.geoTransform, let b = image.geoTransform {
            let tolerance = 1e-6 * max(abs(b.pixelWidth), abs(b.pixelHeight))
            let close = zip(a.coefficients, b.coefficients).allSatisfy { abs($0 - $1) <= tolerance }
            guard close else {
                throw PipelineError(path: labels.path, reason: "has geotransform \(a), the image \(image.path) has \(b)",
                                    hint: "labels must be on the image's grid; resample with gdalwarp -r near")
            }
        }
        if let a = labels.spatialReference, let b = image.spatialReference, !a.isSame(as: b) {
            throw PipelineError(path: labels.path, reason: "is in \(a.name), the image \(image.path) in \(b.name)",
                                hint: "reproject the labels onto the image's grid with gdalwarp -r near")
        }
    }

    /// The labels of `window` (size × size; 255 outside the raster and where the label raster is nodata).
    func read(_ window: PixelWindow) throws -> [UInt8] {
        if let vector {
            // Pixels outside the image are marked invalid by the caller (from the image's validity).
            return try vector.rasterize(window, background: background)
        }
        guard let raster else { return [] }
        var values = [Float](repeating: 0, count: window.pixelCount)
        var valid = [UInt8](repeating: 0, count: window.pixelCount)
        try values.withUnsafeMutableBufferPointer { v in
            try valid.withUnsafeMutableBufferPointer { m in try raster.read(window, bands: [1], into: v, validity: m) }
        }
        var out = [UInt8](repeating: 255, count: window.pixelCount)
        for i in 0..<window.pixelCount where valid[i] != 0 {
            let v = Int(max(0, min(values[i], 255)))
            out[i] = table?[v] ?? UInt8(v)
        }
        return out
    }
}
