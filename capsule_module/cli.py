"""capsule-shim: the command line.

  capsule-shim symbols SONAME [--prefix DIR] [--arch ARCH]   symbols JSON on stdout
  capsule-shim init SONAME [--prefix DIR] [--search-prefix DIR] [--arch ARCH] [-o DIR] [--force]
                                                  a standalone Meson shim project
  capsule-shim ldd [--timeout S] [--root DIR] PROGRAM [ARG...]  run PROGRAM and show which objects
                                                  live in which namespace, from which tree
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, NoReturn

from . import DEFAULT_PREFIX, __version__
from . import arch as arches
from .errors import CapsuleError

if TYPE_CHECKING:
    import argparse

    from .arch import Arch
    from .elfreader import LibraryColumns, LibrarySymbols

# Each command imports what it uses when it runs: `capsule-shim symbols` on a
# big library should not pay for the renderer's or ldd's imports (subprocess,
# tempfile ...), nor for argparse when its arguments are plain (_symbols_args).

PROG = "capsule-shim"
EXIT_ERROR = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    import argparse

    class _Parser(argparse.ArgumentParser):
        """Usage errors as one `capsule-shim: ...` line, exit status 2."""

        def error(self, message: str) -> NoReturn:
            sys.stderr.write(f"{PROG}: {message} (see {self.prog} --help)\n")
            sys.exit(EXIT_USAGE)

    p = _Parser(prog=PROG, description="Generate capsule shims: libraries with a real "
                "library's soname and symbols that load it, with its dependencies, "
                "from another tree at run time.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sym = sub.add_parser("symbols", help="print a library's symbols file (JSON) on stdout",
                         description="Print the exported symbols and versions of SONAME, "
                         "as found under --prefix, as a capsule symbols file (JSON).")
    sym.add_argument("soname", metavar="SONAME", help="soname (libz.so.1) or path of a library")
    sym.add_argument("--prefix", default="/", metavar="DIR",
                     help="tree to find SONAME in (default: /)")
    _add_arch(sym, "whose library to find (default: this machine's; a library given "
              "as a path is read as it is unless --arch is given)")
    ini = sub.add_parser("init", help="write a standalone Meson project building a shim",
                         description="Write a small Meson project (meson.build, the "
                         "symbols file, README.md) that builds a shim for SONAME without "
                         "the library being present.")
    ini.add_argument("soname", metavar="SONAME", help="soname (libz.so.1) or path of a library")
    ini.add_argument("--prefix", default=DEFAULT_PREFIX, metavar="DIR",
                     help="tree the shim loads the real library from at run time "
                     f"(default: {DEFAULT_PREFIX}, as capsule.shim())")
    ini.add_argument("--search-prefix", metavar="DIR",
                     help="tree to read the library from now (default: --prefix; "
                     "/ for this machine's own library)")
    _add_arch(ini, "the shim is for (default: this machine's)")
    ini.add_argument("--share", action="append", default=None, metavar="SONAME",
                     help="a soname whose one copy, the program's, the capsule uses too "
                     "(replaces libcapsule's default list: libX11.so.6, libxcb.so.1, "
                     "libwayland-client.so.0); repeatable")
    ini.add_argument("--no-share", action="store_true",
                     help="share no soname with the program (not even the default list)")
    ini.add_argument("-o", "--output", metavar="DIR",
                     help="project directory to write (default: ./SONAME-shim)")
    ini.add_argument("--force", action="store_true",
                     help="overwrite an existing meson.build in the project directory")
    lds = sub.add_parser("ldd", help="run a program and show its capsule namespaces",
                         description="Run PROGRAM (with the environment it would have, "
                         "e.g. the shims first on LD_LIBRARY_PATH) with CAPSULE_DEBUG=ns, "
                         "then list every loaded object by namespace: the program's own, "
                         "the shims, and for each capsule whether the object came from "
                         "its prefix. Exit status 1 when an object in a capsule comes "
                         "from outside its prefix, or a shimmed library's real copy was "
                         "loaded outside the capsule.")
    lds.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                     help="stop PROGRAM after this long and show the last map (default 30)")
    lds.add_argument("--root", default="/", metavar="DIR",
                     help="the program runs in a container whose root is DIR here "
                     "(bwrap --bind DIR /): its paths are read under DIR (default: /)")
    lds.add_argument("argv", nargs=argparse.REMAINDER, metavar="PROGRAM [ARG...]",
                     help="the program and its arguments")
    chk = sub.add_parser("check", help="would these libraries load on this machine's glibc?",
                         description="Resolve each SONAME and its dependencies under the "
                         "prefix, as libcapsule does, and report every glibc version they "
                         "need that this machine's glibc lacks (a capsule runs on the "
                         "program's glibc). Exit status 1 when some are missing.")
    chk.add_argument("sonames", nargs="+", metavar="SONAME")
    chk.add_argument("--prefix", default="/host", metavar="DIR",
                     help="tree to resolve them in (default: /host)")
    return p


def _symbols_args(argv: list[str]) -> argparse.Namespace | None:
    """The arguments of `symbols SONAME [--prefix DIR] [--arch ARCH]` in their
    plain spellings, read without argparse: importing it and building the
    parser of every command was a fifth of what `capsule-shim symbols` spends
    before it opens the library. None for anything else (help, an option
    given twice, abbreviated or unknown, a value that starts with "-", ...):
    argparse parses it, with its messages."""
    if argv[:1] != ["symbols"]:
        return None
    found: dict[str, str] = {}
    words = iter(argv[1:])
    for word in words:
        option, eq, value = word.partition("=")
        if option in ("--prefix", "--arch"):
            value = value if eq else next(words, "-")
            key = option[2:]
        else:
            key, value = "soname", word
        if key in found or value.startswith("-"):
            return None
        found[key] = value
    if "soname" not in found or found.get("arch", "x86_64") not in arches.ARCHES:
        return None
    return SimpleNamespace(command="symbols", soname=found["soname"],  # type: ignore[return-value]
                           prefix=found.get("prefix", "/"), arch=found.get("arch"))


def _add_arch(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--arch", choices=sorted(arches.ARCHES), metavar="ARCH",
                        help=f"architecture ({', '.join(sorted(arches.ARCHES))}) {what}")


def _cmd_check(args: argparse.Namespace) -> int:
    from . import glibccheck
    status, line = glibccheck.report(args.sonames, args.prefix)
    (sys.stderr if status else sys.stdout).write(f"{PROG}: {line}\n")
    return status


def _cmd_ldd(args: argparse.Namespace) -> int:
    from . import ldd
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise CapsuleError("ldd needs a PROGRAM to run")
    if not Path(args.root).is_dir():
        raise CapsuleError(f"--root {args.root!r} is not a directory")
    nsmap, status, own_stderr = ldd.run_with_map(argv, args.timeout)
    how = (f"stopped after {args.timeout:g} s" if status is None
           else f"exited with status {status}")
    failure = next((line for line in own_stderr.splitlines() if line.startswith("capsule: ")),
                   None)
    if nsmap is None and failure:
        raise CapsuleError(f"program {argv[0]} {how}: {failure}")
    if nsmap is None:
        raise CapsuleError(f"program {argv[0]} {how} without initialising any capsule shim "
                           "(are the shims first on LD_LIBRARY_PATH?)")
    nsmap.root = args.root
    sys.stdout.write(ldd.format_map(nsmap))
    if status:
        tail = "\n".join(own_stderr.splitlines()[-5:])
        sys.stderr.write(f"{PROG}: {argv[0]} {how}" + (f"; its last words:\n{tail}\n" if tail
                                                       else "\n"))
    return 1 if ldd.outside(nsmap) or ldd.bypassed(nsmap) else 0


def _is_path(soname: str) -> bool:
    return "/" in soname


def _arch(args: argparse.Namespace) -> tuple[Arch, str]:
    """The architecture asked for, or this machine's, and where it came from."""
    if args.arch is not None:
        return arches.get(args.arch), "as --arch asked"
    return arches.of_machine(), "this machine's architecture (--arch chooses another)"


def _read(soname: str, tree: str, arch: Arch | None) -> tuple[LibraryColumns, Path]:
    """The library soname (or path) for arch under tree, and its path; a path
    is read whatever its architecture when arch is None."""
    from .elfreader import read_library_columns
    from .locate import check_soname, find_library
    path = find_library(soname, tree, arch or arches.X86_64)
    lib = read_library_columns(path)
    check_soname(soname, path, lib.soname)
    if arch is not None:
        arches.require_library(arch, lib.elf_class, lib.machine, soname)
    return lib, path


def _say_arch(lib: LibraryColumns, path: Path, why: str) -> None:
    """One line on stderr: the library read and the architecture it is for."""
    known = arches.of_library(lib.elf_class, lib.machine)
    what = known.description if known else f"ELF{lib.elf_class}, {lib.machine}"
    sys.stderr.write(f"{PROG}: {lib.soname}: {what}, {why}; read from {path}\n")


def _cmd_symbols(args: argparse.Namespace) -> int:
    from .elfreader import without_gc
    # No cycle collection while the command runs: libLLVM's 46k symbols would
    # otherwise be traversed by the first collections after the read.
    with without_gc():
        return _print_symbols(args)


def _print_symbols(args: argparse.Namespace) -> int:
    from . import symbolsfile
    if args.arch is None and _is_path(args.soname):
        arch, why = None, "the library's own architecture"
    else:
        arch, why = _arch(args)
    lib, path = _read(args.soname, args.prefix, arch)
    text = symbolsfile.dump(lib)
    out = getattr(sys.stdout, "buffer", None)  # bytes: 8 MB for libLLVM, ASCII (ensure_ascii)
    if out is None:  # a text-only stream put there by a caller of main()
        sys.stdout.write(text)
    else:
        sys.stdout.flush()
        out.write(text.encode("ascii"))
        out.flush()  # a closed pipe fails here, before anything is said on stderr
    _say_arch(lib, path, why)
    return 0


def meson_string(text: str) -> str:
    """A single-quoted Meson string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _project_name(soname: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", soname) + "-shim"


def _share_arg(share: list[str] | None) -> str:
    """The `share:` keyword argument for the project's shim() call, or nothing
    (None: libcapsule's default list)."""
    if share is None:
        return ""
    return ", share: [" + ", ".join(meson_string(s) for s in share) + "]"


def _check_share(share: list[str] | None, soname: str) -> None:
    for name in share or []:
        if not name or "/" in name or name in (".", "..") or ".so" not in name \
                or any(c.isspace() for c in name):
            raise CapsuleError(f"--share {name!r} must be a library soname such as libX11.so.6")
        if name == soname:
            raise CapsuleError(f"--share {name!r} is the shim's own soname")


def _own_meson() -> str:
    """The command of the Meson installed beside this capsule-shim (pip puts
    both in one environment, whose Meson has the import hook), else `meson`."""
    import shlex
    meson = Path(sys.executable).parent / "meson"
    return shlex.quote(str(meson)) if meson.is_file() else "meson"


def _cross_files(arch: Arch) -> tuple[dict[str, str], str, str]:
    """For a shim of another architecture than this machine's: the cross
    file to write into the project (capsule's own for arch), the `meson
    setup` argument naming it and a README note; nothing for this machine's."""
    from .resources import cross_file
    if arch == arches.of_machine():
        return {}, "", ""
    path = cross_file(arch.triplet)
    if path is None:
        return {}, "", (f"\nThe shim is for {arch.name}: give `meson setup` a cross file "
                        f"for it (`--cross-file FILE`, `[host_machine]` cpu_family "
                        f"'{arch.meson_cpu_family}').\n")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CapsuleError(f"cross file {path} cannot be read ({exc.strerror})") from None
    return ({path.name: text}, f"--cross-file {path.name} ",
            f"\nThe shim is for {arch.name}: `{path.name}` (capsule's cross file) makes "
            "Meson build it, and libcapsule, for that architecture.\n")


def _project_files(lib: LibrarySymbols | LibraryColumns, prefix: str,
                   share: list[str] | None = None,
                   arch: Arch = arches.X86_64) -> dict[str, str]:
    from . import symbolsfile
    from .render import c_comment, fill_template
    from .resources import templates_dir
    symbols_name = f"{lib.soname}.symbols.json"
    tdir = templates_dir() / "project"
    values = {"SONAME_COMMENT": c_comment(lib.soname), "SYMBOLS_COMMENT": c_comment(symbols_name),
              "PROJECT": meson_string(_project_name(lib.soname)),
              "SONAME": meson_string(lib.soname), "PREFIX": meson_string(prefix),
              "SYMBOLS": meson_string(symbols_name), "SHARE": _share_arg(share)}
    cross, cross_arg, cross_note = _cross_files(arch)
    readme = dict(values, SONAME=lib.soname, PREFIX=prefix, SYMBOLS=symbols_name,
                  MESON=_own_meson(), CROSS=cross_arg, CROSS_NOTE=cross_note)
    out = dict(cross)
    for name, vals in (("meson.build", values), ("README.md", readme)):
        path = tdir / f"{name}.in"
        try:
            template = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CapsuleError(f"template {path} cannot be read ({exc.strerror})") from None
        out[name] = fill_template(template, vals, path.name)
    out[symbols_name] = symbolsfile.dump(lib)
    return out


def _cmd_init(args: argparse.Namespace) -> int:
    from .render import write_if_changed
    if not args.prefix.startswith("/"):
        raise CapsuleError(f"--prefix {args.prefix!r} must be an absolute path "
                           "(the shim loads the library from it at run time)")
    reads_tree = "/" not in args.soname or args.soname.startswith("/")  # not ./lib.so
    if args.search_prefix is None and reads_tree and not os.path.isdir(args.prefix):
        raise CapsuleError(f"--prefix {args.prefix} is not a directory on this machine: give "
                           f"--search-prefix DIR, the tree to read {args.soname} from now "
                           "(--search-prefix / for this machine's own)")
    arch, why = _arch(args)
    lib, _path = _read(args.soname, args.search_prefix or args.prefix, arch)
    if args.no_share and args.share:
        raise CapsuleError("--no-share and --share exclude each other")
    share = [] if args.no_share else args.share
    _check_share(share, lib.soname)
    out = Path(args.output or f"{lib.soname}-shim")
    if out.exists() and not out.is_dir():
        raise CapsuleError(f"output {out} exists and is not a directory")
    if (out / "meson.build").exists() and not args.force:
        raise CapsuleError(f"{out / 'meson.build'} already exists (use --force to overwrite)")
    files = _project_files(lib, args.prefix, share, arch)
    for name, text in files.items():
        write_if_changed(out / name, text)
    print(f"{PROG}: wrote a shim project for {lib.soname} ({len(lib.columns.name)} symbols) in "
          f"{out}: {arch.description}, {why}")
    _say_not_buildable(arch)
    return 0


def _say_not_buildable(arch: Arch) -> None:
    """A note on stderr when shims for arch cannot be built yet."""
    try:
        arches.require_shim_runtime(arch)
    except CapsuleError as exc:
        sys.stderr.write(f"{PROG}: note: {exc}\n")


def main(argv: list[str] | None = None) -> int:
    """Run capsule-shim; returns the exit status."""
    args = _symbols_args(sys.argv[1:] if argv is None else argv) or _parser().parse_args(argv)
    try:
        commands = {"symbols": _cmd_symbols, "init": _cmd_init, "ldd": _cmd_ldd,
                    "check": _cmd_check}
        return commands[args.command](args)
    except CapsuleError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
