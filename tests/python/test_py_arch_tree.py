"""scripts/arch_tree.py without the network: reading `apt-cache depends`,
making a tree's absolute symbolic links relative, the machine file that
builds against a tree, and --why-not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testarch import arch_tree_module

at = arch_tree_module()

LISTING = """\
zlib1g-dev
  Depends: zlib1g
 |Depends: libc6-dev
  Depends: <libc-dev>
    libc6-dev
libgl1-mesa-dri
  Depends: libc6
  Depends: libllvm15
  PreDepends: libzstd1
  Recommends: libgl1-amber-dri
 |Depends: <virtual-first>
  Depends: real-second
"""


def test_depends_takes_the_first_real_alternative() -> None:
    assert at._first_alternatives(LISTING) == [
        "zlib1g", "libc6-dev", "libc6", "libllvm15", "libzstd1"]


def test_glibc_packages_are_never_taken() -> None:
    assert {"libc6", "libc6-dev"} <= at.GLIBC_PACKAGES


def test_absolute_links_become_relative(tmp_path: Path) -> None:
    (tmp_path / "lib/i386-linux-gnu").mkdir(parents=True)
    (tmp_path / "lib/i386-linux-gnu/libz.so.1.2.13").write_text("")
    dev = tmp_path / "usr/lib/i386-linux-gnu"
    dev.mkdir(parents=True)
    (dev / "libz.so").symlink_to("/lib/i386-linux-gnu/libz.so.1.2.13")
    (dev / "libz.so.1").symlink_to("libz.so")
    at.relative_symlinks(tmp_path)
    assert os.readlink(dev / "libz.so") == "../../../lib/i386-linux-gnu/libz.so.1.2.13"
    assert os.readlink(dev / "libz.so.1") == "libz.so"
    assert (dev / "libz.so").resolve() == (tmp_path / "lib/i386-linux-gnu/libz.so.1.2.13")


def test_machine_file_points_at_the_tree(tmp_path: Path) -> None:
    text = at.write_machine_file("i386", tmp_path / "root", tmp_path / "m.ini").read_text()
    assert f"pkg_config_libdir = ['{tmp_path}/root/usr/lib/i386-linux-gnu/pkgconfig'," in text
    assert f"sys_root = '{tmp_path}/root'" in text
    assert (f"-Wl,-rpath-link,{tmp_path}/root/usr/lib/i386-linux-gnu:"
            f"{tmp_path}/root/lib/i386-linux-gnu") in text


def test_why_not_names_the_missing_shim_runtime() -> None:
    from capsule_module import arch
    reason = at.why_not("i386")
    assert ("cannot be built yet" in reason) == (not arch.I386.shim_runtime)
    assert at.why_not("x86_64") == ""


def test_toolchain_comes_from_the_cross_file(tmp_path: Path) -> None:
    """The compiler and runner of cross/<triplet>.ini (c, c_ld, exe_wrapper):
    what the demo and the graphics example build and run other
    architectures' programs with; plain gcc for this machine's own."""
    a64 = at.toolchain("aarch64")
    assert a64.cc[0] == "clang" and "--target=aarch64-linux-gnu" in a64.cc
    assert a64.cc[-1] == "-fuse-ld=bfd"
    assert a64.runner == ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu")
    assert at.toolchain("i386") == (("gcc", "-m32"), (), at.REPO / "cross/i386-linux-gnu.ini")
    assert at.toolchain("x86_64").cc == ("gcc",) and at.toolchain("x86_64").runner == ()
    bad = tmp_path / "bad.ini"
    bad.write_text("[binaries]\nc = ['gcc'\n")
    try:
        at._machine_file(bad)
    except at.TreeError as exc:
        assert str(bad) in str(exc)
    else:
        raise AssertionError("a malformed machine file was read")


def test_toolchain_blocker_names_a_missing_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = at.shutil.which
    monkeypatch.setattr(at.shutil, "which",
                        lambda name: None if name == "qemu-aarch64" else real_which(name))
    reason = at.toolchain_blocker("aarch64")
    assert reason.startswith("qemu-aarch64 is not installed (Debian: apt-get install qemu-user)")
    assert reason in at.why_not("aarch64")
