"""What a shim description can ask for, and older objects: `exports` (more
sonames whose symbols the shim exports), `exclude` (sonames never taken from
the prefix), shims built for other ABIs, a target with only a SysV hash."""

from __future__ import annotations

from pathlib import Path

from programs import parse, run

from build import (
    CC,
    DEMO_SYMBOLS,
    DEMO_VERSIONS,
    FIXTURES,
    LIBCAPSULE,
    MULTIARCH,
    Built,
    Sym,
    build_lib,
    build_program,
    build_shim,
    make_prefix,
    render_shim,
    sh,
)


def test_exports_bring_a_second_library(built: Built, tmp_path: Path) -> None:
    shim_dir = tmp_path / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libdemo.so.1", str(built.prefix),
               [*DEMO_SYMBOLS, Sym("demodep_value", None)], DEMO_VERSIONS,
               exports=["libdemodep.so.1"])
    src = tmp_path / "depcall.c"
    src.write_text('#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <stdio.h>\n'
                   '#include "demo.h"\n#include "demodep.h"\nint main(void) {\n'
                   '  Dl_info i;\n  dladdr((const void *)&demodep_value, &i);\n'
                   '  printf("value=%d\\nobject=%s\\nadd=%d\\n", demodep_value(), i.dli_fname,'
                   ' demo_add(2, 3));\n  return 0;\n}\n')
    prog = tmp_path / "depcall"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FIXTURES}", src, "-o", prog,
        built.demo, built.demodep, f"-Wl,-rpath,{built.real_dir}", "-ldl"])
    proc = run([prog], {"LD_LIBRARY_PATH": str(shim_dir)})
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    assert got == {"value": "42", "add": "5",
                   "object": str(built.prefix / MULTIARCH / "libdemodep.so.1")}, got


def test_exclude_keeps_a_soname_out_of_the_prefix(built: Built, tmp_path: Path) -> None:
    shim_dir = tmp_path / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libdemo.so.1", str(built.prefix), DEMO_SYMBOLS,
               DEMO_VERSIONS, exclude=["libdemodep.so.1"])
    prog = build_program(built, tmp_path / "prog", [], [])
    # ld.so itself must find an excluded soname, on the normal search path.
    proc = run([prog], {"LD_LIBRARY_PATH": str(shim_dir), "CAPSULE_DEBUG": "search"})
    assert proc.returncode == 127, proc
    line = proc.stderr.splitlines()[-1]
    assert line.startswith("capsule: libdemo.so.1: prefix ") and "dlmopen " in line, line
    assert "libdemodep.so.1: cannot open shared object file" in line, line
    assert "searching libdemodep.so.1" not in proc.stderr
    other = build_lib(tmp_path / "other", "libdemodep.so.1", [FIXTURES / "demodep.c"])
    proc = run([prog], {"LD_LIBRARY_PATH": f"{shim_dir}:{other.parent}"})
    assert proc.returncode == 0 and parse(proc.stdout)["dep"] == "42", proc


def test_shim_of_abi_2_is_refused(built: Built, tmp_path: Path) -> None:
    shim = build_lib(tmp_path / "shim", "libdemo.so.1", [FIXTURES / "shim_abi2.c"],
                     sanitize=True, libs=[f"-L{built.libcapsule_dir}", "-lcapsule",
                                          f"-Wl,-rpath,{built.libcapsule_dir}"])
    main = tmp_path / "main.c"
    main.write_text("int main(void) { return 0; }\n")
    prog = tmp_path / "prog"
    sh([*CC, main, "-o", prog, "-Wl,--no-as-needed", shim, f"-Wl,-rpath,{shim.parent}"])
    proc = run([prog], {})
    assert proc.returncode == 127, proc
    assert proc.stderr == ("capsule: libdemo.so.1: shim built for capsule ABI 2, this "
                           "libcapsule has ABI 4\n")


def test_shim_of_a_newer_abi_is_refused(built: Built, tmp_path: Path) -> None:
    src = tmp_path / "libdemo.so.1.shim.c"
    text = render_shim("libdemo.so.1", str(built.prefix), DEMO_SYMBOLS)
    src.write_text(text.replace(".abi = CAPSULE_ABI_VERSION", ".abi = 99"))
    vmap = tmp_path / "shim.map"
    vmap.write_text("DEMO_1 { };\nDEMO_2 { } DEMO_1;\n")
    build_lib(tmp_path / "shim", "libdemo.so.1", [src], version_script=vmap, sanitize=True,
              flags=[f"-I{LIBCAPSULE / 'include'}"],
              libs=[f"-L{built.libcapsule_dir}", "-lcapsule",
                    f"-Wl,-rpath,{built.libcapsule_dir}"])
    prog = build_program(built, tmp_path / "prog", [], [])
    proc = run([prog], {"LD_LIBRARY_PATH": str(tmp_path / "shim")})
    assert proc.returncode == 127, proc
    assert proc.stderr == ("capsule: libdemo.so.1: shim built for capsule ABI 99, this "
                           "libcapsule has ABI 4\n")


def test_target_with_only_a_sysv_hash(built: Built, tmp_path: Path) -> None:
    demodep = build_lib(tmp_path / "lib", "libdemodep.so.1", [FIXTURES / "demodep.c"],
                        flags=["-Wl,--hash-style=sysv"])
    demo = build_lib(tmp_path / "lib", "libdemo.so.1", [FIXTURES / "demo.c"],
                     version_script=FIXTURES / "demo.map", flags=["-Wl,--hash-style=sysv"],
                     libs=[demodep])
    assert "GNU_HASH" not in sh(["readelf", "-d", demo]).stdout
    prefix = make_prefix(tmp_path / "p", [demo, demodep])
    prog = build_program(built, tmp_path / "prog", ["-Wl,--hash-style=sysv"], [])
    proc = run([prog], {"LD_LIBRARY_PATH": str(built.shim_dir), "CAPSULE_PREFIX": str(prefix)})
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    assert got["add"] == "5" and got["add_old"] == "1005" and got["counter"] == "8", got
    assert got["user_counter_object"] == str(prefix / MULTIARCH / "libdemo.so.1")


def test_tls_symbols_are_not_redirected(built: Built, tmp_path: Path) -> None:
    src = tmp_path / "tls.c"
    src.write_text("__thread int tls_value = 5;\nint tls_get(void) { return tls_value; }\n")
    lib = build_lib(tmp_path / "real", "libtls.so.1", [src])
    prefix = make_prefix(tmp_path / "p", [lib])
    shim_dir = tmp_path / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libtls.so.1", str(prefix),
               [Sym("tls_value", None, kind="tls", size=4), Sym("tls_get", None)], [])
    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\nextern __thread int tls_value;\nint tls_get(void);\n'
                    'int main(void) {\n  tls_value = 9;\n'
                    '  printf("get=%d\\nown=%d\\n", tls_get(), tls_value);\n  return 0;\n}\n')
    prog = tmp_path / "prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", main, "-o", prog, lib])
    proc = run([prog], {"LD_LIBRARY_PATH": str(shim_dir), "CAPSULE_DEBUG": "reloc"})
    assert proc.returncode == 0, proc
    # The program's tls_value is the shim's; the real library keeps its own.
    assert parse(proc.stdout) == {"get": "5", "own": "9"}, proc
    assert "capsule[reloc]: libtls.so.1: TLS symbol tls_value not redirected" in proc.stderr
