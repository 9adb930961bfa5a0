#!/usr/bin/env bash
# The graphics example end to end, headless: a "host" tree from this
# machine's graphics stack, a program "runtime" whose libexpat.so.1 Mesa
# cannot use, the example's shims, then a picture rendered through the
# libEGL and libGLESv2 capsules (EGL's surfaceless platform, llvmpipe, no X
# server) into $GRAPHICS_DIR/picture.png. Then the same 32-bit: egl_png
# built -m32 (cross/i386-linux-gnu.ini) through i386 capsules on i386 Mesa,
# unpacked from Debian's packages (graphics_trees.py --arch i386), into
# picture-i386.png; that part says why it is skipped when it cannot run.
# DEMO_GLIBC=trixie|sid runs the programs under that glibc (see
# examples/demo/run.sh; the 32-bit part is then skipped).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${GRAPHICS_DIR:-$repo/build-graphics}
# examples/demo/run.sh and the test suite bootstrap once themselves.
[ -n "${CAPSULE_SKIP_BOOTSTRAP:-}" ] || bash "$repo/scripts/bootstrap.sh"
venv=$repo/.venv/bin
launch=()
[ -z "${DEMO_GLIBC:-}" ] || launch=(python3 "$repo/scripts/glibc_tree.py" "$DEMO_GLIBC" --run)

rm -rf "$work" && mkdir -p "$work"
"$venv/python" "$repo/examples/graphics/graphics_trees.py" host "$work/host"
"$venv/python" "$repo/examples/graphics/graphics_trees.py" runtime "$work/runtime"
"$venv/meson" setup "$work/build" "$repo/examples/graphics" -Dhost="$work/host" >/dev/null
"$venv/meson" compile -C "$work/build" >/dev/null

picture=$work/picture.png
export DISPLAY=
echo "== without capsule, on the runtime (LD_LIBRARY_PATH=$work/runtime):"
if LD_LIBRARY_PATH=$work/runtime "${launch[@]}" "$work/build/egl_png" "$picture" 2>&1 | tail -n 1; then
    echo "unexpected: egl_png worked without capsule" >&2
    exit 1
fi
echo "== with the shims first (LD_LIBRARY_PATH=$work/build:$work/runtime):"
LD_LIBRARY_PATH=$work/build:$work/runtime "${launch[@]}" "$work/build/egl_png" "$picture"
echo "== where the capsule's code came from (capsule-shim ldd, some lines):"
LD_LIBRARY_PATH=$work/build:$work/runtime "$venv/capsule-shim" ldd -- \
    "${launch[@]}" "$work/build/egl_png" "$work/ldd.png" | grep -E "namespace|libEGL|swrast|LLVM|expat|OUTSIDE"

i386_picture() {
    local w32=$work/i386 picture32=$work/picture-i386.png
    mkdir -p "$w32"
    if ! "$venv/python" "$repo/examples/graphics/graphics_trees.py" host "$w32/host" --arch i386 \
            --machine-file "$w32/host.ini" 2>"$w32/trees.err"; then
        echo "== the 32-bit part skipped: $(tail -n 1 "$w32/trees.err")"
        return
    fi
    "$venv/python" "$repo/examples/graphics/graphics_trees.py" runtime "$w32/runtime" --arch i386 \
        --host "$w32/host"
    "$venv/meson" setup --cross-file "$repo/cross/i386-linux-gnu.ini" --cross-file "$w32/host.ini" \
        "$w32/build" "$repo/examples/graphics" -Dhost="$w32/host" >/dev/null
    "$venv/meson" compile -C "$w32/build" >/dev/null
    # This machine has no i386 graphics stack: without capsules the program
    # uses the host tree's, behind the runtime.
    local stack=(LD_LIBRARY_PATH="$w32/runtime:$w32/host/usr/lib/i386-linux-gnu:$w32/host/lib/i386-linux-gnu"
                 LIBGL_DRIVERS_PATH="$w32/host/usr/lib/i386-linux-gnu/dri"
                 __EGL_VENDOR_LIBRARY_DIRS="$w32/host/usr/share/glvnd/egl_vendor.d")
    echo "== 32-bit, without capsule, on the runtime (then the i386 host stack):"
    if env "${stack[@]}" "$w32/build/egl_png" "$picture32" 2>&1 | tail -n 1; then
        echo "unexpected: the 32-bit egl_png worked without capsule" >&2
        exit 1
    fi
    echo "== 32-bit, with the shims first (LD_LIBRARY_PATH=$w32/build:$w32/runtime):"
    LD_LIBRARY_PATH=$w32/build:$w32/runtime "$w32/build/egl_png" "$picture32"
    echo "== where the 32-bit capsule's code came from (capsule-shim ldd, some lines):"
    LD_LIBRARY_PATH=$w32/build:$w32/runtime "$venv/capsule-shim" ldd -- \
        "$w32/build/egl_png" "$w32/ldd.png" | grep -E "namespace|libEGL|swrast|LLVM|expat|OUTSIDE"
}

echo
echo "== the 32-bit part (i386): egl_png built -m32, through i386 capsules on i386 Mesa"
if [ -n "${DEMO_GLIBC:-}" ]; then
    blocker="DEMO_GLIBC=$DEMO_GLIBC is an x86_64 glibc; the 32-bit program needs i386's"
else
    blocker=$("$venv/python" "$repo/scripts/arch_tree.py" i386 --why-not)
fi
if [ -n "$blocker" ]; then
    echo "== the 32-bit part skipped: $blocker"
else
    i386_picture
fi
