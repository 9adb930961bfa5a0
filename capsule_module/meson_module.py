"""The Meson module: ``capsule = import('capsule')``.

``capsule.shim('libz.so.1', prefix: '/host')`` reads the real library's
exported symbols at configure time, renders the shim's C source and version
script into the build directory and returns a real shared_library() target
named exactly after the soname, linked to libcapsule.

This is glue only: ELF reading and rendering live in plain modules that know
nothing of Meson, and every Meson-release difference lives in meson_compat.
"""

from __future__ import annotations

import os
import re
import typing as T
from pathlib import Path

from capsule_module import DEFAULT_PREFIX, resources
from capsule_module import arch as arches
from capsule_module.errors import CapsuleError
from capsule_module.meson_compat import (
    ContainerTypeInfo,
    ExtensionModule,
    File,
    InvalidArguments,
    KwargInfo,
    MesonException,
    ModuleInfo,
    add_c_language,
    builtin_option,
    dependency_variable,
    has_c_compiler,
    host_cpu_family,
    mark_installed,
    shared_library,
    typed_kwargs,
    typed_pos_args,
)

if T.TYPE_CHECKING:
    from types import ModuleType

    from mesonbuild.build import SharedLibrary
    from mesonbuild.interpreter import Interpreter
    from mesonbuild.modules import ModuleState
    from typing_extensions import TypedDict

    from capsule_module.arch import Arch
    from capsule_module.elfreader import LibrarySymbols

    class ShimKw(TypedDict):
        prefix: str
        search_prefix: str | None
        symbols: str | File | None
        exclude: list[str]
        export: list[str]
        share: list[str] | None
        devel_link: bool
        install: bool
        install_dir: str | None

GENERATED_DIR = 'capsule-shims'
LIBCAPSULE_SONAME = 'libcapsule.so.0'
# libGL.so.1 -> the development name libGL.so, which programs and bindings
# dlopen too (vulkaninfo's libvulkan.so, SDL's and PyOpenGL's libGL.so).
_DEVEL_FORM = re.compile(r'(?P<stem>.+\.so)\.(?P<major>[0-9]+)')


def _soname_error(soname: str) -> str | None:
    if '/' in soname:
        return (f'soname {soname!r} must be a library file name such as libz.so.1, not a path '
                f'(the soname {soname.rsplit("/", 1)[1]!r}, found in search_prefix)')
    if not soname or soname in {'.', '..'} or any(c.isspace() for c in soname):
        return f'soname {soname!r} must be a library file name such as libz.so.1'
    if '.so' not in soname:
        return f'soname {soname!r} does not look like a shared library name (no ".so")'
    return None


def _absolute_error(what: str) -> T.Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        if value is not None and not value.startswith('/'):
            return f'{what} {value!r} must be an absolute path'
        return None
    return check


def _sonames_error(values: list[str] | None) -> str | None:
    for value in values or []:
        message = _soname_error(value)
        if message:
            return message
    return None


def _import_workers() -> _Workers:
    """The ELF reading and rendering modules, imported on first use so that a
    missing pyelftools is one clear error instead of 'module does not exist'."""
    try:
        from capsule_module import elfreader, locate, render, symbolsfile
    except ImportError as e:
        raise MesonException(f'capsule.shim needs the Python package {e.name!r} in the Python '
                             'that runs Meson (pip install pyelftools, or apt install '
                             'python3-pyelftools).') from None
    return _Workers(elfreader, locate, render, symbolsfile)


class _Workers(T.NamedTuple):
    elfreader: ModuleType
    locate: ModuleType
    render: ModuleType
    symbolsfile: ModuleType


class _Libcapsule(T.NamedTuple):
    """How shims link to libcapsule: a target built here or a dependency."""
    link_with: list[SharedLibrary]   # the in-project libcapsule (installed with a shim)
    dependencies: list[T.Any]
    c_args: list[str]
    install_libdir: str | None   # absolute, where libcapsule is (or will be) installed


class CapsuleModule(ExtensionModule):

    INFO = ModuleInfo('capsule')

    def __init__(self, interpreter: Interpreter) -> None:
        super().__init__(interpreter)
        self._libcapsule: _Libcapsule | None = None
        self._w: _Workers | None = None
        self.methods.update({'shim': self.shim})

    @typed_pos_args('capsule.shim', str)
    @typed_kwargs(
        'capsule.shim',
        KwargInfo('prefix', str, default=DEFAULT_PREFIX, validator=_absolute_error('prefix')),
        KwargInfo('search_prefix', (str, type(None))),
        KwargInfo('symbols', (str, File, type(None))),
        KwargInfo('exclude', ContainerTypeInfo(list, str), listify=True, default=[],
                  validator=_sonames_error),
        KwargInfo('export', ContainerTypeInfo(list, str), listify=True, default=[],
                  validator=_sonames_error),
        # Not given (None): libcapsule's default list, decided at run time.
        KwargInfo('share', (ContainerTypeInfo(list, str), type(None)), listify=True,
                  default=None, validator=_sonames_error),
        KwargInfo('devel_link', bool, default=True),
        KwargInfo('install', bool, default=False),
        KwargInfo('install_dir', (str, type(None))),
    )
    def shim(self, state: ModuleState, args: tuple[str], kwargs: ShimKw) -> SharedLibrary:
        soname = args[0]
        message = _soname_error(soname)
        if message:
            raise InvalidArguments(f'capsule.shim: {message}.')
        if soname in (kwargs['share'] or []):
            raise InvalidArguments(f'capsule.shim: {soname!r} cannot be both the shim and '
                                   'in share (a shared soname is the program\'s own copy).')
        arch = _host_arch(state)
        self._ensure_c()
        libs = self._read_libraries(state, soname, kwargs, arch)
        c_file, map_file = self._write_sources(state, soname, libs, kwargs, arch)
        return self._build(state, soname, c_file, map_file, kwargs, arch)

    @property
    def _workers(self) -> _Workers:
        if self._w is None:
            self._w = _import_workers()
        return self._w

    # -- configure-time reading -------------------------------------------

    def _read_libraries(self, state: ModuleState, soname: str, kwargs: ShimKw,
                        arch: Arch) -> list[LibrarySymbols]:
        """The target's symbols (from its symbols file, or read from the search
        tree), then each export's, for the host machine's architecture; the
        tree is only needed for what is read."""
        symbols = kwargs['symbols']
        from_tree = [*([soname] if symbols is None else []), *kwargs['export']]
        tree = self._search_tree(state, kwargs) if from_tree else None
        try:
            libs = [] if symbols is None else [self._from_symbols_file(state, soname, symbols)]
            if tree is not None:
                libs += [self._read_from_tree(name, tree, arch) for name in from_tree]
        except CapsuleError as e:
            raise MesonException(f'capsule.shim({soname!r}): {e}') from None
        return libs

    def _search_tree(self, state: ModuleState, kwargs: ShimKw) -> Path:
        """The tree libraries are read from: search_prefix, or else prefix."""
        given = kwargs['search_prefix']
        what = 'search_prefix' if given else 'prefix (the search tree when search_prefix is not given)'
        tree = Path(state.environment.get_source_dir(), state.subdir, given or kwargs['prefix'])
        if not tree.is_dir():
            raise InvalidArguments(f'capsule.shim: {what} {str(tree)!r} is not a directory.')
        return tree

    def _from_symbols_file(self, state: ModuleState, soname: str,
                           symbols: str | File) -> LibrarySymbols:
        path = self._source_path(state, symbols)
        self._depend_on(path)
        lib: LibrarySymbols = self._workers.symbolsfile.load(path)
        if lib.soname != soname:
            raise CapsuleError(f'symbols file {str(path)!r} describes {lib.soname!r}, not {soname!r}.')
        return lib

    def _read_from_tree(self, soname: str, tree: Path, arch: Arch) -> LibrarySymbols:
        locate = self._workers.locate
        found = locate.lookup_library(soname, tree, arch)
        for path in found.examined:
            self._depend_on(path)
        if found.path is None:
            # The lookup skips unusable files as the runtime would; when one
            # was there, say what is wrong with it instead of "not found".
            for rejected in found.rejected:
                self._read_checked(rejected, arch)
            raise locate.not_found(soname, tree, arch)
        return self._read_checked(found.path, arch, soname)

    def _read_checked(self, path: Path, arch: Arch, soname: str | None = None) -> LibrarySymbols:
        lib: LibrarySymbols = self._workers.elfreader.read_library(path)
        self._workers.render.require_arch(lib, path, arch)
        if soname is not None:
            self._workers.locate.check_soname(soname, path, lib.soname)
        return lib

    @staticmethod
    def _source_path(state: ModuleState, value: str | File) -> Path:
        if isinstance(value, File):
            return Path(value.absolute_path(state.environment.get_source_dir(),
                                            state.environment.get_build_dir()))
        return Path(state.environment.get_source_dir(), state.subdir, value)

    def _depend_on(self, path: str | Path) -> None:
        """Re-run Meson when this configure-time input changes."""
        if os.path.lexists(path):
            self.interpreter.add_build_def_file(str(path))

    # -- generated sources --------------------------------------------------

    def _write_sources(self, state: ModuleState, soname: str, libs: list[LibrarySymbols],
                       kwargs: ShimKw, arch: Arch) -> tuple[File, File | None]:
        templates = resources.templates_dir()
        for template in [*sorted(templates.glob('*.in')), templates / 'arch' / f'{arch.name}.stubs.in']:
            self._depend_on(template)
        subdir = os.path.join(state.subdir, GENERATED_DIR)
        out_dir = Path(state.environment.get_build_dir(), subdir)
        try:
            render = self._workers.render
            rendered = render.render_shim(libs, soname=soname, prefix=kwargs['prefix'],
                                          exclude=list(kwargs['exclude']),
                                          exports=list(kwargs['export']),
                                          share=kwargs['share'], arch=arch)
            out_dir.mkdir(parents=True, exist_ok=True)
            c_path, map_path = render.write_shim(rendered, out_dir, soname)
        except CapsuleError as e:
            raise MesonException(f'capsule.shim({soname!r}): {e}') from None
        except OSError as e:
            raise MesonException(f'capsule.shim({soname!r}): cannot write {out_dir}: {e.strerror}.') from None
        c_file = File.from_built_file(subdir, Path(c_path).name)
        map_file = File.from_built_file(subdir, Path(map_path).name) if map_path else None
        return c_file, map_file

    # -- targets ----------------------------------------------------------------

    def _build(self, state: ModuleState, soname: str, c_file: File,
               map_file: File | None, kwargs: ShimKw, arch: Arch) -> SharedLibrary:
        capsule = self._get_libcapsule(state)
        name, target_kwargs = _file_naming(soname, kwargs['devel_link'])
        target_kwargs.update({
            'c_args': capsule.c_args,
            'link_with': capsule.link_with,
            'dependencies': capsule.dependencies,
            'gnu_symbol_visibility': 'hidden',
            # Optimised whatever the buildtype: the generated code is tables
            # and a few calls, and clang at -O0 takes the address of the
            # hidden IFUNC the constructor calls (aarch64's ld cannot link
            # that) instead of calling it.
            'override_options': ['werror=false', 'optimization=2'],
            'install': kwargs['install'],
        })
        if map_file is not None:
            map_path = map_file.absolute_path(state.environment.get_source_dir(),
                                              state.environment.get_build_dir())
            target_kwargs['link_args'] = [f'-Wl,--version-script={map_path}']
            target_kwargs['link_depends'] = [map_file]
        if kwargs['install']:
            install_dir = kwargs['install_dir'] or builtin_option(state, 'libdir')
            target_kwargs['install_dir'] = install_dir
            rpath = self._install_rpath(state, install_dir, capsule, arch)
            if rpath:
                target_kwargs['install_rpath'] = rpath
            for target in capsule.link_with:   # the rpath promises it there
                mark_installed(target)
        return shared_library(self.interpreter, name, [c_file], target_kwargs)

    def _install_rpath(self, state: ModuleState, install_dir: str,
                       capsule: _Libcapsule, arch: Arch) -> str | None:
        if capsule.install_libdir is None:
            return None
        shim_dir = _absolute_install_dir(state, install_dir)
        if shim_dir == capsule.install_libdir:
            return '$ORIGIN'
        if not capsule.link_with and capsule.install_libdir in arch.system_lib_dirs:
            return None
        return '$ORIGIN/' + os.path.relpath(capsule.install_libdir, shim_dir)

    def _ensure_c(self) -> None:
        if has_c_compiler(self.interpreter):
            return
        if not add_c_language(self.interpreter):
            raise MesonException('capsule.shim needs a C compiler: add \'c\' to project() languages.')

    # -- libcapsule -----------------------------------------------------------

    def _get_libcapsule(self, state: ModuleState) -> _Libcapsule:
        if self._libcapsule is None:
            dep = state.dependency('capsule', required=False)
            if dep.found():
                self._libcapsule = self._from_dependency(state, dep)
            else:
                self._libcapsule = self._build_libcapsule(state)
        return self._libcapsule

    def _from_dependency(self, state: ModuleState, dep: T.Any) -> _Libcapsule:
        libdir = dependency_variable(dep, 'libdir')
        if libdir is None:  # a subproject's override: installed in its libdir
            libdir = _absolute_install_dir(state, builtin_option(state, 'libdir'))
        return _Libcapsule([], [dep], [], os.path.normpath(libdir))

    def _build_libcapsule(self, state: ModuleState) -> _Libcapsule:
        src = resources.libcapsule_dir()
        arch_name = _host_arch(state).name
        arch_dir = resources.libcapsule_arch_dir(arch_name)
        sources = resources.libcapsule_sources(arch_name)
        if (not sources or not (src / 'include' / 'capsule.h').is_file()
                or not (arch_dir / 'arch.h').is_file()):
            raise MesonException(f'capsule: the libcapsule sources are missing from {src}; '
                                 'reinstall the capsule package.')
        include = [f'-I{src / "include"}']
        libdir = builtin_option(state, 'libdir')
        kwargs: dict[str, T.Any] = {
            'name_prefix': '',
            'name_suffix': '0',
            'c_args': [*include, f'-I{src}', f'-I{arch_dir}'],
            'dependencies': [state.dependency('dl'), state.dependency('threads')],
            'gnu_symbol_visibility': 'hidden',
            'override_options': ['c_std=c11', 'werror=false'],
            'install': False,   # until a shim is installed: see _build
            'install_dir': libdir,
        }
        version_script = src / 'libcapsule.map'
        if version_script.is_file():
            kwargs['link_args'] = [f'-Wl,--version-script={version_script}']
            kwargs['link_depends'] = [File.from_absolute_file(str(version_script))]
        files = [File.from_absolute_file(str(p)) for p in sources]
        target = shared_library(self.interpreter, 'libcapsule.so', files, kwargs)
        return _Libcapsule([target], [], include, _absolute_install_dir(state, libdir))


def _host_arch(state: ModuleState) -> Arch:
    """The architecture shims are built for: the host machine's (the cross
    file's [host_machine], else this machine)."""
    try:
        return arches.of_meson_cpu_family(host_cpu_family(state))
    except CapsuleError as e:
        raise MesonException(f'capsule.shim: {e}.') from None


def _file_naming(soname: str, devel_link: bool) -> tuple[str, dict[str, T.Any]]:
    """The shared_library() name and naming kwargs whose file is the soname.

    For libX.so.N (with devel_link) that is Meson's own soversion naming,
    which also links the development name libX.so to it in the build
    directory and installs that link (install tag 'devel'); otherwise the
    soname split at its last dot, with no link.
    """
    form = _DEVEL_FORM.fullmatch(soname) if devel_link else None
    if form is not None:
        return form['stem'][:-len('.so')], {'name_prefix': '', 'name_suffix': 'so',
                                            'soversion': form['major']}
    name, suffix = soname.rsplit('.', 1)
    return name, {'name_prefix': '', 'name_suffix': suffix}


def _absolute_install_dir(state: ModuleState, install_dir: str) -> str:
    prefix = builtin_option(state, 'prefix')
    return os.path.normpath(os.path.join(prefix, install_dir))


def initialize(interpreter: Interpreter) -> CapsuleModule:
    return CapsuleModule(interpreter)
