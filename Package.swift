// swift-tools-version:6.0
import PackageDescription

// Dependencies point one way: aerialseg (CLI) → Pipeline → {GeoIO, Tiling, SegCore} → C targets.
let package = Package(
    name: "AerialSeg",
    products: [
        .executable(name: "aerialseg", targets: ["aerialseg"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries, one system-library target each (module.modulemap + shim.h).
        .systemLibrary(name: "CGDAL", pkgConfig: "gdal", providers: [.apt(["libgdal-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // Memory budget and size limits, shared by every module that allocates by user input.
        .target(name: "Limits"),
        .target(name: "GeoIO", dependencies: ["CGDAL"]),
        .target(name: "SegCore", dependencies: ["CBLAS", "CDNNL", "Limits"]),
        .target(name: "Tiling"),
        .target(name: "Pipeline", dependencies: ["GeoIO", "Tiling", "SegCore", "Limits", "Yams"]),
        .executableTarget(
            name: "aerialseg",
            dependencies: [
                "Pipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "GeoIOTests", dependencies: ["GeoIO", "TestSupport"]),
        .testTarget(name: "SegCoreTests", dependencies: ["SegCore", "Limits", "TestSupport"]),
        .testTarget(name: "TilingTests", dependencies: ["Tiling"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "GeoIO", "SegCore", "Tiling", "Limits", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["aerialseg", "GeoIO", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
