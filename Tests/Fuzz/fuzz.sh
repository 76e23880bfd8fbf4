#!/usr/bin/env bash
# Builds a libFuzzer target for the HTTP/1 request and response parsers and runs it.
#   Tests/Fuzz/fuzz.sh [SECONDS] [CORPUS_DIR]
# The parsers' sources are compiled with -sanitize=fuzzer,address; SwiftNIO comes from
# the debug build (`swift build` first). 30 s by default; longer runs: give more
# seconds and a corpus directory to keep what it finds (crashes go to ./crash-*),
# e.g. Tests/Fuzz/fuzz.sh 3600 /tmp/http1-corpus. Seeds: Tests/Fuzz/seeds.
set -euo pipefail
seconds="${1:-30}"
corpus="${2:-}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/.build/debug"
[ -d "$build/NIOCore.build" ] || { echo "build SwiftNIO first: swift build" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
sources=(
    Sources/PinholeCore/HTTP/HTTP1Syntax.swift Sources/PinholeCore/HTTP/HTTP1BodyReader.swift
    Sources/PinholeCore/HTTP/ProxyHeads.swift Sources/PinholeCore/HTTP/HeadLimits.swift
    Sources/PinholeCore/HTTP/ExchangeError.swift Sources/PinholeCore/Public/HTTP1RequestParser.swift
    Sources/PinholeCore/Target/HTTP1ResponseParser.swift Sources/PinholeCore/Public/InFlightLimits.swift
    Sources/PinholeCore/Public/AddressGroup.swift Tests/Fuzz/HTTP1ParsersFuzz.swift
)
objects=()
for module in NIOCore NIOHTTP1 NIOConcurrencyHelpers _NIODataStructures _NIOBase64 CNIOLinux CNIOLLHTTP \
    Atomics _AtomicsShims CNIOAtomics DequeModule OrderedCollections InternalCollectionsUtilities ContainersPreview \
    BasicContainers; do
    [ -d "$build/$module.build" ] || continue
    while IFS= read -r object; do objects+=("$object"); done < <(find "$build/$module.build" -name '*.o')
done
cd "$root"
# The C modules SwiftNIO imports, by the module maps SwiftPM made for them.
maps=()
for map in "$build"/CNIO*.build/module.modulemap "$root"/.build/checkouts/swift-atomics/Sources/_AtomicsShims/include/module.modulemap; do
    [ -f "$map" ] && maps+=(-Xcc "-fmodule-map-file=$map")
done
swiftc -sanitize=fuzzer,address -parse-as-library -module-name PinholeFuzz -O -g \
    -I "$build/Modules" "${maps[@]}" \
    "${sources[@]}" "${objects[@]}" -o "$out/fuzz-http1" 2>&1 | grep -v "Cannot export local symbol" || true
[ -x "$out/fuzz-http1" ] || { echo "the fuzz target did not build" >&2; exit 1; }
# The first corpus directory receives what the run finds; the seeds are only read.
mkdir -p "${corpus:=$out/corpus}"
"$out/fuzz-http1" -max_total_time="$seconds" -max_len=4096 -timeout=5 "$corpus" "$root/Tests/Fuzz/seeds"
