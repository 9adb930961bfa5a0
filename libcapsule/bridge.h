/* The bridge: a tiny shared object libcapsule writes in memory and loads
 * first into every capsule namespace. Being the namespace's first object,
 * its symbol table is the namespace's global scope: every object that ever
 * enters the namespace (libc included, and before any constructor runs)
 * binds the names it defines to it. Each of its functions is a jump to an
 * address in the default namespace, optionally loading a context pointer
 * into the architecture's context register first (%r10 on x86-64, %eax on
 * i386, x9 on aarch64: the only thing a callee may assume about the
 * bridge). */
#ifndef CAPSULE_BRIDGE_H
#define CAPSULE_BRIDGE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>

#include "elfarch.h"
#include "error.h"

typedef struct capsule_bridge_entry {
    const char *name;
    const void *target;   /* where the function jumps */
    const void *context;  /* loaded into the context register when non-NULL */
} capsule_bridge_entry;

/* dl_iterate_phdr, called from inside the bridge: it lists the objects of
 * the bridge's namespace (ld.so picks the namespace of the caller). */
struct dl_phdr_info;
typedef int (*capsule_iterate_fn)(int (*fn)(struct dl_phdr_info *, size_t, void *), void *data);

/* Writes the bridge for entries[0..n) and dlmopen()s it into a new
 * namespace. Returns its handle (the namespace id, and the namespace's
 * dl_iterate_phdr) or NULL with an error. */
CAPSULE_HIDDEN void *capsule_bridge_load(const capsule_bridge_entry *entries, size_t n,
                                         Lmid_t *lmid, capsule_iterate_fn *iterate);

/* Loads an ELF image made in memory into namespace lmid (LM_ID_NEWLM: a new
 * one) through a memfd, or an unlinked temporary file where executable
 * memfd mappings are refused. Returns the handle, or NULL with an error. */
CAPSULE_HIDDEN void *capsule_image_load(const unsigned char *img, size_t size, Lmid_t lmid);
/* The name an in-memory object is loaded by, from its descriptor fd, which
 * stays open while the object is loaded: /proc/PID/fd/N, which a debugger
 * (gdb -p, reading the link map) opens from its own process. The
 * /proc/self/fd/N it replaced named the *debugger's* descriptor N: gdb read
 * its own pipe or terminal and hung. */
CAPSULE_HIDDEN void capsule_image_name(int fd, char *path, size_t size);
/* Every in-memory image has the same three program headers: one segment
 * (ELF header, tables, code, and from dyn to total the dynamic section),
 * the dynamic section, and a non-executable stack. The dynamic section is
 * read-only: glibc 2.35 and later (l_ld_readonly) then leave it as it is
 * instead of adding the load base to its entries in place, so an image
 * costs no writable page, copied per namespace. Callers place dyn at
 * CAPSULE_IMAGE_DYN_ALIGN. */
#define CAPSULE_IMAGE_PHDRS 3
#define CAPSULE_IMAGE_DYN_ALIGN 8
CAPSULE_HIDDEN void capsule_image_headers(unsigned char *img, size_t dyn, size_t total,
                                          unsigned flags);
/* Writes at gh a GNU hash table for symbols 1..n of an image, whose hashes
 * hash_at(ctx, 0..n-1) are sorted by bucket; the table is
 * 16 + bloom_words * sizeof(ElfW(Addr)) + (nbuckets + n) * 4 bytes, zeroed
 * beforehand. */
CAPSULE_HIDDEN void capsule_image_gnu_hash(uint32_t *gh, size_t n, uint32_t nbuckets,
                                           uint32_t bloom_words,
                                           uint32_t (*hash_at)(const void *ctx, size_t k),
                                           const void *ctx);
/* The bridge's machine code, one function per architecture
 * (arch/<arch>/bridge_code.c), each writing at most
 * CAPSULE_BRIDGE_STUB_SIZE bytes: a jump to target, loading context (when
 * not NULL) into the context register first; and a real call of target
 * with the caller's two arguments (dl_iterate_phdr's), so the callee's return address lies in the
 * bridge (dl_iterate_phdr tells the namespace to list from it). */
#define CAPSULE_BRIDGE_STUB_SIZE 32
CAPSULE_HIDDEN void capsule_arch_jump_stub(unsigned char *p, const void *target,
                                           const void *context);
CAPSULE_HIDDEN void capsule_arch_call_stub(unsigned char *p, const void *target);
/* Writes at img + dyn the dynamic entries every in-memory image starts
 * with (its hash table, of kind hash_tag, DT_GNU_HASH or DT_HASH, and its
 * string and symbol tables at those offsets, DT_SONAME at string offset
 * soname); returns the next entry, for the image's own. The image is
 * zeroed beforehand, so unwritten entries are DT_NULL. */
CAPSULE_HIDDEN ElfW(Dyn) *capsule_image_dynamic(unsigned char *img, size_t dyn,
                                                ElfW(Sxword) hash_tag, size_t hash, size_t str,
                                                size_t sym, size_t strsz, size_t soname);

#endif
