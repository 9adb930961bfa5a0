"""Everything that differs between the Meson releases capsule supports.

Meson's module API is internal and changes between releases. The capsule
module only reaches Meson through this file, which is checked against Meson
1.0.1 (Debian 12) and 1.12.x (PyPI):

- options: 1.0 reads ``coredata.get_option(OptionKey)``, 1.12 reads
  ``coredata.optstore.get_value_for(OptionKey)``;
- building a library: 1.0's ``func_shared_lib`` takes raw keyword arguments
  checked by ``permittedKwargs``, 1.12's goes through ``typed_kwargs`` and
  ``build_target(node, args, kwargs, SharedLibrary)``; calling
  ``func_shared_lib`` with raw arguments works on both and lets each release
  check and default the keywords its own way (as ``shared_library()`` in a
  meson.build would);
- a dependency's variable: both have ``get_variable(pkgconfig=, internal=)``
  but 1.0 spells the default ``default_value``;
- a target's install flag: 1.0 ``need_install``, 1.12 ``install``;
- the host machine (the cross file's ``[host_machine]``, else the build
  machine): ``environment.machines.host`` in both;
- ``ModuleInfo``, ``typed_kwargs``, ``KwargInfo`` and ``ContainerTypeInfo``
  exist in both; they are re-exported from here so a later move has one place
  to follow.
"""

from __future__ import annotations

import typing as T

from mesonbuild import build
from mesonbuild.coredata import version as meson_version
from mesonbuild.interpreterbase import (
    ContainerTypeInfo,
    InvalidArguments,
    KwargInfo,
    typed_kwargs,
    typed_pos_args,
)
from mesonbuild.mesonlib import File, MachineChoice, MesonException, version_compare
from mesonbuild.modules import ExtensionModule, ModuleInfo

try:  # 1.12 moved OptionKey out of mesonlib
    from mesonbuild.options import OptionKey
except ImportError:  # Meson < 1.7
    from mesonbuild.mesonlib import OptionKey  # type: ignore[no-redef,attr-defined]

if T.TYPE_CHECKING:
    from mesonbuild.interpreter import Interpreter
    from mesonbuild.modules import ModuleState

__all__ = [
    'ContainerTypeInfo', 'ExtensionModule', 'File', 'InvalidArguments', 'KwargInfo',
    'MesonException', 'ModuleInfo', 'add_c_language', 'builtin_option', 'has_c_compiler',
    'host_cpu_family', 'mark_installed', 'meson_version', 'shared_library', 'typed_kwargs', 'typed_pos_args',
]

MESON_1_7 = version_compare(meson_version, '>=1.7.0')


def builtin_option(state: ModuleState, name: str) -> T.Any:
    """The value of a builtin option such as prefix or libdir."""
    key = OptionKey(name)
    coredata = state.environment.coredata
    if MESON_1_7:
        return coredata.optstore.get_value_for(key)
    return coredata.get_option(key)


def host_cpu_family(state: ModuleState) -> str:
    """host_machine.cpu_family(): 'x86_64', 'x86' (i386), 'aarch64' ..."""
    return str(state.environment.machines.host.cpu_family)


def has_c_compiler(interpreter: Interpreter) -> bool:
    return 'c' in interpreter.coredata.compilers[MachineChoice.HOST]


def add_c_language(interpreter: Interpreter) -> bool:
    """Enable C for the host machine as add_languages('c') would."""
    return interpreter.add_languages(['c'], True, MachineChoice.HOST)


def shared_library(interpreter: Interpreter, name: str, sources: list[File],
                   kwargs: dict[str, T.Any]) -> build.SharedLibrary:
    """Create a shared_library() target exactly as a meson.build line would.

    ``kwargs`` are raw meson.build keyword values (str, bool, lists, File,
    targets, dependencies); the target is registered with the build.
    """
    node = interpreter.current_node
    target = interpreter.func_shared_lib(node, [name, *sources], dict(kwargs))
    if not isinstance(target, build.SharedLibrary):  # 1.0 returns a holder-free target too
        target = getattr(target, 'held_object', target)
    return T.cast('build.SharedLibrary', target)


def dependency_variable(dep: T.Any, pkgconfig: str) -> str | None:
    """A pkg-config variable of an external dependency, or None."""
    try:
        value = dep.get_variable(pkgconfig=pkgconfig)
    except MesonException:
        return None
    return value or None


def mark_installed(target: build.SharedLibrary) -> None:
    """Install a target created with install: false (into the install_dir it
    was given): 1.0 keeps the flag in ``need_install``, 1.12 in ``install``."""
    if hasattr(target, 'need_install'):
        target.need_install = True
    else:
        target.install = True
