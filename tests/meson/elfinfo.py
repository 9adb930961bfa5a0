"""What a built shim's dynamic section says (read with pyelftools)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile


@dataclass
class Dynamic:
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    runpath: str | None = None


def dynamic(path: Path) -> Dynamic:
    out = Dynamic()
    with open(path, "rb") as f:
        for section in ELFFile(f).iter_sections():
            if not isinstance(section, DynamicSection):
                continue
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_SONAME":
                    out.soname = tag.soname
                elif tag.entry.d_tag == "DT_NEEDED":
                    out.needed.append(tag.needed)
                elif tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                    out.runpath = getattr(tag, "runpath", None) or getattr(tag, "rpath", None)
    return out
