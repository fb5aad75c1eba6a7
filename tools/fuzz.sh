#!/usr/bin/env bash
# Runs every fuzz target under fuzz/ for a bounded time (cargo fuzz, nightly).
#
#   tools/fuzz.sh [SECONDS_PER_TARGET]      # default 30
#
# Installs cargo-fuzz if missing. Without a sanitizer (`-s none`): ecrd forbids
# unsafe code, so what the fuzzer looks for is panics, overflows (debug
# assertions are on) and runaway time or memory on hostile input. A crash
# leaves its input in fuzz/artifacts/<target>/; add it to the target's
# corpus (fuzz/corpus/<target>/) as a regression seed once fixed. The corpus
# that a run grows is not kept: only the committed seeds are.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "tools/fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 1
fi

TARGETS=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^ecrd-fuzz$')
cargo +nightly fuzz build -s none
for target in ${TARGETS}; do
    work=$(mktemp -d)
    cp -r "fuzz/corpus/${target}/." "${work}/"
    echo "--- fuzz ${target} (${SECONDS_PER_TARGET} s)"
    log="${work}.log"
    status=0
    cargo +nightly fuzz run -s none "${target}" "${work}" -- \
        -max_total_time="${SECONDS_PER_TARGET}" -rss_limit_mb=2048 -timeout=10 \
        -max_len=65536 -print_final_stats=1 >"${log}" 2>&1 || status=$?
    # The fuzzer's progress lines are many; keep the summary, or all on failure.
    if [ "${status}" -eq 0 ]; then
        grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "${log}" || true
    else
        tail -n 60 "${log}"
    fi
    rm -f "${log}"
    rm -rf "${work}"
    if [ "${status}" -ne 0 ]; then
        echo "tools/fuzz.sh: ${target} failed (input in fuzz/artifacts/${target}/)" >&2
        exit "${status}"
    fi
done
