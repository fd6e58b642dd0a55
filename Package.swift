// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: aerialseg (CLI) → Service (HTTP, `serve`) → Pipeline → {GeoIO, Tiling, SegCore} → C targets.
// Hummingbird, NIO, metrics and auth are confined to Service.
let package = Package(
    name: "AerialSeg",
    products: [
        .executable(name: "aerialseg", targets: ["aerialseg"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // The server (Service). Hummingbird without its swift-configuration trait: one package less to build.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0", traits: ["FullFoundation"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C libraries, one system-library target each (module.modulemap + shim.h).
        .systemLibrary(name: "CGDAL", pkgConfig: "gdal", providers: [.apt(["libgdal-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // Memory budget and size limits, shared by every module that allocates by user input.
        .target(name: "Limits"),
        .target(name: "GeoIO", dependencies: ["CGDAL"], swiftSettings: optimisedInDebug),
        // Our own C kernels (per-ISA loops, the libgomp bridge), -O2 in debug builds too.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),
        .target(name: "SegCore", dependencies: ["CBLAS", "CDNNL", "CKernels", "Limits"], swiftSettings: optimisedInDebug),
        // GeoIO, SegCore, Tiling and Pipeline are optimised in debug builds too: their loops run over every pixel and
        // channel, and unoptimised (SIMD) code is 3–50× slower, which made the tests on a 4096²
        // mosaic take minutes. Tests then check the code users run.
        .target(name: "Tiling", dependencies: ["Limits"], swiftSettings: optimisedInDebug),
        .target(name: "Pipeline", dependencies: ["GeoIO", "Tiling", "SegCore", "Limits", "Yams"],
                swiftSettings: optimisedInDebug),
        .target(
            name: "Service",
            dependencies: [
                "Pipeline", "GeoIO", "Tiling", "Limits",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["openapi.yaml"]
        ),
        .executableTarget(
            name: "aerialseg",
            dependencies: [
                "Pipeline", "Service",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "GeoIOTests", dependencies: ["GeoIO", "TestSupport"]),
        .testTarget(name: "SegCoreTests", dependencies: ["SegCore", "Limits", "TestSupport"]),
        .testTarget(name: "TilingTests", dependencies: ["Tiling"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "GeoIO", "SegCore", "Tiling", "Limits", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["aerialseg", "GeoIO", "TestSupport"]),
        .testTarget(
            name: "ServiceTests",
            dependencies: ["aerialseg", "Service", "TestSupport", "Yams", .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

/// `-O` for the hot loops of a target in `swift build`/`swift test` (debug) as well.
var optimisedInDebug: [SwiftSetting] { [.unsafeFlags(["-O"], .when(configuration: .debug))] }
