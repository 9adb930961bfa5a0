"""Resolutions kept across processes (libcapsule/plancache.c): a program's
second start takes the first one's resolution instead of reading every
object of the prefix again, and a change to anything the resolution
depended on (a file, its directory, a candidate passed over, the prefix's
ld.so.cache) makes it resolve afresh. A file that is not the user's own,
private, or does not parse is never taken; the cache can be turned off."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from programs import parse, run
from test_runtime import MODES

from build import MULTIARCH, Built, build_lib, build_program, make_prefix, write_ldcache


@dataclass
class Tree:
    prefix: Path
    cache: Path
    env: dict[str, str]
    program: Path

    def start(self, *, without: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in self.env.items() if k != without}
        proc = run([self.program], {**env, **extra})
        assert proc.returncode == 0, proc.stderr
        return proc

    def plans(self) -> list[Path]:
        return sorted(self.cache.glob("*.plan")) if self.cache.is_dir() else []


@pytest.fixture(scope="module")
def program(built: Built) -> Path:
    return build_program(built, built.root / "prog-plancache", MODES["lazy"], [])


@pytest.fixture
def tree(built: Built, program: Path, tmp_path: Path) -> Tree:
    """The demo's prefix copied (so that a test may change it) and a cache
    directory of the test's own."""
    prefix = tmp_path / "prefix"
    shutil.copytree(built.prefix, prefix, symlinks=True)
    cache = tmp_path / "cache"
    env = {"LD_LIBRARY_PATH": str(built.shim_dir), "CAPSULE_PREFIX": str(prefix),
           "CAPSULE_CACHE_DIR": str(cache), "CAPSULE_DEBUG": "cache,search,path"}
    return Tree(prefix, cache, env, program)


def cache_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("capsule[cache]: ")]


def searched(proc: subprocess.CompletedProcess[str]) -> bool:
    return "capsule[search]: " in proc.stderr


def dep_value(built: Built, out: Path, value: int) -> Path:
    """A libdemodep.so.1 whose demodep_value() gives value."""
    src = out / "demodep_variant.c"
    out.mkdir(parents=True, exist_ok=True)
    src.write_text(f"int demodep_value(void) {{ return {value}; }}\n")
    return build_lib(out, "libdemodep.so.1", [src])


def test_second_start_takes_the_first_ones_resolution(tree: Tree) -> None:
    first = tree.start()
    assert searched(first)
    assert any(ln.endswith("kept (2 objects)") for ln in cache_lines(first)), first.stderr
    plans = tree.plans()
    assert plans and all(p.stat().st_mode & 0o777 == 0o600 for p in plans)
    assert tree.cache.stat().st_mode & 0o777 == 0o700
    second = tree.start()
    assert not searched(second), second.stderr
    assert any(ln.endswith("taken (2 objects)") for ln in cache_lines(second)), second.stderr
    assert not any("kept" in ln for ln in cache_lines(second))
    assert parse(second.stdout) == parse(first.stdout)
    assert parse(second.stdout)["where_object"] == str(tree.prefix / MULTIARCH / "libdemo.so.1")
    assert f"libdemodep.so.1 -> {tree.prefix / MULTIARCH / 'libdemodep.so.1'} (kept)" in \
        second.stderr


def test_a_changed_file_is_resolved_afresh(built: Built, tree: Tree, tmp_path: Path) -> None:
    before = parse(tree.start().stdout)["dep"]
    dep = tree.prefix / MULTIARCH / "libdemodep.so.1"
    # Replaced as a package manager replaces it: a new file renamed over it.
    shutil.copy2(dep_value(built, tmp_path / "variant", 7), dep.with_suffix(".new"))
    os.replace(dep.with_suffix(".new"), dep)
    again = tree.start()
    assert searched(again)
    assert any("not taken: a file or its directory changed" in ln for ln in cache_lines(again))
    assert parse(again.stdout)["dep"] != before
    assert not searched(tree.start())


def test_touched_in_place_is_resolved_afresh(tree: Tree) -> None:
    tree.start()
    lib = tree.prefix / MULTIARCH / "libdemo.so.1"
    st = lib.stat()
    os.utime(lib, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert searched(tree.start())


def test_a_library_appearing_earlier_in_the_search_is_seen(built: Built, program: Path,
                                                            tmp_path: Path) -> None:
    """Without an ld.so.cache the search passes over /lib/<triplet> for
    /usr/lib/<triplet>: a library put there later wins, as with ld.so."""
    prefix = make_prefix(tmp_path / "prefix", [built.demo, built.demodep], ldcache=False)
    tree = Tree(prefix, tmp_path / "cache", {
        "LD_LIBRARY_PATH": str(built.shim_dir), "CAPSULE_PREFIX": str(prefix),
        "CAPSULE_CACHE_DIR": str(tmp_path / "cache"), "CAPSULE_DEBUG": "cache,search"}, program)
    before = parse(tree.start().stdout)["dep"]
    assert not searched(tree.start())
    early = prefix / MULTIARCH.replace("usr/", "", 1)
    early.mkdir(parents=True)
    shutil.copy2(dep_value(built, tmp_path / "variant", 7), early / "libdemodep.so.1")
    proc = tree.start()
    assert any("not taken: a candidate passed over changed" in ln for ln in cache_lines(proc))
    assert parse(proc.stdout)["dep"] != before


def test_a_new_ldcache_is_resolved_afresh(tree: Tree) -> None:
    tree.start()
    (tree.prefix / "etc/ld.so.cache").unlink()
    write_ldcache(tree.prefix)
    proc = tree.start()
    assert any("not taken: the prefix's ld.so.cache changed" in ln for ln in cache_lines(proc))


def damaged(text: bytes, prefix: Path) -> dict[str, bytes]:
    key_end = text.index(b"end of key\0") + len(b"end of key\0")
    payload = text[key_end:]
    return {
        "empty": b"",
        "key only": text[:key_end],
        "truncated": text[:len(text) - 7],
        "no final field": text[:-1],
        "trailing bytes": text + b"x\0",
        "garbage": bytes(range(256)) * 8,
        "another key": text.replace(b"libdemo.so.1", b"libdemo.so.2", 1),
        "outside the prefix": text[:key_end] + payload.replace(str(prefix).encode(), b"/", 1),
        "bad number": text[:key_end] + payload.replace(b"\x002\x00", b"\x00-2\x00", 1),
    }


@pytest.mark.parametrize("kind", ["empty", "key only", "truncated", "no final field",
                                  "trailing bytes", "garbage", "another key",
                                  "outside the prefix", "bad number"])
def test_a_damaged_file_is_never_taken(tree: Tree, kind: str) -> None:
    expected = parse(tree.start().stdout)
    plans = {p: p.read_bytes() for p in tree.plans()}
    assert plans
    for path, text in plans.items():
        path.write_bytes(damaged(text, tree.prefix)[kind])
    proc = tree.start()
    assert parse(proc.stdout) == expected
    assert searched(proc), proc.stderr
    for path, text in plans.items():
        assert path.read_bytes() == text  # written again, whole
    assert not searched(tree.start())


def test_off_and_where(tree: Tree, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for off in ("off", "", "relative/dir"):
        proc = tree.start(HOME=str(home), CAPSULE_CACHE_DIR=off)
        assert searched(proc) and cache_lines(proc) == ["capsule[cache]: directory: none (off)"]
    assert not list(home.iterdir()) and not tree.cache.exists()
    tree.start(without="CAPSULE_CACHE_DIR", HOME=str(home), XDG_CACHE_HOME="")
    assert list((home / ".cache/capsule").glob("*.plan"))
    xdg = tmp_path / "xdg"
    tree.start(without="CAPSULE_CACHE_DIR", HOME=str(home), XDG_CACHE_HOME=str(xdg))
    assert list((xdg / "capsule").glob("*.plan"))


def test_a_directory_others_may_write_is_not_used(tree: Tree) -> None:
    tree.cache.mkdir(mode=0o700)
    tree.cache.chmod(0o777)
    tree.start()
    proc = tree.start()
    assert searched(proc)
    assert any("not private" in ln for ln in cache_lines(proc)), proc.stderr
    assert not tree.plans()


def test_an_unwritable_directory_costs_nothing_but_the_search(tree: Tree) -> None:
    tree.cache.parent.mkdir(exist_ok=True)
    tree.cache.write_text("a file, not a directory")
    first, second = tree.start(), tree.start()
    assert searched(first) and searched(second)
    assert parse(first.stdout) == parse(second.stdout)


def test_first_starts_at_once_agree(tree: Tree) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    procs = [subprocess.Popen([str(tree.program)], env={**env, **tree.env}, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(8)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(parse(out))
    assert all(o == outs[0] for o in outs)
    assert not list(tree.cache.glob("*.tmp"))
    proc = tree.start()
    assert not searched(proc) and parse(proc.stdout) == outs[0]
