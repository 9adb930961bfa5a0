/* libcapsule: the interface generated shims call.
 *
 * A shim is a library with the soname of a real library (the target). It
 * exports the target's symbols as stubs and, from its constructor, hands a
 * description of itself to capsule_shim_init(). libcapsule then loads the
 * target and its dependencies from the shim's prefix into a private dlmopen
 * namespace and points every relocation slot bound to the shim at the real
 * definitions. Nothing else here is part of the public interface.
 */
#ifndef CAPSULE_H
#define CAPSULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever struct capsule_shim changes layout or meaning: a shim built
 * against another ABI is refused with a clear message instead of misread.
 * `abi` and `soname` stay the first two members in every ABI, so that check
 * and its message work for any shim.
 * ABI 3: symbol names and versions are offsets into one string blob.
 * ABI 4: stubs at a fixed stride (capsule_shim.stubs); no `hidden` field. */
#define CAPSULE_ABI_VERSION 4

/* Bytes from one stub to the next: stub i starts at stubs + i * stride,
 * for every symbol (a data or TLS symbol's place holds no code). */
#define CAPSULE_STUB_STRIDE 16

#define CAPSULE_PUBLIC __attribute__((visibility("default")))

enum capsule_symbol_kind {
    CAPSULE_SYMBOL_FUNC = 0, /* STT_FUNC and STT_GNU_IFUNC */
    CAPSULE_SYMBOL_DATA = 1, /* STT_OBJECT, STT_COMMON, STT_NOTYPE */
    CAPSULE_SYMBOL_TLS = 2,  /* STT_TLS */
};

/* One symbol the shim exports, as the target (or an `export` soname)
 * defines it. Names and versions are offsets into capsule_shim.strings, not
 * pointers: the table then needs no load-time relocation and stays in
 * read-only, file-backed pages (thousands of entries in a libGL shim). */
typedef struct capsule_symbol {
    uint32_t name;         /* offset of the name in strings */
    uint32_t version;      /* offset of the version node; 0 (strings[0] is
                              the empty string) when unversioned */
    uint32_t size;         /* st_size of a data or TLS symbol; 0 for functions */
    unsigned char kind;    /* enum capsule_symbol_kind */
} capsule_symbol;

typedef struct capsule_shim {
    unsigned abi;                 /* CAPSULE_ABI_VERSION */
    const char *soname;           /* the target, e.g. "libz.so.1" */
    const char *prefix;           /* built-in tree to load from, e.g. "/host" */
    const char *const *exclude;   /* NULL-terminated sonames never taken from
                                     the prefix (on top of the glibc family) */
    const char *const *exports;   /* NULL-terminated further sonames whose
                                     symbols this shim also exports */
    const char *const *share;     /* NULL-terminated sonames the capsule
                                     shares with the program: their one
                                     copy is the program's; NULL: the
                                     default list (libX11, libxcb,
                                     libwayland-client, when the program
                                     has them loaded) */
    size_t n_symbols;
    const capsule_symbol *symbols;  /* n_symbols entries */
    /* NUL-terminated strings the symbols' offsets point into; starts with
     * the empty string (offset 0). */
    const char *strings;
    /* n_symbols slots: the real address of symbols[i], zero until first
     * needed (libcapsule fills a slot when a relocation, a lookup or the
     * stub itself first asks for it). The shim's stub i jumps through
     * targets[i], so a caller that reached the stub directly (a pointer
     * taken before init, dlsym on the shim) still lands in the real code. */
    void **targets;
    /* Any address inside the shim: libcapsule finds the shim's own link map
     * entry (and so its exported-symbol hash table) from it. */
    const void *anchor;
    /* Stub 0; stub i is CAPSULE_STUB_STRIDE * i bytes further: a slot
     * holding a stub's address names its symbol without a lookup. */
    const void *stubs;
} capsule_shim;

/* Called from the shim's constructor (a second call for the same shim
 * returns at once). Returns only on success; on failure it prints one line
 * starting "capsule:" and exits the process non-zero. */
CAPSULE_PUBLIC void capsule_shim_init(capsule_shim *shim);

/* Called from an IFUNC resolver of the shim, which ld.so runs while it
 * relocates the shim (after the shim's own data relocations), through the
 * shim's GOT (a PLT call cannot be made at that point), and only when libc's
 * `environ` is set: not while the program starts, when libc has not been
 * initialised yet. Inside a dlopen() that loads the shim it checks what
 * decides the set-up's common failures (the description, the prefix, the
 * target and its dependencies under it, the glibc versions they need) and,
 * when one fails, makes that dlopen() fail with dlerror() giving the text
 * of the `capsule:` line capsule_shim_init would print. Returns otherwise;
 * never exits, prints nothing (except CAPSULE_DEBUG traces). */
CAPSULE_PUBLIC void capsule_shim_preflight(capsule_shim *shim);

/* Called by stub `index` when it is reached before its target was resolved:
 * prints "capsule: <soname>: <symbol> called but not resolved", a backtrace,
 * and aborts. */
CAPSULE_PUBLIC __attribute__((noreturn)) void
capsule_shim_unresolved(const capsule_shim *shim, size_t index);

/* Called by stub `index` when its target is not known yet: waits for a
 * set-up another thread is running, or runs the shim's set-up itself when
 * its constructor has not yet (capsule_shim_init is idempotent), then
 * returns the target, or (still unknown: the real library lacks it) behaves
 * as capsule_shim_unresolved. */
CAPSULE_PUBLIC void *capsule_shim_wait(capsule_shim *shim, size_t index);

#ifdef __cplusplus
}
#endif

#endif
