/* plumb_taps.h: write your engine's intermediate tensors as .npy files for `plumb diff`.
 *
 * One header, C99 or C++, no dependencies beyond the C library: copy it into your project.
 *
 *   #include "plumb_taps.h"
 *   int64_t shape[2] = {n_tokens, n_embd};               // C order: [tokens][width]
 *   plumb_taps_tokens("dump", tokens, n_tokens);          // int32 "tokens"
 *   plumb_taps_f32("dump", "layers.0.attention.wq", q, 2, shape);
 *
 * Each call writes <dir>/<name>.npy (format 1.0, little-endian) and returns 0, or -1 with errno
 * set when the file cannot be written. The directory must exist. Host memory only: copy device
 * buffers back first. Then: plumb diff dump/ trace.gguf --map my-engine.map (docs/TRACE.md).
 */
#ifndef PLUMB_TAPS_H
#define PLUMB_TAPS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes one array: `descr` a NumPy dtype ("<f4", "<i4", "<f2"), `elem_size` its bytes. */
static inline int plumb_taps_write(const char* dir, const char* name, const char* descr, size_t elem_size,
                                   const void* data, int ndim, const int64_t* shape) {
  char path[4096], header[512], dims[384];
  size_t used = 0, n = 1, len, pad;
  int i;
  FILE* f;
  dims[0] = '\0';
  for (i = 0; i < ndim; ++i) {
    int w = snprintf(dims + used, sizeof dims - used, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
    if (w < 0 || (size_t)w >= sizeof dims - used) return -1;
    used += (size_t)w;
    n *= (size_t)shape[i];
  }
  if (ndim > 1) dims[used - 1] = '\0'; /* "(14, 288)": no trailing comma past one dimension */
  len = (size_t)snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
  pad = (64 - (10 + len + 1) % 64) % 64; /* magic, version, length, header, '\n': a multiple of 64 */
  if (len + pad + 1 >= sizeof header) return -1;
  memset(header + len, ' ', pad);
  header[len + pad] = '\n';
  len += pad + 1;
  if (snprintf(path, sizeof path, "%s/%s.npy", dir, name) >= (int)sizeof path) return -1;
  f = fopen(path, "wb");
  if (f == NULL) return -1;
  {
    const unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff),
                                     (unsigned char)(len >> 8)};
    int ok = fwrite(magic, 1, 10, f) == 10 && fwrite(header, 1, len, f) == len &&
             (n == 0 || fwrite(data, elem_size, n, f) == n); /* x86/ARM hosts: already little-endian */
    if (fclose(f) != 0 || !ok) return -1;
  }
  return 0;
}

/* float32 array of `ndim` dimensions, C order (the last dimension varies fastest). */
static inline int plumb_taps_f32(const char* dir, const char* name, const float* data, int ndim, const int64_t* shape) {
  return plumb_taps_write(dir, name, "<f4", 4, data, ndim, shape);
}

/* The prompt's token ids as int32 "tokens" (plumb diff checks both sides ran the same tokens). */
static inline int plumb_taps_tokens(const char* dir, const int32_t* ids, int64_t n) {
  return plumb_taps_write(dir, "tokens", "<i4", 4, ids, 1, &n);
}

#ifdef __cplusplus
}
#endif

#endif /* PLUMB_TAPS_H */
