"""capsule: segregated dynamic linking for Linux (Meson module + C runtime).

The pieces are kept apart so each can be used and tested alone:
elfreader (ELF reading), locate/ldcache (finding a library under a tree),
symbolsfile (the JSON symbols file), render (shim C source and version
script), cli (the capsule-shim command).
"""

__version__ = "0.1.0"
# Where a shim loads the real library from at run time unless told otherwise:
# capsule.shim(prefix:) and capsule-shim init --prefix.
DEFAULT_PREFIX = "/host"
