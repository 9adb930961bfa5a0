/* An ordinary program: uses zlib and expat, then says which file each
 * function it called lives in. Run through capsule shims, the answers are
 * the host tree's copies. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <expat.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

static const char *where(const void *address)
{
    Dl_info info;
    return dladdr(address, &info) && info.dli_fname ? info.dli_fname : "(unknown)";
}

int main(void)
{
    const char text[] = "hello from inside a capsule, hello from inside a capsule";
    unsigned char packed[256];
    uLongf packed_len = sizeof packed;
    XML_Parser parser = XML_ParserCreate(NULL);
    int ok = compress(packed, &packed_len, (const Bytef *)text, sizeof text) == Z_OK && parser &&
             XML_Parse(parser, "<demo/>", 7, 1) == XML_STATUS_OK;

    XML_ParserFree(parser);
    printf("zlib %s compressed %zu bytes to %lu; expat %s parsed a document: %s\n",
           zlibVersion(), sizeof text, (unsigned long)packed_len, XML_ExpatVersion(),
           ok ? "ok" : "FAILED");
    printf("  compress()         lives in %s\n", where((const void *)&compress));
    printf("  XML_ParserCreate() lives in %s\n", where((const void *)&XML_ParserCreate));
    printf("  printf()           lives in %s\n", where((const void *)&printf));
    return ok ? 0 : 1;
}
