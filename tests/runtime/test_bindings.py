"""Which slots the relocation pass may rewrite: only those that bind (or
would bind) to the shim. A library's call to its own definition of a name
the target also exports stays its own, lazily bound or not; an object
dlclose()d and replaced by another at the same address is decoded afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from programs import parse, run

from build import CC, FIXTURES, Built, build_lib, sh
from testarch import require_unemulated

BINDING = {"lazy": ["-Wl,-z,lazy"], "now": ["-Wl,-z,now", "-Wl,-z,relro"]}


OWN_LIB = """\
/* Defines its own demo_where (as libdemo.so.1 does) and calls it. */
const char *demo_where(void) { return "own"; }
const char *own_where(void) { return demo_where(); }
"""

OWN_PROG = """\
#include <stdio.h>
#include "demo.h"
const char *own_where(void);
int main(void) {
    printf("own=%s\\nadd=%d\\n", own_where(), demo_add(2, 3));
    return 0;
}
"""


@pytest.mark.parametrize("binding", BINDING)
def test_own_definition_stays_own(built: Built, tmp_path: Path, binding: str) -> None:
    src = tmp_path / "own.c"
    src.write_text(OWN_LIB)
    own = build_lib(tmp_path, "libown.so", [src], flags=BINDING[binding])
    main = tmp_path / "main.c"
    main.write_text(OWN_PROG)
    prog = tmp_path / "prog"
    # libown.so comes before libdemo.so.1 in the global scope: its own
    # demo_where is what ld.so binds its call to, with or without a shim.
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FIXTURES}", main, "-o", prog,
        "-Wl,--no-as-needed", own, built.demo, f"-Wl,-rpath,{tmp_path}", f"-Wl,-rpath-link,{built.real_dir}",
        *BINDING[binding]])
    plain = run([prog], {"LD_LIBRARY_PATH": str(built.real_dir)})
    assert parse(plain.stdout) == {"own": "own", "add": "5"}, plain
    capsuled = run([prog], {"LD_LIBRARY_PATH": str(built.shim_dir), "CAPSULE_DEBUG": "reloc"})
    assert capsuled.returncode == 0, capsuled
    assert parse(capsuled.stdout) == {"own": "own", "add": "5"}, capsuled.stderr
    assert f"{own}: demo_where" not in capsuled.stderr, capsuled.stderr


PLUGIN_V1 = """\
#include "demo.h"
int plug_value(void) { return demo_add(1, 2); }
const void *plug_where_address(void) { return (const void *)demo_where; }
"""

# Rebuilt: more symbols and relocations, yet (checked below) mapped at the
# same base with its dynamic section at the same address.
PLUGIN_V2 = """\
#include "demo.h"
int plug_value(void) { return demo_add(1, 2) + 10 * demo_dep(); }
const void *plug_where_address(void) { return (const void *)demo_where; }
int plug_another_function_with_a_long_name(void) { demo_bump(); return demo_get_counter(); }
"""


def test_rebuilt_plugin_at_the_same_address(built: Built, tmp_path: Path) -> None:
    require_unemulated("the case needs the kernel to map the rebuilt plugin where the first "
                       "one was; qemu-user places a guest's mappings itself")
    libs = []
    for name, text in (("v1", PLUGIN_V1), ("v2", PLUGIN_V2)):
        src = tmp_path / f"{name}.c"
        src.write_text(text)
        libs.append(build_lib(tmp_path / name, "libplug.so", [src],
                              flags=["-Wl,-z,lazy"], libs=[built.demo]))
    plugin = tmp_path / "libplug.so"
    plugin.write_bytes(libs[0].read_bytes())
    prog = tmp_path / "reload_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FIXTURES}",
        FIXTURES / "reload_prog.c", "-o", prog, built.demo, f"-Wl,-rpath-link,{built.real_dir}",
        "-ldl"])
    proc = run([prog, plugin, libs[1]], {"LD_LIBRARY_PATH": str(built.shim_dir),
                                         "CAPSULE_DEBUG": "reloc"})
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    assert got["first_base"] == got["second_base"], got
    assert got["first_dynamic"] == got["second_dynamic"], got
    assert got["first_real"] == "1" and got["first_value"] == "3", proc.stderr
    assert got["second_real"] == "1" and got["second_value"] == "423", proc.stderr
