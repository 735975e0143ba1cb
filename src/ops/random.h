// Counter-based standard normal samples that are bit-identical on every CPU and SIMD target, so
// synthetic weights and seeded perturbations never depend on the machine or the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rvec {

// A 64-bit stream key from a seed and a name (e.g. a tensor name).
uint64_t RandomStreamKey(uint64_t seed, const char* name, size_t name_length);

// out[i] = sample number first + i of stream `key`, each ~ N(0, 1). Samples 2p and 2p + 1 come
// from one Box-Muller pair p, so any chunking of the index range gives the same values. The
// math uses only IEEE +, -, *, /, sqrt in f64 (no libm, no FMA), which is why it is exact
// across targets; pairs of one 64-bit SplitMix64 output supply the two uniforms.
void StandardNormals(uint64_t key, uint64_t first, float* out, size_t n);

// The scalar definition StandardNormals must match bit for bit (for tests).
void StandardNormalsReference(uint64_t key, uint64_t first, float* out, size_t n);

}  // namespace rvec
