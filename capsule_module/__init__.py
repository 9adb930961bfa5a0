"""capsule: segregated dynamic linking for Linux (Meson module + C runtime).

The pieces are kept apart so each can be used and tested alone:
elfreader (ELF reading), locate/ldcache (finding a library under a tree),
symbolsfile (the JSON symbols file), render (shim C source and version
script), cli (the capsule-shim command).
"""

__version__ = "0.1.0"
