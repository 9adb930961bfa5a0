#!/usr/bin/env python3
"""A newer glibc, unpacked from Debian's packages into a private tree.

    python3 scripts/glibc_tree.py trixie      # Debian 13, libc6 2.41
    python3 scripts/glibc_tree.py sid         # Debian unstable (2.43 in 2026-12)

fetches libc6 and libgcc-s1 (what the test programs need besides the system's
own libraries: libc6 depends on it, and glibc dlopens it for unwinding), and
libc6-dbg (valgrind needs ld.so's symbols: they are linked in as
usr/lib/x86_64-linux-gnu/.debug/<debuglink name>, a place valgrind looks) with
a *private* apt state: its own sources list, lists, caches and an empty
dpkg status under build-glibc/<release>/apt. Nothing is added to the
system's apt and nothing is installed. The packages are unpacked with
`dpkg-deb -x` into build-glibc/<release>/root, which is reused when present
(`--refresh` fetches again). The mirror is the one the system's own apt
sources name for Debian (read at run time, never hard-coded here).

It prints the tree's dynamic linker and library directory, and the command
that runs a program under that glibc:

    LDSO --library-path LIBDIR[:more dirs] ./prog

(merged /usr: the libraries are under usr/lib). Or it runs one itself:

    LD_LIBRARY_PATH=shims python3 scripts/glibc_tree.py sid --run ./prog ARG...

execs `LDSO --library-path LIBDIR:$LD_LIBRARY_PATH ./prog ARG...` (the tree
first: it holds only glibc's own libraries, which must match that ld.so;
LD_LIBRARY_PATH itself is left as it is). Other Python code imports
`ensure_tree()`.

    python3 scripts/glibc_tree.py trixie --binutils    # Debian 13's binutils 2.44

fetches that release's linker (binutils-x86-64-linux-gnu and the libraries
it needs) the same way into build-glibc/binutils-<release>/root, and writes
build-glibc/binutils-<release>/bin/ld (and ld.bfd): a script that runs it
through that release's glibc tree (made too when missing), since it needs
that glibc. `gcc -B build-glibc/binutils-trixie/bin/ ...` links with it: a
linker that knows `-z mark-plt` (binutils 2.42+; Debian 12's 2.40 does not),
which the PLT-rewrite tests need. `--print bindir|ld|version` prints one
thing. Other Python code imports `ensure_binutils()`.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "build-glibc"
RELEASES = ("trixie", "sid")
PACKAGES = ("libc6", "libgcc-s1", "libc6-dbg")
# The linker and what it links (apt-cache depends, trixie's 2.44-3), less
# libc6 (the glibc tree's) and binutils-common (locales only).
BINUTILS_PACKAGES = ("binutils-x86-64-linux-gnu", "libbinutils", "libctf-nobfd0", "libctf0",
                     "libsframe1", "libjansson4", "libzstd1", "zlib1g")
MULTIARCH = "x86_64-linux-gnu"
LD_NAME = f"{MULTIARCH}-ld.bfd"
LDSO_NAME = "ld-linux-x86-64.so.2"
SYSTEM_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class TreeError(Exception):
    """A tree could not be made: one sentence for the user."""


@dataclass(frozen=True)
class GlibcTree:
    release: str
    root: Path
    version: str

    @property
    def ldso(self) -> Path:
        return self.root / "usr/lib64" / LDSO_NAME

    @property
    def libdir(self) -> Path:
        return self.root / "usr/lib" / MULTIARCH

    def command(self, cmd: list[str], library_path: str = "") -> list[str]:
        """cmd run through this tree's ld.so: the glibc tree first, then the
        given colon-separated directories (what LD_LIBRARY_PATH would say)."""
        dirs = ":".join(d for d in (str(self.libdir), library_path) if d)
        return [str(self.ldso), "--library-path", dirs, *cmd]


@dataclass(frozen=True)
class Mirror:
    uri: str
    keyring: str


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _one_line_sources(text: str) -> list[Mirror]:
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)", line)
        if not m:
            continue
        keyring = DEFAULT_KEYRING
        for opt in (m.group("opts") or "").split():
            if opt.startswith("signed-by="):
                keyring = opt.split("=", 1)[1]
        found.append((m.group("uri"), m.group("suite"), keyring))
    return [Mirror(uri, key) for uri, suite, key in found if _is_debian_main(uri, suite)]


def _is_debian_main(uri: str, suite: str) -> bool:
    """The Debian archive itself: not security, not a third-party repository."""
    return (not suite.endswith("-security") and "security" not in uri
            and uri.rstrip("/").endswith("/debian"))


def system_mirror(sources: tuple[Path, ...] = SYSTEM_SOURCES) -> Mirror:
    """The Debian mirror the system's apt is configured with."""
    files: list[Path] = []
    for src in sources:
        if src.is_dir():
            files += sorted(p for p in src.iterdir() if p.suffix in (".list", ".sources"))
        elif src.is_file():
            files.append(src)
    for path in files:
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for st in _deb822_stanzas(text):
                if "deb" not in st.get("types", "").split() or st.get("enabled", "yes") == "no":
                    continue
                for uri in st.get("uris", "").split():
                    if any(_is_debian_main(uri, s) for s in st.get("suites", "").split()):
                        return Mirror(uri, st.get("signed-by", DEFAULT_KEYRING).split()[0])
        else:
            mirrors = _one_line_sources(text)
            if mirrors:
                return mirrors[0]
    raise TreeError("no Debian archive found in the system's apt sources "
                    f"({', '.join(map(str, sources))})")


def _apt_options(state: Path, arch: str = "amd64") -> list[str]:
    """Options that point every piece of apt's state at `state`, for the
    packages of one dpkg architecture (`arch`: nothing of dpkg's own
    configuration, such as its foreign architectures, is involved)."""
    return [
        "-o", f"Dir::State={state / 'state'}",
        "-o", f"Dir::State::status={state / 'state/status'}",
        "-o", f"Dir::Etc::SourceList={state / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={state / 'sources.list.d'}",
        "-o", f"Dir::Etc::Preferences={state / 'preferences'}",
        "-o", f"Dir::Etc::PreferencesParts={state / 'preferences.d'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        "-o", f"APT::Architecture={arch}",
        "-o", f"APT::Architectures={arch}",
        "-o", "Acquire::Languages=none",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",  # the download directory is ours, not _apt's
    ]


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TreeError(f"{' '.join(cmd[:1] + cmd[-3:])} failed ({proc.returncode}): "
                        f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc.stdout


def update(state: Path, release: str, mirror: Mirror, arch: str = "amd64") -> list[str]:
    """apt-get update of a private apt state in `state` for packages of dpkg
    architecture `arch`; the apt options that use that state."""
    for d in ("state/lists/partial", "cache/archives/partial", "sources.list.d",
              "preferences.d", "debs"):
        (state / d).mkdir(parents=True, exist_ok=True)
    (state / "state/status").touch()
    (state / "preferences").touch()
    (state / "sources.list").write_text(
        f"deb [arch={arch} signed-by={mirror.keyring}] {mirror.uri} {release} main\n")
    opts = _apt_options(state, arch)
    _run(["apt-get", *opts, "-qq", "update"])
    return opts


def download(state: Path, release: str, packages: tuple[str, ...], mirror: Mirror,
             arch: str = "amd64") -> list[Path]:
    """apt-get update + download of `packages` of dpkg architecture `arch`
    with a private apt state in `state`; the .deb files (in state/debs)."""
    opts = update(state, release, mirror, arch)
    debs = state / "debs"
    for old in debs.glob("*.deb"):
        old.unlink()
    _run(["apt-get", *opts, "-qq", "download", *packages], cwd=debs)
    found = sorted(debs.glob("*.deb"))
    if len(found) != len(packages):
        raise TreeError(f"apt-get download gave {[p.name for p in found]} for {packages}")
    return found


def _unpack(debs: list[Path], partial: Path) -> None:
    shutil.rmtree(partial, ignore_errors=True)
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(partial)])


def fetch(release: str, out: Path, mirror: Mirror,
          packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    """apt-get update + download with a private state; the .deb files."""
    return download(out / "apt", release, packages, mirror)


def _version(deb: Path) -> str:
    return _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()


def _link_debug_files(root: Path) -> None:
    """libc6-dbg's usr/lib/debug/.build-id/xx/REST.debug files, where valgrind
    looks for a library's .gnu_debuglink name REST.debug: the library's own
    directory's .debug/ (it would look in /usr/lib/debug/.build-id only)."""
    links = root / "usr/lib" / MULTIARCH / ".debug"
    links.mkdir(exist_ok=True)
    for f in sorted((root / "usr/lib/debug/.build-id").glob("*/*.debug")):
        (links / f.name).symlink_to(f"../../debug/.build-id/{f.parent.name}/{f.name}")


def ensure_tree(release: str, out: Path = DEFAULT_OUT, refresh: bool = False) -> GlibcTree:
    """The unpacked tree for `release` (trixie, sid), made when missing."""
    if release not in RELEASES:
        raise TreeError(f"unknown release {release!r}: expected one of {', '.join(RELEASES)}")
    base = out / release
    root = base / "root"
    stamp = base / "version"  # the libc6 version, then the packages unpacked
    if not refresh and stamp.is_file() and (root / "usr/lib64" / LDSO_NAME).exists():
        version, _, packages = stamp.read_text().partition("\n")
        if packages.split() == list(PACKAGES):
            return GlibcTree(release, root, version)
    debs = fetch(release, base, system_mirror())
    partial = base / "root.partial"
    _unpack(debs, partial)
    libc = next(d for d in debs if d.name.startswith("libc6_"))
    version = _version(libc)
    dbg = next(d for d in debs if d.name.startswith("libc6-dbg_"))
    if _version(dbg) != version:
        raise TreeError(f"{dbg.name} does not match {libc.name}")
    _link_debug_files(partial)
    if not (partial / "usr/lib64" / LDSO_NAME).exists():
        raise TreeError(f"{libc.name} has no usr/lib64/{LDSO_NAME} (not a merged-/usr glibc?)")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    stamp.write_text(f"{version}\n{' '.join(PACKAGES)}\n")
    return GlibcTree(release, root, version)


@dataclass(frozen=True)
class BinutilsTree:
    release: str
    root: Path
    version: str
    glibc: GlibcTree

    @property
    def bindir(self) -> Path:
        """Where `ld` and `ld.bfd` are: what `gcc -B` wants."""
        return self.root.parent / "bin"

    @property
    def ld(self) -> Path:
        return self.bindir / "ld"


def _write_ld_wrappers(tree: BinutilsTree) -> None:
    """bin/ld and bin/ld.bfd: the release's ld.bfd through its own glibc."""
    libdirs = f"{tree.root / 'usr/lib' / MULTIARCH}:{tree.glibc.libdir}"
    text = (f"#!/bin/sh\n# {tree.release}'s binutils {tree.version} through its glibc "
            f"{tree.glibc.version} (scripts/glibc_tree.py)\n"
            f"exec {shlex.quote(str(tree.glibc.ldso))} --library-path {shlex.quote(libdirs)} "
            f'{shlex.quote(str(tree.root / "usr/bin" / LD_NAME))} "$@"\n')
    tree.bindir.mkdir(parents=True, exist_ok=True)
    for name in ("ld", "ld.bfd"):
        path = tree.bindir / name
        if not path.is_file() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.rename(path)


def _unpacked_binutils(release: str, out: Path, glibc: GlibcTree) -> BinutilsTree | None:
    base = out / f"binutils-{release}"
    root = base / "root"
    stamp = base / "version"
    if not stamp.is_file() or not (root / "usr/bin" / LD_NAME).exists():
        return None
    version, _, packages = stamp.read_text().partition("\n")
    if packages.split() != list(BINUTILS_PACKAGES):
        return None
    tree = BinutilsTree(release, root, version, glibc)
    _write_ld_wrappers(tree)
    return tree


def find_binutils(release: str = "trixie", out: Path = DEFAULT_OUT) -> BinutilsTree | None:
    """`release`'s binutils when `ensure_binutils` unpacked it already (with
    its glibc tree), else None: nothing is fetched."""
    base = out / release
    stamp = base / "version"
    if not stamp.is_file() or not (base / "root/usr/lib64" / LDSO_NAME).exists():
        return None
    version, _, packages = stamp.read_text().partition("\n")
    if packages.split() != list(PACKAGES):
        return None
    return _unpacked_binutils(release, out, GlibcTree(release, base / "root", version))


def ensure_binutils(release: str = "trixie", out: Path = DEFAULT_OUT,
                    refresh: bool = False) -> BinutilsTree:
    """`release`'s binutils, unpacked once, with ld wrappers that run it
    through `release`'s glibc tree (made when missing)."""
    glibc = ensure_tree(release, out)
    base = out / f"binutils-{release}"
    root = base / "root"
    stamp = base / "version"
    tree = None if refresh else _unpacked_binutils(release, out, glibc)
    if tree:
        return tree
    debs = fetch(release, base, system_mirror(), BINUTILS_PACKAGES)
    partial = base / "root.partial"
    _unpack(debs, partial)
    if not (partial / "usr/bin" / LD_NAME).exists():
        raise TreeError(f"{BINUTILS_PACKAGES[0]} has no usr/bin/{LD_NAME}")
    version = _version(next(d for d in debs if d.name.startswith(BINUTILS_PACKAGES[0] + "_")))
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    stamp.write_text(f"{version}\n{' '.join(BINUTILS_PACKAGES)}\n")
    tree = BinutilsTree(release, root, version, glibc)
    _write_ld_wrappers(tree)
    first = _run([str(tree.ld), "--version"]).splitlines()[0]
    if not re.search(r"\b2\.(4[2-9]|[5-9]\d)", first):
        raise TreeError(f"{tree.ld} --version: {first!r}, not binutils 2.42 or later "
                        "(no -z mark-plt)")
    return tree


def ldso_version(ldso: Path) -> str:
    """The package version ld.so --version names (2.36-9+deb12u14), or its
    upstream one (2.36) when it names no package."""
    first = _run([str(ldso), "--version"]).splitlines()[0]
    m = re.search(r"GLIBC (\S+)\)", first) or re.search(r"version (\d+\.\d+)", first)
    if not m:
        raise TreeError(f"{ldso} --version: no version in {first!r}")
    return m.group(1)


def tree_from_env(value: str, out: Path = DEFAULT_OUT) -> GlibcTree:
    """A release name, or the path of an already unpacked tree."""
    if "/" in value:
        root = Path(value).resolve()
        if not (root / "usr/lib64" / LDSO_NAME).exists():
            raise TreeError(f"{root}: no usr/lib64/{LDSO_NAME}")
        return GlibcTree(root.name or "/", root, ldso_version(root / "usr/lib64" / LDSO_NAME))
    return ensure_tree(value, out)


def _main_binutils(args: argparse.Namespace) -> int:
    try:
        tree = ensure_binutils(args.release, args.out.resolve(), args.refresh)
    except TreeError as e:
        print(f"glibc_tree: {args.release}: binutils: {e}", file=sys.stderr)
        return 1
    values = {"root": tree.root, "version": tree.version, "bindir": tree.bindir, "ld": tree.ld,
              "ldso": tree.glibc.ldso, "libdir": tree.glibc.libdir}
    if args.what:
        print(values[args.what])
        return 0
    print(f"release={tree.release}\nversion={tree.version}\nld={tree.ld}\nbindir={tree.bindir}")
    print(f"link: gcc -B {tree.bindir}/ -Wl,-z,now -Wl,-z,mark-plt ...", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument("release", choices=RELEASES)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="where trees are kept (default: build-glibc in the checkout)")
    ap.add_argument("--refresh", action="store_true", help="fetch and unpack again")
    ap.add_argument("--print", dest="what",
                    choices=("ldso", "libdir", "root", "version", "bindir", "ld"),
                    help="print only this, for shell scripts (bindir, ld: with --binutils)")
    ap.add_argument("--binutils", action="store_true",
                    help="the release's binutils (its ld runs through its glibc) instead")
    ap.add_argument("--run", nargs=argparse.REMAINDER, metavar="PROGRAM",
                    help="exec PROGRAM [ARG...] under that glibc (LD_LIBRARY_PATH after the tree)")
    args = ap.parse_args(argv)
    if args.run is not None and not args.run:
        ap.error("--run needs a PROGRAM")
    if args.binutils:
        if args.run is not None:
            ap.error("--run and --binutils: run the linker as bin/ld instead")
        return _main_binutils(args)
    if args.what in ("bindir", "ld"):
        ap.error(f"--print {args.what} needs --binutils")
    try:
        tree = ensure_tree(args.release, args.out.resolve(), args.refresh)
    except TreeError as e:
        print(f"glibc_tree: {args.release}: {e}", file=sys.stderr)
        return 1
    if args.run:
        cmd = tree.command(args.run, os.environ.get("LD_LIBRARY_PATH", ""))
        os.execv(cmd[0], cmd)
    if args.what:
        print({"ldso": tree.ldso, "libdir": tree.libdir, "root": tree.root,
               "version": tree.version}[args.what])
        return 0
    print(f"release={tree.release}\nversion={tree.version}\nldso={tree.ldso}\n"
          f"libdir={tree.libdir}")
    print(f"run: {' '.join(tree.command(['./prog']))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
