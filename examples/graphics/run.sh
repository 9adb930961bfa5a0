#!/usr/bin/env bash
# The graphics example end to end, headless: a "host" tree from this
# machine's graphics stack, a program "runtime" whose libexpat.so.1 Mesa
# cannot use, the example's shims, then a picture rendered through the
# libEGL and libGLESv2 capsules (EGL's surfaceless platform, llvmpipe, no X
# server) into $GRAPHICS_DIR/picture.png. DEMO_GLIBC=trixie|sid runs the
# programs under that glibc (see examples/demo/run.sh).
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
