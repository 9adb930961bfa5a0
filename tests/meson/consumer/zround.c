/* Compress and uncompress through the libz shim; prints the version the real
 * library reports so the test sees which zlib answered. */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

int
main(void)
{
    static const char text[] = "capsule capsule capsule capsule capsule";
    unsigned char packed[256];
    char unpacked[256];
    uLongf packed_len = sizeof packed;
    uLongf unpacked_len = sizeof unpacked;

    if (compress(packed, &packed_len, (const Bytef *)text, sizeof text) != Z_OK) {
        fprintf(stderr, "zround: compress failed\n");
        return 1;
    }
    if (uncompress((Bytef *)unpacked, &unpacked_len, packed, packed_len) != Z_OK ||
        unpacked_len != sizeof text || memcmp(unpacked, text, sizeof text) != 0) {
        fprintf(stderr, "zround: round trip failed\n");
        return 1;
    }
    printf("zround: ok with zlib %s\n", zlibVersion());
    return 0;
}
