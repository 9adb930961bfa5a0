/* An object mapped in this process, its dynamic section decoded once, and
 * symbol lookup in it through its hash tables. */
#ifndef CAPSULE_DYNOBJ_H
#define CAPSULE_DYNOBJ_H

#include <stddef.h>
#include <stdint.h>

#include "elfarch.h"
#include "error.h"

typedef struct capsule_dynobj {
    const char *name;
    ElfW(Addr) base;               /* l_addr */
    const ElfW(Dyn) *dynamic;
    const ElfW(Phdr) *phdr;        /* NULL when unknown (another namespace) */
    size_t phnum;

    const ElfW(Sym) *symtab;
    const char *strtab;
    size_t strsz;
    size_t n_symbols;              /* from the hash tables */
    const uint32_t *gnu_hash;
    const uint32_t *sysv_hash;
    const ElfW(Versym) *versym;
    const char **version_names;    /* by version index (verdef and verneed) */
    size_t n_versions;
    const ElfW(Verdef) *verdef;    /* the version definitions, or NULL */
    size_t n_verdef;
    const capsule_rel *rel;        /* DT_RELA or DT_REL, as elfarch.h says */
    size_t n_rel;
    const capsule_rel *jmprel;
    size_t n_jmprel;
    ElfW(Addr) relro_start, relro_end; /* page range ld.so made read-only, or 0 */
    ElfW(Addr) map_start, map_end;     /* extent of the PT_LOAD segments */
    /* The PLT of an object whose entries ld.so may rewrite into direct
     * branches (CAPSULE_DT_PLT, pltrewrite.h), or all 0: run-time address,
     * size and entry size, checked as ld.so checks them. */
    ElfW(Addr) plt_start;
    size_t plt_size, plt_entsize;
} capsule_dynobj;

/* Decodes an object from its load base and dynamic section (phdr optional). */
CAPSULE_HIDDEN int capsule_dynobj_init(capsule_dynobj *o, const char *name, ElfW(Addr) base,
                                       const ElfW(Dyn) *dynamic, const ElfW(Phdr) *phdr,
                                       size_t phnum);
/* The same, for lookups by name only: n_symbols is what the hash table
 * covers, without a pass over the relocations (thousands in a large
 * library), which only code reading relocations needs. */
CAPSULE_HIDDEN int capsule_dynobj_init_lookup(capsule_dynobj *o, const char *name,
                                              ElfW(Addr) base, const ElfW(Dyn) *dynamic,
                                              const ElfW(Phdr) *phdr, size_t phnum);
CAPSULE_HIDDEN void capsule_dynobj_fini(capsule_dynobj *o);
/* The dynamic section dl_iterate_phdr's entry lists, or NULL. */
CAPSULE_HIDDEN const ElfW(Dyn) *capsule_phdr_dynamic(const struct dl_phdr_info *info);
/* The string a loaded object's dynamic entry `tag` names (DT_SONAME,
 * DT_RUNPATH ...), or NULL when it has none or it lies outside DT_STRSZ. */
CAPSULE_HIDDEN const char *capsule_dyn_string(const ElfW(Dyn) *dynamic, ElfW(Addr) base,
                                              ElfW(Sxword) tag);
/* Decodes an object from its link map entry, with the program headers ld.so
 * gives dl_iterate_phdr for the default namespace; other namespaces' objects
 * get none (enough for symbol lookup). An ELF header at l_addr is never
 * trusted: an object from the prefix may map none there. */
CAPSULE_HIDDEN int capsule_dynobj_from_link_map(capsule_dynobj *o, const struct link_map *map);

/* Looks up a defined symbol. version NULL matches an unversioned or default
 * (@@) definition; a version matches exactly, hidden (@) ones included.
 * Returns the symbol index or -1. */
CAPSULE_HIDDEN long capsule_dynobj_lookup(const capsule_dynobj *o, const char *name,
                                          const char *version);
/* capsule_dynobj_lookup with the name's GNU hash already known. */
CAPSULE_HIDDEN long capsule_dynobj_lookup_hashed(const capsule_dynobj *o, const char *name,
                                                 uint32_t gnu_hash, const char *version);
/* The run-time address of a defined symbol (IFUNC resolvers are called). */
CAPSULE_HIDDEN void *capsule_dynobj_address(const capsule_dynobj *o, long index);
/* The version a symbol refers to or is defined with (NULL when none). */
CAPSULE_HIDDEN const char *capsule_dynobj_symbol_version(const capsule_dynobj *o, size_t index);
CAPSULE_HIDDEN int capsule_dynobj_contains(const capsule_dynobj *o, ElfW(Addr) addr);
/* 1 when the loaded object with this dynamic section defines the version
 * node `version` (DT_VERDEF), read straight from its dynamic section: no
 * decoding of its tables. */
CAPSULE_HIDDEN int capsule_dyn_defines_version(const ElfW(Dyn) *dynamic, ElfW(Addr) base,
                                               const char *version);
/* 1 when the object defines the version node `version` (DT_VERDEF). */
CAPSULE_HIDDEN int capsule_dynobj_defines_version(const capsule_dynobj *o, const char *version);
/* Protection flags of the PT_LOAD segment holding addr: PF_* bits, 0 if none. */
CAPSULE_HIDDEN unsigned capsule_dynobj_segment_flags(const capsule_dynobj *o, ElfW(Addr) addr);

/* The GNU hash of a symbol name. */
CAPSULE_HIDDEN uint32_t capsule_gnu_hash(const char *name);

#endif
