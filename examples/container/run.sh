#!/usr/bin/env bash
# The container example end to end: a runtime unpacked from Debian packages
# (no Mesa, glvnd or Vulkan loader; zlib and expat Mesa cannot use), the
# graphics shims installed in its libdir with prefix /run/host, and a
# bubblewrap sandbox with the host's root at /run/host. Runs glxinfo,
# eglinfo, vulkaninfo, egl_png and an SDL2 GL program inside, against an
# Xvfb it starts (or $DISPLAY when set), and shows with capsule-shim ldd
# where the capsule's code came from. Work directory: $CONTAINER_DIR
# (default build-container).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${CONTAINER_DIR:-$repo/build-container}
[ -n "${CAPSULE_SKIP_BOOTSTRAP:-}" ] || bash "$repo/scripts/bootstrap.sh"
venv=$repo/.venv/bin
container() { "$venv/python" "$repo/examples/container/container.py" "$@"; }

mkdir -p "$work"
container setup "$work"
if [ -z "${DISPLAY:-}" ]; then
    exec {fd}<> <(:)
    Xvfb -displayfd "$fd" -screen 0 640x480x24 -nolisten tcp 2>/dev/null &
    xvfb=$!
    trap 'kill $xvfb' EXIT
    read -r -u "$fd" number
    export DISPLAY=:$number
fi

echo "== the host's Mesa without capsules, on the runtime's libraries:"
if container run "$work" --setenv LD_LIBRARY_PATH /lib/x86_64-linux-gnu:/run/host/usr/lib/x86_64-linux-gnu \
        --setenv LIBGL_DRIVERS_PATH /run/host/usr/lib/x86_64-linux-gnu/dri glxinfo -B 2>&1 | head -n 2; then
    :
fi
echo "== through the shims in the runtime's libdir:"
container run "$work" glxinfo -B | grep -E "^(display|OpenGL renderer)"
# (eglinfo's status counts the platforms without a device here: GBM, Wayland)
{ container run "$work" eglinfo 2>/dev/null || true; } | grep -E "^(X11|Surfaceless) platform|driver name"
container run "$work" vulkaninfo --summary 2>/dev/null | grep deviceName
DISPLAY= container run "$work" egl_png /out/picture.png
container run "$work" --setenv LD_BIND_NOW 1 sdl_gl
echo "== where the capsule's code came from (capsule-shim ldd --root, some lines):"
# shellcheck disable=SC2046
"$venv/capsule-shim" ldd --root "$work/root" -- $(container argv "$work") glxinfo -B | \
    grep -E "namespace|shim|libGLX_mesa|swrast|libLLVM|libexpat|libz\." | head -n 20
