#!/bin/sh
# Builds the libFuzzer targets of fuzz/targets/*.swift into .build/fuzz/bin/fuzz-<target>.
#
#   fuzz/build.sh [TARGET…]        (default: every target)
#
# 1. SwiftPM compiles the package's modules (DropboxAgent and everything it depends on) with
#    `--sanitize fuzzer --sanitize address` into its own build directory, .build/fuzz — the normal
#    .build/debug and `swift build`/`swift test` are untouched, and no fuzz code is in Package.swift.
# 2. swiftc compiles each target (`-parse-as-library`, `@_cdecl("LLVMFuzzerTestOneInput")`, `@testable import`
#    of the module it fuzzes) with `-sanitize=fuzzer,address` and links it with those objects; libFuzzer
#    provides `main`, so the agent's own `main` (DropboxAgentCommand.swift.o) is renamed in a copy.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=$ROOT/.build/fuzz
# SwiftPM's `--sanitize fuzzer` links libFuzzer but (Swift 6.3, batch mode) compiles the modules without
# coverage instrumentation: ask for it explicitly, with libFuzzer's default kinds.
COVERAGE=edge,trace-cmp,inline-8bit-counters,pc-table
# FUZZ_TARGETS_ONLY=1: only the targets are compiled again, with the package's objects of the last build (a
# change to fuzz/targets/*.swift alone then costs seconds, not the package's 10 minutes on a loaded machine).
if [ "${FUZZ_TARGETS_ONLY:-0}" != 1 ]; then
    swift build --build-path "$BUILD" --sanitize fuzzer --sanitize address -Xswiftc -sanitize-coverage=$COVERAGE \
        --target DropboxAgent >&2
fi
DEBUG=$BUILD/x86_64-unknown-linux-gnu/debug
[ -d "$DEBUG" ] || DEBUG=$(cd "$BUILD/debug" && pwd -P)
mkdir -p "$BUILD/bin" "$BUILD/link"

# Every object of DropboxAgent and its dependencies; not tests, tools, benches or other executables.
objects=""
for dir in "$DEBUG"/*.build; do
    name=$(basename "$dir" .build)
    case $name in
        *Tests|*TestKit|*-tool|generate_*|DeliveryBench|dropbox_agentPackage*) continue ;;
    esac
    for o in "$dir"/*.o; do
        [ -e "$o" ] || continue
        if [ "$(basename "$o")" = DropboxAgentCommand.swift.o ]; then
            objcopy --redefine-sym main=dropbox_agent_main "$o" "$BUILD/link/DropboxAgentCommand.swift.o"
            o=$BUILD/link/DropboxAgentCommand.swift.o
        fi
        objects="$objects $o"
    done
done

# The C modules' maps and headers, as SwiftPM passes them to the modules that import them.
CFLAGS="-Xcc -fmodule-map-file=$ROOT/Sources/CLibXML2/module.modulemap -I/usr/include/libxml2
 -Xcc -fmodule-map-file=$ROOT/Sources/CArchive/module.modulemap
 -Xcc -fmodule-map-file=$ROOT/Sources/CCurl/module.modulemap
 -Xcc -fmodule-map-file=$ROOT/Sources/CSQLite/module.modulemap
 -Xcc -fmodule-map-file=$ROOT/Sources/CDeflate/module.modulemap
 -Xcc -fmodule-map-file=$ROOT/Sources/CZlib/module.modulemap
 -Xcc -fmodule-map-file=$ROOT/Sources/CCrypto/module.modulemap
 -Xcc -fmodule-map-file=$ROOT/Sources/CFileIO/module.modulemap
 -Xcc -fmodule-map-file=$BUILD/checkouts/swift-system/Sources/CSystem/include/module.modulemap
 -Xcc -I -Xcc $BUILD/checkouts/swift-system/Sources/CSystem/include
 -Xcc -fmodule-map-file=$BUILD/checkouts/swift-subprocess/Sources/_SubprocessCShims/include/module.modulemap
 -Xcc -I -Xcc $BUILD/checkouts/swift-subprocess/Sources/_SubprocessCShims/include"

# lld when the toolchain has it: gold warns about every ASan check symbol it cannot export.
LINKER=""; command -v ld.lld >/dev/null 2>&1 && LINKER=-use-ld=lld

targets=${*:-$(cd fuzz/targets && ls *.swift | sed 's/\.swift$//')}
for t in $targets; do
    echo "fuzz/build.sh: fuzz-$t" >&2
    # shellcheck disable=SC2086
    swiftc -sanitize=fuzzer,address -parse-as-library -swift-version 6 -g -Onone $LINKER \
        -module-name "Fuzz_$t" -I "$DEBUG/Modules" $CFLAGS \
        -module-cache-path "$DEBUG/ModuleCache" \
        "fuzz/targets/$t.swift" $objects \
        -lsqlite3 -lxml2 -lcurl -larchive -ldeflate -lcrypto \
        -o "$BUILD/bin/fuzz-$t.new"
    mv -f "$BUILD/bin/fuzz-$t.new" "$BUILD/bin/fuzz-$t"
done
echo "fuzz/build.sh: binaries in $BUILD/bin" >&2
