#!/usr/bin/env bash
# Runs the device-marked tests on aarch64 (QEMU user emulation) in one variant, building it first if needed.
#
#   tools/arm64/test.sh tflite-runtime|litert [--smoke] [more pytest args]
#
# --smoke runs only the tests listed in tools/arm64/smoke.txt (one per real fixture family and runtime).
# Like `make test-device` (EDGECV_LEAN_ENV=1, tests/conftest.py), a skipped or empty run fails.
set -euo pipefail

variant=${1:?usage: tools/arm64/test.sh tflite-runtime|litert [--smoke] [pytest args]}
shift
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=$("$repo/tools/arm64/build.sh" "$variant" | tail -n 1)
selection=()
if [[ ${1:-} == --smoke ]]; then
    shift
    mapfile -t selection < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$repo/tools/arm64/smoke.txt" | grep .)
fi
cd "$repo"
echo "arm64 run: load: $(uptime)"
EDGECV_LEAN_ENV=1 EDGECV_EMULATED=qemu-aarch64 EDGECV_ARM64_VARIANT=$variant exec "$python" tools/arm64/run_tests.py -q -m device -p no:cacheprovider "${selection[@]}" "$@"
