/*
 * gzip.c - see gzip.h.
 */
#include "gzip.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* windowBits 15 + 16: a gzip header and trailer around the deflate data. */
#define GZIP_WINDOW_BITS (15 + 16)
#define GZIP_MEM_LEVEL 8
#define GZIP_CHUNK_BYTES 4096

static voidpf gz_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return calloc(items, size); /* calloc checks items * size */
}

static void gz_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

int gzip_body(const void *in, size_t in_len, struct buf *out)
{
    unsigned char chunk[GZIP_CHUNK_BYTES];
    z_stream zs;
    size_t start;
    int zr;
    int r = 0;

    if (out == NULL || (in == NULL && in_len > 0) || in_len != (size_t)(uInt)in_len)
        return -EINVAL;
    start = buf_len(out);
    memset(&zs, 0, sizeof(zs));
    zs.zalloc = gz_alloc;
    zs.zfree = gz_free;
    zr = deflateInit2(&zs, GZIP_LEVEL, Z_DEFLATED, GZIP_WINDOW_BITS, GZIP_MEM_LEVEL,
                      Z_DEFAULT_STRATEGY);
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    /* zlib's next_in is not const-qualified; it never writes through it. */
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    do {
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zr = deflate(&zs, Z_FINISH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            /* With Z_FINISH and an empty chunk every call makes progress:
             * anything else is a zlib fault, not a reason to loop. */
            r = zr == Z_MEM_ERROR ? -ENOMEM : -EPROTO;
            goto out;
        }
        r = buf_append(out, chunk, sizeof(chunk) - zs.avail_out);
        if (r < 0)
            goto out;
    } while (zr != Z_STREAM_END);
out:
    deflateEnd(&zs);
    if (r < 0)
        buf_truncate(out, start);
    return r;
}
