#!/usr/bin/env bash
# Builds (once) an aarch64 Python 3.11 from Debian bookworm arm64 packages and one environment per
# variant, all run by QEMU user emulation. Nothing machine-wide: no root needed, no binfmt_misc,
# no apt-get install. Everything lands under $ARM64_DIR (git-ignored), with stamp files.
#
#   tools/arm64/build.sh tflite-runtime|litert
#
# Prints the path of the variant's interpreter (a wrapper script that re-enters the emulator,
# so subprocesses started with sys.executable run on aarch64 too) as its last line.
set -euo pipefail

variant=${1:?usage: tools/arm64/build.sh tflite-runtime|litert}
repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/tools/arm64"
dir=$(mkdir -p "${ARM64_DIR:-$repo/.arm64}" && cd "${ARM64_DIR:-$repo/.arm64}" && pwd)
root="$dir/root"
qemu="$dir/qemu/usr/bin/qemu-aarch64-static"

fail() { echo "tools/arm64/build.sh: $*" >&2; exit 1; }
log() { echo "[arm64 $(date -u +%H:%M:%S)] $*" >&2; }

case "$variant" in
    tflite-runtime) extras="tflite-runtime,onnx" ;;
    litert) extras="litert,onnx" ;;
    *) fail "unknown variant '$variant': expected tflite-runtime or litert" ;;
esac
command -v apt-get >/dev/null && command -v dpkg >/dev/null \
    || fail "needs apt-get and dpkg (a Debian or Ubuntu host) to fetch the arm64 packages"

# apt with private lists, cache, sources and status: reads nothing and writes nothing outside $dir/apt
apt_private() {
    local arch=$1; shift
    apt-get -q -oAPT::Architecture="$arch" -oAPT::Architectures="$arch" \
        -oDir::State::Lists="$dir/apt/lists" -oDir::Cache="$dir/apt/cache" \
        -oDir::Etc::SourceList="$here/sources.list" -oDir::Etc::SourceParts="$dir/apt/empty" \
        -oDir::Etc::Preferences="$dir/apt/empty/preferences" -oDir::Etc::PreferencesParts="$dir/apt/empty" \
        -oDir::State::status="$dir/apt/status" -oDebug::NoLocking=1 \
        -oAPT::Sandbox::User="$(id -un)" "$@"
}

build_root() {
    local stamp="$dir/root.stamp" debs="$dir/apt/debs" packages
    [[ -f $stamp && $stamp -nt $here/packages.txt && $stamp -nt $here/sources.list && $stamp -nt $here/cpuinfo ]] \
        && return
    log "fetching Debian arm64 packages and qemu-user-static (amd64) into $dir"
    rm -rf "$root" "$dir/qemu" "$debs" "$stamp"
    mkdir -p "$dir/apt/empty" "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$debs" "$root" "$dir/qemu"
    : > "$dir/apt/status"
    apt_private arm64 update >&2 || fail "apt-get update (private lists) failed: is deb.debian.org reachable?"
    packages=$(grep -v '^#' "$here/packages.txt" | tr -s ' \n' ' ')
    (cd "$debs" && apt_private arm64 download $packages >&2) || fail "apt-get download of the arm64 packages failed"
    (cd "$dir/qemu" && apt_private amd64 download qemu-user-static >&2) || fail "apt-get download qemu-user-static failed"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root"; done
    dpkg -x "$dir"/qemu/qemu-user-static_*.deb "$dir/qemu"
    [[ -x $qemu && -x $root/usr/bin/python3.11 ]] || fail "unpacked packages lack qemu-aarch64-static or python3.11"
    # QEMU 7.2 shows an aarch64 guest the host's x86 /proc/cpuinfo; -L makes the guest read this one instead
    # (a Raspberry Pi 4's Cortex-A72, the CPU the wrapper emulates). onnxruntime >= 1.28 segfaults without it.
    mkdir -p "$root/proc" && cp "$here/cpuinfo" "$root/proc/cpuinfo"
    [[ $("$qemu" -cpu cortex-a72 -L "$root" "$root/usr/bin/python3.11" -c 'import platform; print(platform.machine())') == aarch64 ]] \
        || fail "the emulated python3.11 does not run or is not aarch64"
    touch "$stamp"
}

# A venv whose bin/python is a shell script: sys.executable is then the wrapper, so
# `subprocess.run([sys.executable, ...])` re-enters the emulator instead of failing to exec an arm64 binary.
make_venv() {
    local venv=$1
    rm -rf "$venv"
    mkdir -p "$venv/bin" "$venv/lib/python3.11/site-packages"
    printf "home = $root/usr/bin\ninclude-system-site-packages = false\nversion = 3.11\n" > "$venv/pyvenv.cfg"
    cat > "$venv/bin/python" <<WRAPPER
#!/bin/sh
# aarch64 Python 3.11 on an emulated Cortex-A72 (Raspberry Pi 4), QEMU user mode (tools/arm64/build.sh)
exec "$qemu" -cpu cortex-a72 -L "$root" -0 "\$0" "$root/usr/bin/python3.11" "\$@"
WRAPPER
    chmod +x "$venv/bin/python"
    ln -s python "$venv/bin/python3"
    ln -s python "$venv/bin/python3.11"
}

build_variant() {
    local venv="$dir/$variant" stamp="$dir/$variant/.installed" pip_wheel
    [[ -f $stamp && $stamp -nt $repo/pyproject.toml && $stamp -nt $dir/root.stamp ]] && return
    log "installing edgecv[$extras] into $venv (aarch64 wheels, pip runs emulated: minutes)"
    make_venv "$venv"
    pip_wheel=$(ls "$root"/usr/share/python-wheels/pip-*.whl)
    "$venv/bin/python" "$pip_wheel/pip" install --disable-pip-version-check -q --no-index "$pip_wheel" \
        || fail "bootstrapping pip from Debian's wheel failed"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q --no-compile --only-binary=:all: \
        -e "$repo[$extras]" 'pytest>=7.4' \
        || fail "pip could not install edgecv[$extras] from aarch64 wheels (see above)"
    touch "$stamp"
}

build_root
build_variant
echo "$dir/$variant/bin/python"
