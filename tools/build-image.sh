#!/usr/bin/env bash
# Builds ecrd's container image offline: a statically linked ecrd, then the
# top-level Dockerfile (`FROM scratch`) over a staged build context.
#
#   tools/build-image.sh [--binary-only] [IMAGE_TAG]     (default tag: ecrd:latest)
#
# --binary-only builds and checks the static binary but not the image (for
# machines without docker); the binary's path is printed last either way.
# With ECRD_STATIC_BIN set, that binary is used as is (nothing is compiled).
# Honours CARGO_TARGET_DIR and DOCKER_HOST. Builds with the classic builder
# when buildx is not installed (the Dockerfile needs nothing from BuildKit).
set -euo pipefail

cd "$(dirname "$0")/.."

BINARY_ONLY=0
if [ "${1:-}" = "--binary-only" ]; then
    BINARY_ONLY=1
    shift
fi
TAG="${1:-ecrd:latest}"
TARGET=x86_64-unknown-linux-gnu
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# An explicit --target keeps +crt-static away from build scripts and
# proc-macros (which must stay dynamic to be loaded by rustc).
if [ -n "${ECRD_STATIC_BIN:-}" ]; then
    BIN="${ECRD_STATIC_BIN}"
else
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --profile dist --target "${TARGET}" --bin ecrd
    BIN="${TARGET_DIR}/${TARGET}/dist/ecrd"
fi

# A dynamic binary would fail inside a scratch image with a bare "no such
# file or directory" (no loader there): refuse it here instead. readelf
# comes with binutils, which the Rust linker needs anyway.
if readelf --program-headers --dynamic "${BIN}" | grep -qE 'program interpreter|\(NEEDED\)'; then
    echo "build-image: ${BIN} is not statically linked:" >&2
    readelf --program-headers --dynamic "${BIN}" | grep -E 'interpreter|NEEDED' >&2
    exit 1
fi

if [ "${BINARY_ONLY}" -eq 0 ]; then
    CONTEXT="$(mktemp -d "${TMPDIR:-/tmp}/ecrd-image.XXXXXX")"
    trap 'rm -rf "${CONTEXT}"' EXIT
    cp Dockerfile "${CONTEXT}/Dockerfile"
    cp "${BIN}" "${CONTEXT}/ecrd"
    mkdir "${CONTEXT}/empty"
    if docker buildx version >/dev/null 2>&1; then
        docker build -q -t "${TAG}" "${CONTEXT}" >&2
    else
        DOCKER_BUILDKIT=0 docker build -q -t "${TAG}" "${CONTEXT}" >&2
    fi
    echo "build-image: built ${TAG}" >&2
fi
echo "${BIN}"
