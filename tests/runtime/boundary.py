"""Builders for the capsule-boundary tests: libbound.so.1 (the target) with
a private dependency and plugins under a prefix, its shim, libraries and
programs that use it from outside."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from build import CC, FIXTURES, MULTIARCH, Sym, build_lib, build_shim, make_prefix, sh

BOUND_FUNCTIONS = [
    "bound_add", "bound_get_counter", "bound_set_counter", "bound_counter_address",
    "bound_dep", "bound_ctor_string", "bound_dlopen", "bound_default_lookup",
    "bound_self_lookup", "bound_plugin_cycle", "bound_global_cycle",
    "bound_alloc", "bound_free", "bound_realloc",
    "bound_usable",
]
BOUND_SYMBOLS = [Sym(n, "BOUND_1") for n in BOUND_FUNCTIONS] + [
    Sym("bound_counter", "BOUND_1", kind="object", size=4)]
PROGRAM_FLAGS = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", f"-I{FIXTURES}"]
MODES = {
    "lazy": ["-Wl,-z,lazy", "-Wl,-z,relro"],
    "now-relro": ["-Wl,-z,now", "-Wl,-z,relro"],
    "fno-plt": ["-fno-plt", "-Wl,-z,now", "-Wl,-z,relro"],
    "norelro-lazy": ["-Wl,-z,norelro", "-Wl,-z,lazy"],
}
DATA_KINDS = {"nopie": ["-fno-pie", "-no-pie"], "pie": ["-fPIE", "-pie"],
              "pie-got": ["-fPIC", "-pie"]}


@dataclass
class Boundary:
    root: Path
    prefix: Path
    real_dir: Path    # libbound.so.1 + libbdep.so.1 as linked against
    own_dir: Path     # the programs' own, incompatible libbdep.so.1
    shim_dir: Path
    user_dir: Path    # libbuser.so, libbuser2.so
    programs: dict[str, Path]

    def env(self, **extra: str) -> dict[str, str]:
        path = f"{self.shim_dir}:{self.own_dir}:{self.user_dir}"
        return {"LD_LIBRARY_PATH": path, **extra}

    def in_prefix(self, name: str) -> str:
        return str(self.prefix / MULTIARCH / name)


def _plugin(out: Path, soname: str, *defines: str, libs: list[str | Path] = ()) -> Path:
    return build_lib(out, soname, [FIXTURES / "plugin.c"], flags=[f"-D{d}" for d in defines],
                     libs=list(libs))


def _program(out: Path, name: str, source: str, libs: list[str | Path],
             flags: list[str] = ()) -> Path:
    prog = out / name
    sh([*CC, *PROGRAM_FLAGS, *flags, FIXTURES / source, "-o", prog, *libs])
    return prog


def build_boundary(root: Path, libcapsule_dir: Path) -> Boundary:
    real = root / "real"
    bdep = build_lib(real, "libbdep.so.1", [FIXTURES / "bdep.c"])
    # Its DT_RUNPATH names a directory of the prefix only its plugins use.
    bound = build_lib(real, "libbound.so.1", [FIXTURES / "bound.c"],
                      version_script=FIXTURES / "bound.map",
                      libs=[bdep, "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../../../opt/capsule-rp"])
    own = build_lib(root / "own", "libbdep.so.1", [FIXTURES / "bdep_old.c"])
    plugins = root / "plugins"
    plugdep = build_lib(plugins, "libplugdep.so.1", [FIXTURES / "plugdep.c"])
    libs = [bound, bdep, plugdep, _plugin(plugins, "libplugin.so", "PLUGIN_ID=77"),
            _plugin(plugins, "libplugdeps.so", "PLUGIN_DEP", libs=[plugdep]),
            _plugin(plugins, "libglobal.so", "PLUGIN_GLOBAL", "PLUGIN_ID=5"),
            _plugin(plugins, "libcounter.so", "PLUGIN_COUNTER", libs=[bound])]
    prefix = root / "prefix"
    opt = prefix / "opt/capsule-test"
    opt.mkdir(parents=True)
    shutil.copy2(_plugin(plugins / "opt", "libplugin2.so", "PLUGIN_ID=78"), opt)
    (prefix / "opt/capsule-rp").mkdir()
    shutil.copy2(_plugin(plugins / "rp", "libinrunpath.so", "PLUGIN_ID=79"),
                 prefix / "opt/capsule-rp")
    make_prefix(prefix, libs)
    shim_dir = root / "shim"
    build_shim(shim_dir, libcapsule_dir, "libbound.so.1", str(prefix), BOUND_SYMBOLS,
               [("BOUND_1", None)])
    users = root / "users"
    for soname in ("libbuser.so", "libbuser2.so"):
        build_lib(users, soname, [FIXTURES / "buser.c"], libs=[bound])
    for mode, flags in MODES.items():
        build_lib(users / mode, "libbuser.so", [FIXTURES / "buser.c"], flags=flags,
                  libs=[bound])
    link = [bound, f"-Wl,-rpath-link,{real}", "-ldl", "-lpthread"]
    out = root / "bin"
    out.mkdir()
    programs = {
        "inside": _program(out, "inside_prog", "inside_prog.c", link),
        "dlshim": _program(out, "dlshim_prog", "dlshim_prog.c", [own, "-ldl"]),
        "heap": _program(out, "heap_prog", "heap_prog.c", link),
        "threads": _program(out, "threads_prog", "threads_prog.c", link),
    }
    plugins_dir = out / "plugins"
    plugins_dir.mkdir()
    shutil.copy2(plugins / "libplugin.so", plugins_dir / "libbinplugin.so")
    for tag, dtags in (("runpath", "--enable-new-dtags"), ("rpath", "--disable-new-dtags")):
        programs[tag] = _program(out, f"{tag}_prog", "runpath_prog.c",
                                 [*link, f"-Wl,{dtags},-rpath,$ORIGIN/plugins"])
    for kind, flags in DATA_KINDS.items():
        programs[f"data-{kind}"] = _program(out, f"data_prog_{kind}", "data_prog.c", link, flags)
    return Boundary(root, prefix, real, own.parent, shim_dir, users, programs)
