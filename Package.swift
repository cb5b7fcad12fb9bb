// swift-tools-version: 6.1
import PackageDescription

/// Settings shared by every Swift target: Swift 6 language mode plus the upcoming features the
/// model codebases (swift-subprocess, hummingbird, swift-log) enable. `InternalImportsByDefault`
/// keeps the C modules from leaking into client modules (see the libxml2/ICU pitfall).
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "dropbox-agent",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "dropbox-agent", targets: ["DropboxAgent"]),
        .library(name: "InotifyWatcher", targets: ["InotifyWatcher"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // C libraries: a modulemap and a header of `static inline` shims each, nothing else.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CFileIO"),

        /// inotify + rescan + polling; knows nothing of ALMA.
        .target(name: "InotifyWatcher", swiftSettings: strictSettings),
        /// A thin, safe wrapper over libsqlite3 used by the journal and the catalogue.
        .target(name: "SQLiteDatabase", dependencies: ["CSQLite"], swiftSettings: strictSettings),
        /// Moving bytes: archive-store retrieval (libcurl), HTTP documents and directory indexes (libxml2's
        /// HTML parser), the file cache, safe tar extraction and creation (libarchive), publishing to a
        /// download area, SMTP and outbox mail.
        .target(
            name: "Delivery",
            dependencies: [
                "CCurl", "CArchive", "CLibXML2", "CDeflate", "CCrypto", "CFileIO", "CZlib",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        /// The ALMA domain: catalogue, sessions, manifest, PPR, the six restore steps, CASA runners.
        .target(
            name: "RestoreSteps",
            dependencies: [
                "CLibXML2", "CFileIO", "SQLiteDatabase", "Delivery",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
        /// The daemon and its command line: config, spool intake, claims, journal, status files.
        .executableTarget(
            name: "DropboxAgent",
            dependencies: [
                "InotifyWatcher", "RestoreSteps", "Delivery", "SQLiteDatabase",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings,
            // Release builds carry the Swift runtime and FoundationEssentials inside the binary (as
            // `--static-swift-stdlib` does for the .deb): no shared Swift libraries mapped at run time (issue 15).
            // The static FoundationEssentials needs its two helper archives, which only full Foundation's autolink
            // entries would name.
            // Linked by lld with packed relative relocations (DT_RELR, glibc >= 2.36: Debian 12): a PIE's 1.1 MB of
            // `.rela.dyn`, read at every start, becomes 10 KB (idle VmRSS 25.0 -> 24.1 MiB); gold cannot do it.
            linkerSettings: [
                .unsafeFlags(
                    [
                        "-static-stdlib", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-l_FoundationCShims",
                        "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                    ],
                    .when(platforms: [.linux], configuration: .release))
            ]
        ),

        /// Benchmarks of the Delivery hot paths (fetch+verify, extraction, cache hits); run by bench/*.sh.
        .executableTarget(
            name: "DeliveryBench", dependencies: ["Delivery", "CZlib", "CDeflate", "CCrypto"],
            path: "Benchmarks/DeliveryBench",
            swiftSettings: strictSettings
        ),

        /// What every test target shares (as swift-service-lifecycle's ServiceLifecycleTestKit): the unit /
        /// integration / endToEnd tags, per-test temporary directories, polling with a deadline.
        .target(name: "DropboxTestKit", path: "Tests/DropboxTestKit", swiftSettings: strictSettings),

        .testTarget(
            name: "InotifyWatcherTests", dependencies: ["InotifyWatcher", "DropboxTestKit"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SQLiteDatabaseTests", dependencies: ["SQLiteDatabase", "DropboxTestKit"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DeliveryTests", dependencies: ["Delivery", "DropboxTestKit"], swiftSettings: strictSettings),
        .testTarget(
            name: "RestoreStepsTests",
            dependencies: [
                "RestoreSteps", "Delivery", "DropboxTestKit", .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Golden", "Fixtures"], swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DropboxAgentTests",
            dependencies: ["DropboxAgent", "RestoreSteps", "Delivery", "InotifyWatcher", "DropboxTestKit"],
            swiftSettings: strictSettings
        ),
    ]
)
