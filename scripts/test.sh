#!/usr/bin/env bash
# `make test`: every phase under a one-line header, then the time each took.
#
#   1. tools     npm's DynamoDB Local and the published gRPC-web/Connect clients; the
#                Python tools (cfn-lint, SAM CLI, cargo-lambda, zig, moto; checkov apart);
#                qemu-user and the arm64 C library; the arm64 Rust std
#   2. template  cfn-lint and checkov on template.yaml
#   3. build     `sam build` (the arm64 bootstraps that ship, in target/sam) beside the
#                test binaries (in target/): two cargo runs on separate target folders,
#                so each fills the cores the other leaves idle while it links
#   4. tests     DynamoDB Local and moto on free ports around `cargo nextest run`
#                (every test of every binary side by side: most of them wait, on
#                DynamoDB, on timeouts, on qemu); the runtime-level tests run the
#                bootstraps of step 3 under qemu-user
#
# The last line is the tests' count, as "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

timings=()
phase_name=""
phase_started=0
phase() {
    finish_phase
    phase_name=$1
    phase_started=$SECONDS
    printf '\n==> %s\n' "$phase_name"
}
finish_phase() {
    if [ -n "$phase_name" ]; then
        timings+=("$(printf '  %4d s  %s' $((SECONDS - phase_started)) "$phase_name")")
        phase_name=""
    fi
}

phase "tools: npm packages, Python tools, checkov, qemu-user, arm64 std"
make --no-print-directory deps tools checkov oauth-clients emulator arm64-std

phase "template: cfn-lint, checkov"
make --no-print-directory template-lint

phase "build: sam build (arm64) beside the test binaries (x86_64)"
sam_log=$(mktemp)
make --no-print-directory sam-build >"$sam_log" 2>&1 &
sam_pid=$!
cargo test --no-run --lib --tests --quiet || { kill $sam_pid 2>/dev/null; exit 1; }
if ! wait $sam_pid; then
    cat "$sam_log" >&2
    echo "sam build failed" >&2
    exit 1
fi
grep -E 'Build Succeeded|bootstrap' "$sam_log"
rm -f "$sam_log"

phase "tests: DynamoDB Local + moto, cargo nextest"
test_log=$(mktemp)
status=0
# The fault and deadline tests mostly wait (on timeouts, on the deadline): more threads
# than cores lets them wait side by side.
scripts/local-services.sh exec -- cargo nextest run --lib --tests --test-threads 8 --no-fail-fast 2>&1 | tee "$test_log" || status=$?
finish_phase

printf '\n==> make test took %d s\n' "$SECONDS"
printf '%s\n' "${timings[@]}"
# nextest's closing line: "Summary [ 39.9s] 171 tests run: 170 passed, 1 failed, 0 skipped".
summary=$(grep -E '^ *Summary \[' "$test_log" | tail -n 1)
passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
failed=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
rm -f "$test_log"
echo
echo "tests: $passed passed, $failed failed"
exit "$status"
