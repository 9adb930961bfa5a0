"""dlopen inside the capsule of objects already in its namespace: the Vulkan
loader opens every ICD (and its layers) again and again. An object, or a
dependency, already loaded is taken as ld.so takes it (by path or soname,
before any search) instead of resolving its tree under the prefix again;
everything still comes from the prefix, a miss is never remembered, and
dlclose really unloads (except glibc's libraries, held for good as in the
program). A resolution that loaded is reused after the last dlclose while
the tree it came from is unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from build import (
    CC,
    FIXTURES,
    MULTIARCH,
    SANITIZE,
    Built,
    Sym,
    build_lib,
    build_shim,
    glibc_prefix,
    make_prefix,
    sh,
)


@dataclass
class Reopen:
    prefix: Path
    prog: Path
    env: dict[str, str]
    own_dep: Path
    late: Path        # liblate.so.1, outside the prefix until a test moves it in
    needy: Path       # a libshdep.so.1 (3000) that needs liblate.so.1, outside the prefix

    def lib(self, name: str) -> str:
        return str(self.prefix / MULTIARCH / name)


@pytest.fixture(scope="module")
def reopen(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Reopen:
    root = tmp_path_factory.mktemp("reopen")
    real = root / "real"
    shdep = build_lib(real, "libshdep.so.1", [FIXTURES / "reopen_dep.c"],
                      flags=["-DSHDEP_VALUE=1000"])
    late = build_lib(root / "staging", "liblate.so.1", [FIXTURES / "reopen_dep.c"],
                     flags=["-DSHDEP_VALUE=2000"])
    own = build_lib(root / "own", "libshdep.so.1", [FIXTURES / "reopen_dep.c"],
                    flags=["-DSHDEP_VALUE=1"])
    needy = build_lib(root / "needy", "libshdep.so.1", [FIXTURES / "reopen_dep.c"],
                      flags=["-DSHDEP_VALUE=3000"], libs=["-Wl,--no-as-needed", late])
    target = build_lib(real, "libreopen.so.1", [FIXTURES / "reopen.c"])
    plugins = [build_lib(real, name, [FIXTURES / "reopen_plugin.c"], flags=[f"-DPLUGIN_ID={i}"],
                         libs=[dep])
               for name, i, dep in (("libpa.so", 10, shdep), ("libpb.so", 20, shdep),
                                    ("libplate.so", 30, late))]
    # Needs libm, which ld.so takes from the host (glibc is never taken from a prefix).
    plugins.append(build_lib(real, "libpm.so", [FIXTURES / "reopen_plugin.c"],
                             flags=["-DPLUGIN_ID=40"], libs=[shdep, "-Wl,--no-as-needed", "-lm"]))
    prefix = make_prefix(root / "prefix", [target, shdep, *plugins])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libreopen.so.1", str(prefix),
               [Sym(n, None) for n in ("reopen_open", "reopen_error", "reopen_describe",
                                       "reopen_close")], [])
    prog = root / "reopen_prog"
    sh([*CC, "-std=gnu11", "-Wall", "-Wextra", "-Werror", FIXTURES / "reopen_prog.c", "-o", prog,
        target, own, "-ldl"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["LD_LIBRARY_PATH"] = f"{shim_dir}:{own.parent}"
    return Reopen(prefix, prog, env, own, late, needy)


def run(r: Reopen, *steps: str, debug: str = "",
        env: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    env = env or r.env
    env = dict(env, CAPSULE_DEBUG=debug) if debug else env
    proc = subprocess.run([*glibc_prefix(env), str(r.prog), *steps], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc
    lines = [line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line]
    return {k.split(":", 1)[0] if k[0].isdigit() else k: v for k, v in lines}, proc.stderr


def test_shared_dependency_stays_in_the_prefix(reopen: Reopen) -> None:
    """Plugins sharing a dependency, opened again by soname and by absolute
    path while loaded: every one, and the dependency, from the prefix; the
    program's own libshdep.so.1 (same soname) never stands in for it."""
    got, err = run(reopen, "open:libpa.so", "open:libpb.so",
                   f"open:/{MULTIARCH}/libpa.so", "open:libpa.so", f"open:/{MULTIARCH}/libpb.so",
                   "maps:libshdep.so.1", debug="path")
    dep = reopen.lib("libshdep.so.1")
    assert got["own"] == "1"
    for i, (value, plugin) in enumerate([(1010, "libpa.so"), (1020, "libpb.so"),
                                         (1010, "libpa.so"), (1010, "libpa.so"),
                                         (1020, "libpb.so")], start=1):
        assert got[str(i)] == f"{value} {reopen.lib(plugin)} {dep}", (i, got)
    assert sorted(got["6"].split(",")) == sorted([dep, str(reopen.own_dep)])
    # The second plugin took the loaded dependency; the reopens resolved nothing.
    assert f"libshdep.so.1 -> {dep} (loaded)" in err
    assert err.count(f"-> {reopen.lib('libpa.so')} (loaded)") == 2, err
    assert f"/{MULTIARCH}/libpb.so -> {reopen.lib('libpb.so')} (loaded)" in err


def test_dependency_put_in_the_prefix_after_a_miss(reopen: Reopen) -> None:
    """A miss is never remembered (only loaded objects are): a dependency
    installed into the prefix after a failed dlopen is found by the next
    dlopen, as ld.so would find it."""
    inside = reopen.prefix / MULTIARCH / "liblate.so.1"
    if inside.exists():
        inside.rename(reopen.late)
    try:
        got, _ = run(reopen, "open:libplate.so", "noload:libplate.so",
                     f"mv:{reopen.late}:{inside}", "open:libplate.so", "maps:liblate")
    finally:
        if inside.exists():
            inside.rename(reopen.late)
    assert got["1"] == "ERR"
    assert "not found under this prefix" in got["error"]
    assert got["2"] == "absent"
    assert got["4"] == f"2030 {reopen.lib('libplate.so')} {inside}"
    assert got["5"] == str(inside)


def test_dlclose_unloads_and_reopen_loads_from_the_prefix(reopen: Reopen) -> None:
    got, _ = run(reopen, "open:libpa.so", "open:libpb.so", "close:libpa.so", "noload:libpa.so",
                 "open:libpa.so", "close:libpa.so", "close:libpb.so", "noload:libpb.so",
                 "maps:libshdep.so.1", f"open:/{MULTIARCH}/libpb.so", "maps:libshdep.so.1")
    dep = reopen.lib("libshdep.so.1")
    assert got["3"] == "0" and got["4"] == "absent"
    assert got["5"] == f"1010 {reopen.lib('libpa.so')} {dep}"
    assert got["6"] == "0" and got["7"] == "0" and got["8"] == "absent"
    # The shared dependency left with its last user; it comes back from the prefix.
    assert got["9"] == str(reopen.own_dep)
    assert got["10"] == f"1020 {reopen.lib('libpb.so')} {dep}"
    assert sorted(got["11"].split(",")) == sorted([dep, str(reopen.own_dep)])


def test_reopen_is_the_same_object(reopen: Reopen) -> None:
    """Without the prefix's copy of a loaded object (removed after the first
    load), a reopen still returns the loaded one, as ld.so does."""
    pb = reopen.prefix / MULTIARCH / "libpb.so"
    saved = reopen.prefix.parent / "libpb.so.saved"
    shutil.copy2(pb, saved)
    try:
        got, _ = run(reopen, "open:libpb.so", f"mv:{pb}:{saved}.x", "open:libpb.so")
    finally:
        os.replace(saved, pb)
        Path(f"{saved}.x").unlink(missing_ok=True)
    assert got["1"] == got["3"] == f"1020 {reopen.lib('libpb.so')} {reopen.lib('libshdep.so.1')}"


def test_reopen_after_dlclose_reuses_the_resolution(reopen: Reopen) -> None:
    """An object unloaded by its last dlclose and opened again (the Vulkan
    loader does this with its layer seven times) is not resolved again while
    the tree is unchanged: same objects, from the prefix."""
    got, err = run(reopen, "open:libpa.so", "close:libpa.so", "open:libpa.so", "close:libpa.so",
                   "open:libpa.so", debug="path")
    expected = f"1010 {reopen.lib('libpa.so')} {reopen.lib('libshdep.so.1')}"
    assert got["1"] == got["3"] == got["5"] == expected
    assert err.count(f"inside dlopen libpa.so -> {reopen.lib('libpa.so')} (cached)") == 2, err
    assert err.count(f"libshdep.so.1 -> {reopen.lib('libshdep.so.1')}") == 1, err


def test_reused_resolution_is_checked_against_the_tree(reopen: Reopen) -> None:
    """A dependency replaced after the first load by one that needs another
    library: the remembered resolution is not reused, so that library comes
    from the prefix, not from the directory outside it (on LD_LIBRARY_PATH)
    where ld.so would find it if the old plan were loaded as it was."""
    libdir = reopen.prefix / MULTIARCH
    dep, late_in = libdir / "libshdep.so.1", libdir / "liblate.so.1"
    saved = reopen.prefix.parent / "libshdep.so.1.saved"
    env = dict(reopen.env, LD_LIBRARY_PATH=f"{reopen.env['LD_LIBRARY_PATH']}:{reopen.late.parent}")
    shutil.copy2(reopen.late, late_in)
    try:
        got, err = run(reopen, "open:libpa.so", "close:libpa.so", f"mv:{dep}:{saved}",
                       f"mv:{reopen.needy}:{dep}", "open:libpa.so", "maps:liblate",
                       debug="path", env=env)
    finally:
        if saved.exists():
            if dep.exists():
                os.replace(dep, reopen.needy)
            os.replace(saved, dep)
        late_in.unlink(missing_ok=True)
    assert got["3"] == got["4"] == "0"
    assert got["5"] == f"3010 {reopen.lib('libpa.so')} {dep}"
    assert got["6"] == str(late_in)
    assert "(cached)" not in err


def test_reused_resolution_of_a_removed_object(reopen: Reopen) -> None:
    """Removed from the prefix after its first load: not found (the
    remembered resolution is dropped, never loaded from elsewhere); back in
    the prefix: found again."""
    pb = reopen.prefix / MULTIARCH / "libpb.so"
    away = reopen.prefix.parent / "libpb.so.away"
    try:
        got, err = run(reopen, "open:libpb.so", "close:libpb.so", f"mv:{pb}:{away}",
                       "open:libpb.so", f"mv:{away}:{pb}", "open:libpb.so", debug="path")
    finally:
        if away.exists():
            os.replace(away, pb)
    assert got["4"] == "ERR"
    assert "not found under this prefix" in got["error"]
    assert got["6"] == f"1020 {reopen.lib('libpb.so')} {reopen.lib('libshdep.so.1')}"
    assert "(cached)" not in err


def test_glibc_libraries_stay_loaded(reopen: Reopen) -> None:
    """libm, which a plugin needs: the program's copy (loaded for the capsule
    when the program has none), through its placeholder, placed once and
    kept after the plugin's last dlclose, as the program keeps its own glibc
    libraries: each reopen does not place it again."""
    got, err = run(reopen, "maps:libm.so.6", "open:libpm.so", "close:libpm.so", "noload:libpm.so",
                   "maps:libm.so.6", "open:libpm.so", debug="ns")
    if SANITIZE != "asan":  # (libasan itself needs the program's libm)
        assert got["1"] == ""  # neither the program nor libreopen.so.1 needs libm
    assert got["4"] == "absent"
    # The program's libm (beside its placeholder's image, in address order:
    # /memfd:capsule-libm.so.6 comes first on x86_64, last on i386).
    assert [f for f in got["5"].split(",") if f.endswith("/libm.so.6")], got
    assert got["6"] == f"1040 {reopen.lib('libpm.so')} {reopen.lib('libshdep.so.1')}"
    assert err.count("placeholder glibc: libm.so.6") == 1, err
    if SANITIZE != "asan":
        assert "libm.so.6: loaded into the program for the capsule" in err, err
