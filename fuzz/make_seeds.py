#!/usr/bin/env python3
"""Regenerates the small seed corpora in fuzz/corpus/ (they are committed;
run this only to change them): tiny real shared objects built by gcc,
ld.so.caches written by this machine's ldconfig in each layout, and tree
descriptions for the resolver harness."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MULTIARCH = "usr/lib/x86_64-linux-gnu"
TINY = ["-shared", "-fPIC", "-nostdlib", "-s", "-Wl,-z,noseparate-code",
        "-Wl,-z,max-page-size=16", "-Wl,--no-as-needed"]


def tiny_lib(out: Path, soname: str, *flags: str, needed: tuple[Path, ...] = ()) -> Path:
    src = out / "t.c"
    src.write_text("int f(void) { return 1; }\n")
    lib = out / soname
    subprocess.run(["gcc", *TINY, f"-Wl,-soname,{soname}", *flags, str(src), "-o", str(lib),
                    *map(str, needed)], check=True)
    return lib


def elf_seeds(tmp: Path, corpus: Path) -> list[Path]:
    dep = tiny_lib(tmp, "libdep.so.1")
    libs = [
        dep,
        tiny_lib(tmp, "libneeds.so.2", needed=(dep,)),
        tiny_lib(tmp, "librunpath.so.1", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib",
                 needed=(dep,)),
        tiny_lib(tmp, "librpath.so.1", "-Wl,--disable-new-dtags", "-Wl,-rpath,/opt/x:$LIB",
                 needed=(dep,)),
    ]
    for lib in libs:
        shutil.copy(lib, corpus / lib.name)
    return libs


def ldcache_seeds(tmp: Path, libs: list[Path], corpus: Path) -> None:
    root = tmp / "tree"
    (root / MULTIARCH).mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/ld.so.conf").write_text(f"/{MULTIARCH}\n")
    for lib in libs[:3]:
        shutil.copy(lib, root / MULTIARCH / lib.name)
    for fmt in ("new", "compat", "old"):
        subprocess.run(["/sbin/ldconfig", "-X", "-c", fmt, "-r", str(root)], check=True)
        shutil.copy(root / "etc/ld.so.cache", corpus / f"cache-{fmt}")


RESOLVE_SEEDS = {
    "chain": "F/usr/lib/x86_64-linux-gnu/liba.so.1\tlibb.so.1\n"
             "F/usr/lib/x86_64-linux-gnu/libb.so.1\tlibc.so.6\n"
             "Nliba.so.1\n",
    "symlinks": "L/lib/x86_64-linux-gnu\t../usr/lib/x86_64-linux-gnu\n"
                "F/usr/lib/x86_64-linux-gnu/libz.so.1.2\n"
                "L/usr/lib/x86_64-linux-gnu/libz.so.1\tlibz.so.1.2\n"
                "L/usr/lib64/libz.so.1\t/usr/lib/x86_64-linux-gnu/libz.so.1\n"
                "Q/lib/x86_64-linux-gnu/libz.so.1\nQ/usr/lib64/../lib64/./libz.so.1\n"
                "Nlibz.so.1\n",
    "escape": "L/usr/lib/libout.so.1\t../../../../../../etc/passwd\n"
              "L/usr/lib64/loop\tloop\nL/a\t/b\nL/b\t/a/..\n"
              "Q/usr/lib/libout.so.1\nQ/usr/lib64/loop/x\nQ/a/b/c\nNlibout.so.1\n",
    "cache": "F/opt/x/libc1.so.1\tS:libc1.so.1\tlibdep.so.1\n"
             "F/opt/y/libdep.so.1\n"
             "C/libc1.so.1\t/opt/x/libc1.so.1\nClibc1.so.1\t/opt/x/libc1.so.1\n"
             "Clibdep.so.1\t/../../opt/y/libdep.so.1\nNlibc1.so.1\n",
    "runpath": "F/opt/app/lib/libapp.so.1\tR:$ORIGIN/../private:/nonexistent\tlibpriv.so.1\n"
               "F/opt/app/private/libpriv.so.1\tP:${ORIGIN}\tlibexcluded.so.1\n"
               "N/opt/app/lib/libapp.so.1\n",
    "cycle": "F/usr/lib/liba.so.1\tlibb.so.1\nF/usr/lib/libb.so.1\tliba.so.1\n"
             "F/usr/lib/libself.so.1\tlibself.so.1\nNlibself.so.1\nNliba.so.1\n",
}


def main() -> None:
    corpus = HERE / "corpus"
    for name in ("ldcache", "elffile", "resolve"):
        shutil.rmtree(corpus / name, ignore_errors=True)
        (corpus / name).mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        libs = elf_seeds(Path(tmp), corpus / "elffile")
        ldcache_seeds(Path(tmp), libs, corpus / "ldcache")
    for name, text in RESOLVE_SEEDS.items():
        (corpus / "resolve" / name).write_text(text)


if __name__ == "__main__":
    main()
