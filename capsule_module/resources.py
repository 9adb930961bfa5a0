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
