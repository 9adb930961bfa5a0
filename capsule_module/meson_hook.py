"""Serve ``mesonbuild.modules.capsule`` so that ``import('capsule')`` works.

Meson imports module ``x`` of ``import('x')`` as ``mesonbuild.modules.x`` and
has no plugin mechanism. capsule-meson.pth imports this file at interpreter
start-up; it appends one finder to ``sys.meta_path`` that answers for that
single name only, after Meson's own modules, and imports nothing until Meson
asks for it. So a Python process that never runs Meson pays one list append.
"""

from __future__ import annotations

import sys

MODULE_NAME = 'mesonbuild.modules.capsule'
IMPLEMENTATION = 'capsule_module.meson_module'


class _AliasLoader:
    """Loads the module by importing capsule_module.meson_module."""

    @staticmethod
    def create_module(spec: object) -> object:
        import importlib
        return importlib.import_module(IMPLEMENTATION)

    @staticmethod
    def exec_module(module: object) -> None:
        """Already executed by create_module's import."""


class CapsuleModuleFinder:
    """A sys.meta_path finder answering for mesonbuild.modules.capsule only."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> object:
        if fullname != MODULE_NAME:
            return None
        from importlib.machinery import ModuleSpec
        return ModuleSpec(fullname, _AliasLoader())

    @staticmethod
    def invalidate_caches() -> None:
        """Nothing cached."""


def install() -> None:
    """Add the finder once (a .pth line may run more than once)."""
    if not any(type(f).__name__ == 'CapsuleModuleFinder' for f in sys.meta_path):
        sys.meta_path.append(CapsuleModuleFinder())


install()
