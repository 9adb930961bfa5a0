#!/usr/bin/env bash
# Installs what building and testing capsule needs on a fresh Debian 12
# machine: system packages (as root), then a project-local venv (.venv) with
# capsule itself installed from this checkout. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
    gcc g++ libc6-dev pkg-config ninja-build binutils   # g++: the C++ fixtures (vtables, typeinfo)
    gcc-multilib   # gcc -m32 for cross/i386-linux-gnu.ini and the 32-bit demo, graphics and bench
                   # programs (amd64 packages only; their i386 libraries are unpacked Debian
                   # packages, scripts/arch_tree.py: no i386 architecture, nothing installed)
    # CAPSULE_TEST_ARCH=i386 (scripts/test.sh's i386 phase): g++ -m32 for the C++
    # fixtures; the 32-bit ASan and UBSan runtimes (gcc-multilib pulls them in too)
    g++-multilib lib32asan8 lib32ubsan1
    # cross/aarch64-linux-gnu.ini: clang (below) targets aarch64 (Debian 12's
    # gcc-aarch64-linux-gnu conflicts with gcc-multilib), binutils links, the
    # cross libc is the sysroot, qemu-user runs the programs.
    binutils-aarch64-linux-gnu libc6-dev-arm64-cross libgcc-12-dev-arm64-cross qemu-user
    libstdc++-12-dev-arm64-cross   # the C++ fixtures (exceptions across the boundary)
    zlib1g-dev libexpat1-dev   # the real libraries the tests shim
    meson python3-pyelftools   # Debian's own Meson 1.0.1 and what the module needs there
    python3 python3-venv       # Debian's interpreter, which that Meson runs on
    clang libclang-rt-14-dev   # libFuzzer harnesses (fuzz/), with ASan and UBSan
    valgrind util-linux        # memcheck runs; setpriv for the setuid test
    gdb                        # test_debugger: attach, gcore, cores of a capsule process
    strace                     # the benchmarks count system calls
    # Allocators a program may preload: the capsule must use them too.
    libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0
    # The graphics tests: an X server, the programs, Mesa's GLX/EGL vendor
    # libraries, DRI drivers and lavapipe (explicit: --no-install-recommends
    # would leave glvnd without a vendor), headers for the example's programs.
    xvfb xauth mesa-utils vulkan-tools
    libglx-mesa0 libegl-mesa0 libgl1-mesa-dri libgbm1 mesa-vulkan-drivers libvulkan1
    libgl-dev libegl-dev libgles-dev libx11-dev libsdl2-dev   # libSDL2 links libgbm.so.1
    bubblewrap   # the container example and its test (apt-get download, dpkg-deb: always there)
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bootstrap: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r requirements-test.txt
# Installed, not editable: the import hook (.pth) and the bundled sources land
# exactly as a user's `pip install .` puts them.
.venv/bin/python -m pip install -q --force-reinstall --no-deps .
