// Included first by the files compiled for AVX-512. GCC 12's AVX-512 intrinsics pass
// _mm512_undefined_*() as the masked-off source, which its -W(maybe-)uninitialized report once
// inlined (GCC bug 105593); nothing in those files is uninitialized. The pragmas hold for the
// rest of the including file.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
