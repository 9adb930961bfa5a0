"""Render a shim (C source + version script) from libraries' symbols, using
shim-templates/shim.c.in and shim-templates/shim.map.in."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import arch as arches
from .arch import Arch
from .elfreader import LibrarySymbols, Symbol, VersionDef, without_gc
from .errors import CapsuleError
from .resources import templates_dir

# Symbol names go into quoted assembler names and C strings; version names into
# a linker version script, whose lexer accepts only these characters.
_SYMBOL_NAME = re.compile(r"[!#-?A-[\]-~]+")  # printable ASCII without space " @ \
_VERSION_NAME = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$-]*")
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
# Names the shim template defines start with this; libcapsule's entry points are
# called by the shim. A target symbol with such a name would collide with them.
RESERVED_PREFIX = "__capsule_"
_LIBCAPSULE_ENTRY_POINTS = frozenset({"capsule_shim_init", "capsule_shim_preflight",
                                      "capsule_shim_unresolved", "capsule_shim_wait"})
_KIND_ENUM = {"func": "CAPSULE_SYMBOL_FUNC", "ifunc": "CAPSULE_SYMBOL_FUNC",
              "object": "CAPSULE_SYMBOL_DATA", "notype": "CAPSULE_SYMBOL_DATA",
              "tls": "CAPSULE_SYMBOL_TLS"}
_ASM_TYPE = {"func": "@function", "ifunc": "@function", "object": "@object",
             "notype": "@notype", "tls": "@tls_object"}
_UINT32_MAX = 0xFFFFFFFF
_FUNC_KINDS = ("func", "ifunc")
_DATA_SECTION = {"object": ".data", "notype": ".data", "tls": '.tbss,"awT",@nobits'}


@dataclass(frozen=True)
class RenderedShim:
    c_source: str
    version_script: str | None


def _byte_escape(b: int) -> str:
    ch = chr(b)
    if ch in '"\\?':
        return "\\" + ch
    if ch == "\n":
        return "\\n"
    return ch if 0x20 <= b < 0x7F else f"\\{b:03o}"


_ASCII_ESCAPES = {b: _byte_escape(b) for b in range(128)}


def c_string(text: str) -> str:
    """A C string literal for text (UTF-8 bytes; 3-digit octal escapes for
    non-printable bytes; '?' escaped so no trigraph can form)."""
    if text.isascii():
        return '"' + text.translate(_ASCII_ESCAPES) + '"'
    data = text.encode("utf-8", "surrogateescape")
    return '"' + "".join(_byte_escape(b) for b in data) + '"'


def c_comment(text: str) -> str:
    """text made safe inside a /* */ comment on one line."""
    safe = "".join(c if c.isprintable() else "?" for c in text)
    return safe.replace("*/", "* /")


def require_arch(lib: LibrarySymbols, name: str | os.PathLike[str],
                 arch: Arch = arches.X86_64) -> None:
    """CapsuleError naming the library (its path or soname) unless it is of
    arch's ELF class and machine (x86_64 ELF64 by default)."""
    arches.require_library(arch, lib.elf_class, lib.machine, os.fspath(name))


def _check_libs(libs: list[LibrarySymbols], arch: Arch) -> None:
    if not libs:
        raise CapsuleError("no target library given to render a shim for")
    for lib in libs:
        require_arch(lib, lib.soname, arch)
        for v in lib.versions:
            for name in (v.name, *v.parents):
                if not _VERSION_NAME.fullmatch(name):
                    raise CapsuleError(f"library {lib.soname} has a version name {name!r} "
                                       "that cannot be written in a version script")


def _check_symbol(lib: LibrarySymbols, sym: Symbol) -> None:
    if not _SYMBOL_NAME.fullmatch(sym.name):
        raise CapsuleError(f"library {lib.soname} exports a symbol {sym.name!r} whose name "
                           "a shim cannot define (only printable ASCII without space, "
                           "quote, backslash or '@')")
    if sym.name.startswith(RESERVED_PREFIX) or sym.name in _LIBCAPSULE_ENTRY_POINTS:
        raise CapsuleError(f"library {lib.soname} exports a symbol {sym.name!r} whose name "
                           f"is reserved for the shim itself (names starting with "
                           f"{RESERVED_PREFIX!r} and libcapsule's entry points)")
    if sym.kind not in ("func", "ifunc") and sym.size > _UINT32_MAX:
        raise CapsuleError(f"library {lib.soname} exports a symbol {sym.name!r} of "
                           f"{sym.size} bytes: a shim supports variables up to 4 GiB")


def merge_symbols(libs: list[LibrarySymbols]) -> list[Symbol]:
    """Symbols of all libs, first definition winning: per (name, version) for
    hidden versions, per name for the default/unversioned definition."""
    seen_hidden: set[tuple[str, str | None]] = set()
    seen_default: set[str] = set()
    out: list[Symbol] = []
    for lib in libs:
        for sym in lib.symbols:
            _check_symbol(lib, sym)
            if sym.default:
                if sym.name in seen_default:
                    continue
                seen_default.add(sym.name)
            else:
                if (sym.name, sym.version) in seen_hidden:
                    continue
                seen_hidden.add((sym.name, sym.version))
            out.append(sym)
    return out


def merge_versions(libs: list[LibrarySymbols]) -> list[VersionDef]:
    """Version definitions of all libs (first wins per name), parents first."""
    by_name: dict[str, VersionDef] = {}
    for lib in libs:
        for v in lib.versions:
            by_name.setdefault(v.name, v)
    ordered: list[VersionDef] = []
    placed: set[str] = set()

    def place(v: VersionDef, depth: int) -> None:
        if v.name in placed or depth > len(by_name):
            return
        placed.add(v.name)
        for p in v.parents:
            if p in by_name:
                place(by_name[p], depth + 1)
        ordered.append(v)

    for v in by_name.values():
        place(v, 0)
    return ordered


def _asm_name(sym: Symbol) -> str:
    """Quoted assembler name of the exported symbol (with its version)."""
    if sym.version is None:
        return f'"{sym.name}"'
    return f'"{sym.name}{"@@" if sym.default else "@"}{sym.version}"'


def _unique_export_lines(sym: Symbol, local: str) -> list[str]:
    """STB_GNU_UNIQUE exists for objects only (gas: @gnu_unique_object), and
    .symver loses it, so the object is defined under its versioned name."""
    name = _asm_name(sym)
    return [f"  .globl {name}", f"  .set {name}, {local}",
            f"  .type {name}, @gnu_unique_object", f"  .size {name}, {sym.size}"]


def _export_text(i: int, sym: Symbol, local: str) -> str:
    """The directives exporting `local` as sym, one per line."""
    if sym.binding == "unique" and sym.kind == "object":
        return "\n".join(_unique_export_lines(sym, local))
    # Unique symbols of other kinds (none seen in practice) are exported global.
    directive = ".weak" if sym.binding == "weak" else ".globl"
    if sym.version is None:
        name, symver = f'"{sym.name}"', ""
    else:
        name = f"__capsule_alias_{i}"
        symver = f"\n  .symver {name}, {_asm_name(sym)}, remove"
    size = "" if sym.kind in _FUNC_KINDS else f"\n  .size {name}, {sym.size}"
    return (f"  {directive} {name}\n  .set {name}, {local}\n"
            f"  .type {name}, {_ASM_TYPE[sym.kind]}{size}{symver}")


def _data_lines(i: int, sym: Symbol) -> list[str]:
    label = f"__capsule_data_{i}"
    lines = [f"  .pushsection {_DATA_SECTION[sym.kind]}", "  .p2align 4", f"{label}:"]
    if sym.size:
        lines.append(f"  .zero {sym.size}")
    kind = "@tls_object" if sym.kind == "tls" else "@object"
    lines += [f"  .type {label}, {kind}", f"  .size {label}, {sym.size}", "  .popsection"]
    return lines


def _stub_text(i: int, sym: Symbol) -> str:
    if sym.kind in _FUNC_KINDS:
        return f"CAPSULE_STUB {i}\n{_export_text(i, sym, f'__capsule_stub_{i}')}"
    data = "\n".join(_data_lines(i, sym))
    return f"{data}\n{_export_text(i, sym, f'__capsule_data_{i}')}"


def _asm_stubs(symbols: list[Symbol]) -> str:
    """The stubs' assembly, as C string literals. Every name and version in
    it passed _check_symbol and _check_libs (printable ASCII), so the text
    needs no check of its own (13 MB for libLLVM)."""
    return _c_string_text("\n".join([_stub_text(i, sym) for i, sym in enumerate(symbols)]),
                          "    ", printable=True)


def _stub_code(arch: Arch, stubs: str) -> str:
    """The architecture's stub machinery (shim-templates/arch/NAME.stubs.in)
    holding the stubs' assembly."""
    name = f"arch/{arch.name}.stubs.in"
    return fill_template(_read_template(name), {"ASM_STUBS": stubs}, name)


def _c_string_text(text: str, indent: str, end: str = "\\n", *,
                   printable: bool = False) -> str:
    """One C string literal per line of text, each on its own source line,
    `end` (an escape: a newline or a NUL) closing each: c_string for every
    line, but escaped in one pass over the whole text when it is printable
    ASCII (libLLVM's shim has 290k such lines); `printable`: known to be."""
    if not (printable or (text.isascii() and text.replace("\n", " ").isprintable())):
        return "\n".join(f"{indent}{c_string(line)[:-1]}{end}\"" for line in text.split("\n"))
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")
    return f'{indent}"' + text.replace("\n", f'{end}"\n{indent}"') + f'{end}"'


def _c_string_lines(lines: list[str], indent: str, end: str) -> str:
    """_c_string_text for a list of strings (none of which holds a newline)."""
    text = "\n".join(lines)
    if text.count("\n") != len(lines) - 1:
        return "\n".join(f"{indent}{c_string(line)[:-1]}{end}\"" for line in lines)
    return _c_string_text(text, indent, end)


class _StringBlob:
    """The shim's string blob: each distinct string once, NUL-terminated, at a
    byte offset; offset 0 is the empty string (an unversioned symbol)."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {"": 0}
        self.size = 1

    def add(self, text: str) -> int:
        offset = self.offsets.get(text)
        if offset is not None:
            return offset
        offset = self.offsets[text] = self.size
        self.size += (len(text) if text.isascii()
                      else len(text.encode("utf-8", "surrogateescape"))) + 1
        if self.size > _UINT32_MAX:
            raise CapsuleError("the shim's symbol names and versions exceed 4 GiB")
        return offset

    def literals(self, indent: str) -> str:
        """Each string its own literal, so no escape runs into the next one."""
        return _c_string_lines(list(self.offsets), indent, "\\0")


def _table_size(sym: Symbol) -> int:
    """The table's size field: what libcapsule needs (the size of data it may copy)."""
    return 0 if sym.kind in ("func", "ifunc") else sym.size


def _symbol_table(symbols: list[Symbol]) -> tuple[str, str]:
    """(string blob literals, table rows) for shim.c.in."""
    blob = _StringBlob()
    rows = []
    for sym in symbols:
        name = blob.add(sym.name)
        version = blob.add(sym.version) if sym.version is not None else 0
        rows.append(f"    {{ {name}u, {version}u, {_table_size(sym)}u, {_KIND_ENUM[sym.kind]} }},")
    return blob.literals("    "), "\n".join(rows)


def _string_list(items: list[str]) -> str:
    return "".join(f"{c_string(s)}, " for s in items)


def fill_template(template: str, values: dict[str, str], name: str) -> str:
    """Replace every @KEY@ of template; an unknown key is a template bug."""
    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise CapsuleError(f"template {name} has an unknown placeholder @{m.group(1)}@")
        return values[m.group(1)]
    return _PLACEHOLDER.sub(sub, template)


def _read_template(name: str) -> str:
    path = templates_dir() / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CapsuleError(f"shim template {path} cannot be read ({exc.strerror})") from None


def _version_script(soname: str, versions: list[VersionDef]) -> str | None:
    if not versions:
        return None
    known = {v.name for v in versions}
    nodes = []
    for v in versions:
        # ld records a node's parents in the reverse of the script's order.
        parents = " ".join(p for p in reversed(v.parents) if p in known)
        nodes.append(f"{v.name} {{ }}{' ' + parents if parents else ''};")
    return fill_template(_read_template("shim.map.in"),
                         {"SONAME_COMMENT": c_comment(soname), "VERSION_NODES": "\n".join(nodes)},
                         "shim.map.in")


def render_shim(libs: list[LibrarySymbols], *, soname: str, prefix: str,
                exclude: list[str], exports: list[str],
                share: list[str] | tuple[str, ...] | None = None,
                arch: Arch = arches.X86_64) -> RenderedShim:
    """C source and version script of the shim for libs[0] (plus libs[1:]),
    all of them arch's libraries.

    share: sonames whose one copy, the program's, the capsule uses too; None
    leaves the choice to libcapsule's default list at run time."""
    if not soname:
        raise CapsuleError("empty soname given for the shim")
    _check_libs(libs, arch)
    arches.require_shim_runtime(arch)
    with without_gc():
        symbols = merge_symbols(libs)
        strings, table = _symbol_table(symbols)
        stubs = _asm_stubs(symbols)
    values = {
        "SONAME_COMMENT": c_comment(soname), "SONAME": c_string(soname),
        "PREFIX": c_string(prefix), "EXCLUDE": _string_list(exclude),
        "EXPORTS": _string_list(exports), "SHARE": _string_list(list(share or [])),
        "SHARE_REF": "NULL" if share is None else "__capsule_shim_share",
        "SYMBOL_COUNT": str(len(symbols)),
        "SYMBOL_STRINGS": strings, "SYMBOL_TABLE": table,
        "STUB_CODE": _stub_code(arch, stubs),
    }
    c_source = fill_template(_read_template("shim.c.in"), values, "shim.c.in")
    return RenderedShim(c_source, _version_script(soname, merge_versions(libs)))


def write_if_changed(path: Path, text: str) -> None:
    """Write text to path atomically (temp file + rename), unless it is already there."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CapsuleError(f"cannot write {path} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise CapsuleError(f"cannot write {path} ({exc.strerror})") from None


def write_shim(rendered: RenderedShim, out_dir: Path,
               basename: str) -> tuple[Path, Path | None]:
    """Write <basename>.c and <basename>.map (if any) into out_dir."""
    out_dir = Path(out_dir)
    c_path = out_dir / f"{basename}.c"
    write_if_changed(c_path, rendered.c_source)
    if rendered.version_script is None:
        return c_path, None
    map_path = out_dir / f"{basename}.map"
    write_if_changed(map_path, rendered.version_script)
    return c_path, map_path
