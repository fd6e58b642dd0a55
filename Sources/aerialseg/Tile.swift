import ArgumentParser
import Foundation
import GeoIO
import Pipeline

/// `aerialseg tile IMAGE (--labels L | --vector-labels V --label-field F) --size N --stride N --output DIR`
struct Tile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut a labelled orthophoto into image/label training crops for mmsegmentation.",
        discussion: """
            Writes DIR/img_dir/<stem>_<x0>_<y0>_<x1>_<y1>.<ext>, the matching DIR/ann_dir/... label crop \
            (class ids, 255 = ignore: nodata and unmapped values) and DIR/train.txt (and val.txt with \
            --split). Crops start every --stride pixels; the last row and column are shifted inward to end \
            at the border, as mmseg's dataset converters do (Potsdam: --size 512 --stride 256; iSAID: \
            --size 896 --stride 512).
            """)

    @Argument(help: "The orthophoto (any raster GDAL reads).")
    var image: String

    @Option(help: "A label raster on the image's grid (one integer band).")
    var labels: String?

    @Option(help: "Vector labels (GeoPackage, Shapefile, GeoJSON): polygons rasterized onto the image's grid.")
    var vectorLabels: String?

    @Option(help: "The attribute holding each polygon's class (with --vector-labels).")
    var labelField: String?

    @Option(help: "The vector layer (default: the first).")
    var layer: String?

    @Option(help: "Map label values to class ids, e.g. 0=0,255=1 or tree=1,grass=2; other values become 255.")
    var classMap: String?

    @Option(help: "Class of pixels no polygon covers (with --vector-labels).")
    var background = 0

    @Option(help: "Crop size in pixels (512, 896, ...).")
    var size: Int

    @Option(help: "Step between crops in pixels (≤ size).")
    var stride: Int

    @Option(help: "Output folder.")
    var output: String

    @Option(help: "png (mmseg's usual) or tif (crops keep their georeferencing).")
    var format = "png"

    @Option(help: "Skip crops with less than this fraction of labelled pixels (label ≠ 255 and image valid).")
    var skipEmpty: Double?

    @Option(help: "Fraction of crops for train.txt (in row-major order); the rest go to val.txt.")
    var split: Double?

    @Option(help: "Only cut this pixel window of the image: x,y,width,height.")
    var window: String?

    @Option(help: "Image bands written, e.g. 1,2,3 (default: 1,2,3, or all bands of a 1- or 2-band image).")
    var bands: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if (labels == nil) == (vectorLabels == nil) {
            throw ValidationError("give either --labels or --vector-labels")
        }
        if vectorLabels != nil && labelField == nil { throw ValidationError("--vector-labels needs --label-field") }
        if !(0...255).contains(background) { throw ValidationError("--background must be a class id 0...255") }
    }

    func run() async throws {
        do {
            let labelSource: TileOptions.Labels = if let labels {
                .raster(labels)
            } else {
                .vector(path: vectorLabels ?? "", field: labelField ?? "", layer: layer)
            }
            var options = TileOptions(image: image, labels: labelSource, size: size, stride: stride,
                                      outputDirectory: output)
            options.classMap = try classMap.map { try ValueMap(parsing: $0, option: "--class-map") }
            options.format = format
            options.minLabelledFraction = skipEmpty
            options.trainFraction = split
            options.background = UInt8(background)
            options.window = try window.map(parseWindow)
            options.bands = try bands.map(parseList)
            let result = try TrainingCrops.run(options)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else {
                var line = "\(result.crops) crop pairs in \(output) (train \(result.train), val \(result.val)"
                if result.skipped > 0 { line += ", \(result.skipped) skipped as mostly unlabelled" }
                print(line + ")")
            }
        } catch {
            throw fail(error)
        }
    }

    func parseList(_ text: String) throws -> [Int] {
        guard let values = parseIntegers(text) else {
            throw PipelineError(path: text, reason: "not a list of integers", hint: "e.g. 1,2,3")
        }
        return values
    }

    func parseWindow(_ text: String) throws -> PixelWindow {
        let v = try parseList(text)
        guard v.count == 4 else {
            throw PipelineError(path: "--window", reason: "'\(text)' is not x,y,width,height", hint: "e.g. 0,0,1365,2048")
        }
        return PixelWindow(x: v[0], y: v[1], width: v[2], height: v[3])
    }
}
