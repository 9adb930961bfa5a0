"""Parse `readelf --dyn-syms -V -d -W` into the reader's terms: the oracle."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_TYPES = {"FUNC": "func", "OBJECT": "object", "TLS": "tls", "IFUNC": "ifunc",
          "NOTYPE": "notype", "COMMON": "object"}
_BINDS = {"GLOBAL": "global", "WEAK": "weak", "UNIQUE": "unique"}
_LINKER_MADE = {"_init", "_fini", "_edata", "_end", "__bss_start"}
_SYM = re.compile(r"^\s*\d+: [0-9a-f]+\s+(\S+) (\w+)\s+(\w+)\s+(\w+)\s+(\S+) (.*)$")
_VERDEF = re.compile(r"^\s*0x[0-9a-f]+: Rev: \d+\s+Flags: (.*?)\s+Index: (\d+)\s+Cnt: \d+\s+"
                     r"Name: (\S+)")
_PARENT = re.compile(r"^\s*0x[0-9a-f]+: Parent \d+: (\S+)")
_FLAGS = {"BASE": 1, "WEAK": 2, "INFO": 4}


@dataclass
class Oracle:
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    versions: list[tuple[str, list[str], int]] = field(default_factory=list)
    symbols: list[tuple[str, str, int, str, str | None, bool]] = field(default_factory=list)


def _flags(text: str) -> int:
    return 0 if text == "none" else sum(_FLAGS[f.strip()] for f in text.split("|"))


def _verdefs(lines: list[str]) -> list[tuple[str, list[str], int]]:
    out: list[tuple[str, list[str], int]] = []
    for line in lines:
        m = _VERDEF.match(line)
        if m:
            out.append((m.group(3), [], _flags(m.group(1))))
        elif (p := _PARENT.match(line)) and out:
            out[-1][1].append(p.group(1))
    return out


def _symbol(m: re.Match[str], version_names: set[str]) -> tuple | None:
    size, typ, bind, vis, ndx, name = m.groups()
    name = name.split(" (")[0]
    if ndx == "UND" or typ not in _TYPES or bind not in _BINDS:
        return None
    if vis not in ("DEFAULT", "PROTECTED"):
        return None
    version, default = None, True
    if "@@" in name:
        name, version = name.split("@@", 1)
    elif "@" in name:
        name, version = name.split("@", 1)
        default = False
    if name in _LINKER_MADE or (ndx == "ABS" and name in version_names):
        return None
    return (name, _TYPES[typ], int(size, 0), _BINDS[bind], version, default)


def readelf(path: Path) -> Oracle:
    text = subprocess.run(["readelf", "--dyn-syms", "-V", "-d", "-W", str(path)],
                          check=True, capture_output=True, text=True).stdout
    lines = text.splitlines()
    o = Oracle()
    for line in lines:
        if m := re.search(r"\(SONAME\)\s+Library soname: \[(.*)\]", line):
            o.soname = m.group(1)
        elif m := re.search(r"\(NEEDED\)\s+Shared library: \[(.*)\]", line):
            o.needed.append(m.group(1))
    defs = _verdefs(lines)
    o.versions = [d for d in defs if not d[2] & 1]
    names = {d[0] for d in defs}
    in_dynsym = False
    for line in lines:
        if line.startswith("Symbol table '.dynsym'"):
            in_dynsym = True
        elif not line.strip():
            in_dynsym = False
        elif in_dynsym and (m := _SYM.match(line)):
            sym = _symbol(m, names)
            if sym is not None:
                o.symbols.append(sym)
    return o
