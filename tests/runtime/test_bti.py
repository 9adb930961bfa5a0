"""aarch64's branch target identification (issue 12): every entry point an
indirect branch reaches in libcapsule, the bridge and a shim starts with
`bti c`, so a BTI CPU (qemu-aarch64 -cpu max) runs objects built
-mbranch-protection=standard and marked BTI, as Debian 13's arm64 libraries
are. Debian 12's cross start files are not BTI-marked, so libcapsule and the
shim here are linked without them (-nostartfiles) and marked with
-z force-bti; a negative control shows the CPU enforces it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from build import (
    CFLAGS,
    FIXTURES,
    GCC,
    LIBCAPSULE,
    Sym,
    build_lib,
    build_shim,
    libcapsule_cflags,
    libcapsule_sources,
    make_prefix,
    sh,
)
from testarch import RUNNER, skip_unless

# What a BTI object needs here beyond the cross file's flags: no outline
# atomics (libgcc's are not BTI-marked), no start files, the BTI mark.
BTI_FLAGS = ["-mno-outline-atomics"]
BTI_LINK = ["-nostartfiles", "-Wl,-z,force-bti"]
CPU = [*RUNNER, "-cpu", "max"]


@dataclass
class World:
    libcapsule_dir: Path
    shim: Path
    program: Path


def _dso_handle(out: Path) -> Path:
    """__dso_handle, which crtbeginS.o would define (pthread_atfork's
    libc_nonshared.a part refers to it)."""
    src = out / "dso_handle.c"
    src.write_text('__attribute__((visibility("hidden"))) void *__dso_handle = &__dso_handle;\n')
    obj = out / "dso_handle.o"
    sh([*GCC, *CFLAGS, *BTI_FLAGS, "-fPIC", "-c", src, "-o", obj])
    return obj


def _bti_libcapsule(out: Path, dso: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    objects = []
    for source in libcapsule_sources():
        obj = out / f"{source.parent.name}_{source.stem}.o"
        sh([*GCC, *CFLAGS, *BTI_FLAGS, "-c", "-fPIC", "-fvisibility=hidden",
            *libcapsule_cflags(), source, "-o", obj])
        objects.append(obj)
    lib = out / "libcapsule.so.0"
    sh([*GCC, *BTI_FLAGS, *BTI_LINK, "-shared", *objects, dso, "-o", lib,
        "-Wl,-soname,libcapsule.so.0", f"-Wl,--version-script,{LIBCAPSULE / 'libcapsule.map'}",
        "-ldl", "-lpthread"])
    (out / "libcapsule.so").symlink_to("libcapsule.so.0")
    return lib


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    skip_unless("aarch64", "branch target identification is aarch64's")
    root = tmp_path_factory.mktemp("bti")
    dso = _dso_handle(root)
    libcapsule_dir = root / "libcapsule"
    _bti_libcapsule(libcapsule_dir, dso)
    vmap = root / "bti.map"
    vmap.write_text("BTI_1 { global: *; };\n")
    real = build_lib(root / "real", "libbti.so.1", [FIXTURES / "bti_lib.c"], version_script=vmap,
                     libs=["-ldl"])
    prefix = make_prefix(root / "prefix", [real])
    symbols = [Sym(name, "BTI_1") for name in ("bti_value", "bti_lookups", "bti_files")]
    shim = build_shim(root / "shim", libcapsule_dir, "libbti.so.1", str(prefix), symbols,
                      [("BTI_1", None)], flags=[*BTI_FLAGS, *BTI_LINK, str(dso)])
    program = root / "bti_prog"
    sh([*GCC, *CFLAGS, FIXTURES / "bti_prog.c", "-o", program, shim, "-ldl",
        f"-Wl,-rpath-link,{libcapsule_dir}"])
    return World(libcapsule_dir, shim, program)


def _notes(path: Path) -> str:
    return sh(["readelf", "-n", path]).stdout


def test_libcapsule_and_the_shim_are_bti_marked(world: World) -> None:
    for lib in (world.libcapsule_dir / "libcapsule.so.0", world.shim):
        assert "AArch64 feature: BTI" in _notes(lib), lib


def _symbols(lib: Path, prefixes: tuple[str, ...]) -> dict[str, int]:
    """Address of each symbol of lib's .symtab starting with one of prefixes."""
    out = {}
    for line in sh(["aarch64-linux-gnu-nm", lib]).stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].startswith(prefixes):
            out[fields[2]] = int(fields[0], 16)
    return out


def _instructions(lib: Path) -> dict[int, str]:
    """Address -> instruction of lib's code, as objdump prints it."""
    out = {}
    dump = sh(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", lib]).stdout
    for line in dump.splitlines():
        addr, sep, insn = line.partition(":\t")
        if sep and addr.strip() and all(c in "0123456789abcdef" for c in addr.strip()):
            out[int(addr, 16)] = " ".join(insn.split())
    return out


def test_every_entry_and_stub_starts_with_bti_c(world: World) -> None:
    """The functions only ever reached by an indirect branch: libcapsule's
    trampolines and data file entries, the shim's stubs."""
    for lib, prefixes in ((world.libcapsule_dir / "libcapsule.so.0",
                           ("capsule_entry_", "capsule_dd_entry_")),
                          (world.shim, ("__capsule_stub_",))):
        code = _instructions(lib)
        entries = {name: addr for name, addr in _symbols(lib, prefixes).items()
                   if name != "__capsule_stub_tail"}
        assert len(entries) >= 3, (lib.name, entries)
        for name, addr in entries.items():
            assert code.get(addr) == "bti c", (lib.name, name, code.get(addr))


def test_a_bti_cpu_runs_the_capsule(world: World) -> None:
    """Under -cpu max every branch into the BTI-marked objects must land on
    a `bti c`: the program's calls, the bridge's jumps into libcapsule
    (dlsym, dlvsym, dlopen, fopen from inside), a call of a stub through a
    pointer (as a PLT entry not yet rewritten makes it)."""
    stub = _symbols(world.shim, ("__capsule_stub_0",))["__capsule_stub_0"]
    proc = subprocess.run([*CPU, str(world.program), "/etc/hostname", hex(stub)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={"LD_LIBRARY_PATH": str(world.shim.parent)})
    assert proc.returncode == 0, proc
    assert proc.stdout == "value=42\nlookups=42\nfiles=11\nstub=42\n", proc


def test_the_cpu_enforces_bti(tmp_path: Path) -> None:
    """The negative control: without a landing pad, the same CPU faults."""
    skip_unless("aarch64", "branch target identification is aarch64's")
    dso = _dso_handle(tmp_path)
    lib = build_lib(tmp_path, "libnopad.so", [FIXTURES / "bti_missing.c"],
                    flags=[*BTI_FLAGS, *BTI_LINK, str(dso)])
    program = tmp_path / "nopad"
    sh([*GCC, *CFLAGS, FIXTURES / "bti_missing_prog.c", "-o", program, lib])
    env = {"LD_LIBRARY_PATH": str(tmp_path)}
    proc = subprocess.run([*CPU, str(program)], capture_output=True, text=True, timeout=60,
                          check=False, env=env)
    assert proc.returncode == -4 or "Illegal instruction" in proc.stderr, proc  # SIGILL
    older = subprocess.run([*RUNNER, "-cpu", "cortex-a57", str(program)], capture_output=True,
                           text=True, timeout=60, check=False, env=env)
    assert older.returncode == 0 and older.stdout == "7\n", older
