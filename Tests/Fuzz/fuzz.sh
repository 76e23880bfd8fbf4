#!/usr/bin/env bash
# Builds a libFuzzer target and runs it.
#   Tests/Fuzz/fuzz.sh [TARGET] [SECONDS] [CORPUS_DIR]
# TARGET is one of
#   http1      the HTTP/1 request and response parsers (the default)
#   handshake  the handshake decoder: the agent's hello and the relay's answer
#   router     the host router: Host/:authority and port to tunnel, aliases included
#   all        each of them in turn, SECONDS each
# The target's own sources are compiled with -sanitize=fuzzer,address (the coverage
# libFuzzer steers by); what they import (SwiftNIO, and for handshake and router the
# Pinhole modules below them) is linked from the debug build: `swift build` first.
# 30 s by default; longer runs: give more seconds and a corpus directory to keep what
# it finds (crashes go to ./crash-*), e.g. Tests/Fuzz/fuzz.sh router 3600 /tmp/router-corpus.
# Seeds: Tests/Fuzz/seeds/TARGET.
set -euo pipefail
case "${1:-}" in
    http1 | handshake | router | all) target="$1"; shift ;;
    *) target=http1 ;;
esac
seconds="${1:-30}"
corpus="${2:-}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/.build/debug"
[ -d "$build/NIOCore.build" ] || { echo "build the package first: swift build" >&2; exit 1; }
if [ "$target" = all ]; then
    [ -z "$corpus" ] || { echo "all takes no corpus directory; run the targets one by one to keep one" >&2; exit 1; }
    for each in http1 handshake router; do "$0" "$each" "$seconds"; done
    exit 0
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cd "$root"

# What SwiftNIO needs; the Pinhole modules each target links come after.
modules=(NIOCore NIOHTTP1 NIOConcurrencyHelpers _NIODataStructures _NIOBase64 CNIOLinux CNIOLLHTTP Atomics
    _AtomicsShims CNIOAtomics DequeModule OrderedCollections InternalCollectionsUtilities ContainersPreview
    BasicContainers)
posix=(NIOPosix CNIOPosix NIOEmbedded _NIOConcurrency Logging)
libraries=()
case "$target" in
    http1)
        sources=(
            Sources/PinholeCore/HTTP/HTTP1Syntax.swift Sources/PinholeCore/HTTP/HTTP1BodyReader.swift
            Sources/PinholeCore/HTTP/ProxyHeads.swift Sources/PinholeCore/HTTP/HeadLimits.swift
            Sources/PinholeCore/HTTP/ExchangeError.swift Sources/PinholeCore/Public/HTTP1RequestParser.swift
            Sources/PinholeCore/Target/HTTP1ResponseParser.swift Sources/PinholeCore/Public/InFlightLimits.swift
            Sources/PinholeCore/Public/AddressGroup.swift Tests/Fuzz/HTTP1ParsersFuzz.swift
        )
        ;;
    handshake)
        # TunnelProtocol's types, compiled here, and the checks a hello goes through from PinholeCore.
        sources=(Sources/PinholeTunnel/TunnelProtocol.swift Sources/PinholeTunnel/ServiceSharing.swift
            Tests/Fuzz/HandshakeFuzz.swift)
        modules+=("${posix[@]}" PinholeCore)
        ;;
    router)
        # The relay's module, compiled here (the registry and router are internal to it).
        sources=(Sources/PinholeRelay/*.swift Tests/Fuzz/HostRouterFuzz.swift)
        modules+=("${posix[@]}" NIOTLS PinholeCore PinholeTLS PinholeHTTP2 PinholeTunnel)
        libraries=(-lssl -lcrypto -lnghttp2)
        ;;
esac
objects=()
for module in "${modules[@]}"; do
    [ -d "$build/$module.build" ] || continue
    # A folder kept from earlier builds may still hold objects of sources since moved or
    # removed: where the module's output map names objects that exist, only those.
    while IFS= read -r object; do objects+=("$object"); done < <(python3 - "$build/$module.build" <<'PY'
import json, os, pathlib, sys
folder = pathlib.Path(sys.argv[1])
found = sorted(str(path) for path in folder.rglob("*.o"))
try:
    entries = json.load(open(folder / "output-file-map.json")).values()
    listed = {os.path.realpath(e["object"]) for e in entries if "object" in e}
except OSError:
    listed = set()
kept = [path for path in found if os.path.realpath(path) in listed]
print("\n".join(kept or found))
PY
    )
done
# The C modules imported on the way, by the module maps SwiftPM made for them or ours.
maps=()
for map in "$build"/CNIO*.build/module.modulemap "$root"/.build/checkouts/swift-nio/Sources/CNIO*/include/module.modulemap \
    "$root"/.build/checkouts/swift-atomics/Sources/_AtomicsShims/include/module.modulemap \
    "$root"/Sources/COpenSSL/module.modulemap "$root"/Sources/CNghttp2/module.modulemap; do
    [ -f "$map" ] && maps+=(-Xcc "-fmodule-map-file=$map")
done
swiftc -sanitize=fuzzer,address -parse-as-library -module-name PinholeFuzz -O -g \
    -I "$build/Modules" "${maps[@]}" \
    "${sources[@]}" "${objects[@]}" "${libraries[@]}" -o "$out/fuzz-$target" 2>&1 |
    grep -v "Cannot export local symbol" || true
[ -x "$out/fuzz-$target" ] || { echo "the $target fuzz target did not build" >&2; exit 1; }
# The first corpus directory receives what the run finds; the seeds are only read.
mkdir -p "${corpus:=$out/corpus}"
dictionary=()
[ -f "$root/Tests/Fuzz/$target.dict" ] && dictionary=(-dict="$root/Tests/Fuzz/$target.dict")
echo "fuzzing $target for $seconds s"
"$out/fuzz-$target" -max_total_time="$seconds" -max_len=4096 -timeout=5 "${dictionary[@]}" "$corpus" \
    "$root/Tests/Fuzz/seeds/$target"
