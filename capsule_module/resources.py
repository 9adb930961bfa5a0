"""Where the templates and the C runtime sources live (wheel or checkout)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    installed = _PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / name


def templates_dir() -> Path:
    """Directory holding shim.c.in, shim.map.in and project/."""
    return _find("shim-templates")


def libcapsule_dir() -> Path:
    """Directory holding the libcapsule C sources and include/capsule.h."""
    return _find("libcapsule")


def libcapsule_arch_dir(arch_name: str) -> Path:
    """libcapsule's files for one architecture (capsule's name: x86_64,
    i386): arch.h and its machine code."""
    return libcapsule_dir() / "arch" / arch_name


def libcapsule_sources(arch_name: str) -> list[Path]:
    """The C sources of libcapsule for arch_name: the common ones, then the
    architecture's."""
    return [*sorted(libcapsule_dir().glob("*.c")),
            *sorted(libcapsule_arch_dir(arch_name).glob("*.c"))]


def cross_file(triplet: str) -> Path | None:
    """The Meson cross file shipped for a multiarch triplet, if there is one."""
    path = _find("cross") / f"{triplet}.ini"
    return path if path.is_file() else None
