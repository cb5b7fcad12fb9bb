#pragma once
#include <zlib.h>

/* inflateInit2 is a macro (not imported into Swift): a gzip-wrapped inflate stream (header and trailer parsed). */
static inline int czlib_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 15 + 16);
}
