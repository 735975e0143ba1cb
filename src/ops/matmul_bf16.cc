// vdpbf16ps GEMM for bf16 weights: weight rows are packed 48 at a time into pair-interleaved
// panels (a register transpose, kept in L2) and multiplied by 8-token activation tiles; batches
// of up to 16 tokens multiply 16-row groups straight from the transpose.
#include "ops/matmul_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "ops/convert.h"
#include "ops/matmul.h"

#define RVEC_BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))

namespace rvec {

bool HasBF16DotProduct() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
}

void PackActivationsBF16(const float* x, size_t n, size_t x_stride, size_t cols, size_t t0,
                         size_t t1, uint32_t* packed) {
  const size_t pairs = BF16Pairs(cols);
  std::vector<uint16_t> row(pairs * 2);
  const size_t end = std::min((t1 + kBF16TokenTile - 1) / kBF16TokenTile * kBF16TokenTile,
                              (n + kBF16TokenTile - 1) / kBF16TokenTile * kBF16TokenTile);
  for (size_t t = t0; t < end; ++t) {
    if (t < n) {
      ConvertF32ToBF16(x + t * x_stride, row.data(), cols);
      if (cols % 2) row[cols] = 0;
    } else {
      std::fill(row.begin(), row.end(), uint16_t{0});
    }
    uint32_t* dst = packed + (t / kBF16TokenTile) * pairs * kBF16TokenTile + t % kBF16TokenTile;
    for (size_t p = 0; p < pairs; ++p) {
      dst[p * kBF16TokenTile] = uint32_t{row[2 * p]} | uint32_t{row[2 * p + 1]} << 16;
    }
  }
}

float DotBF16Reference(const uint16_t* x, const uint16_t* w, size_t cols) {
  // vdpbf16ps treats denormal inputs as zero and flushes denormal results.
  auto ftz = [](float v) {
    return std::fpclassify(v) == FP_SUBNORMAL ? std::copysign(0.0f, v) : v;
  };
  auto elem = [&](const uint16_t* v, size_t k) { return k < cols ? ftz(BF16ToF32(v[k])) : 0.0f; };
  float acc = 0.0f;
  for (size_t k = 0; k < cols; k += 2) {
    acc = ftz(acc + elem(x, k + 1) * elem(w, k + 1));
    acc = ftz(acc + elem(x, k) * elem(w, k));
  }
  return acc;
}

namespace {

constexpr size_t kPanelRows = 48;  // 3 vectors of 16 rows

// The first `count` (1..16) lanes.
inline __mmask16 LaneMask(size_t count) { return __mmask16((1u << count) - 1); }

// A 64-byte aligned per-thread buffer that only grows.
struct PanelBuffer {
  uint32_t* data = nullptr;
  size_t words = 0;
  ~PanelBuffer() { std::free(data); }
  uint32_t* Get(size_t need) {
    if (need > words) {
      std::free(data);
      data = static_cast<uint32_t*>(std::aligned_alloc(64, (need * 4 + 63) / 64 * 64));
      words = need;
    }
    return data;
  }
};

// Word indices for one transpose round: `lo` takes the columns of v[i] whose bit b is clear and
// fills the others from v[i + b]; `hi` is the complement.
template <int kB, bool kHi>
constexpr std::array<int32_t, 16> SwapIndex() {
  std::array<int32_t, 16> idx{};
  for (int c = 0; c < 16; ++c) {
    if (kHi) {
      idx[c] = (c & kB) ? 16 + c : c + kB;
    } else {
      idx[c] = (c & kB) ? 16 + c - kB : c;
    }
  }
  return idx;
}

template <int kB>
RVEC_BF16_TARGET inline __attribute__((always_inline)) void TransposeRound(__m512i v[16]) {
  alignas(64) static constexpr std::array<int32_t, 16> kLo = SwapIndex<kB, false>();
  alignas(64) static constexpr std::array<int32_t, 16> kHi = SwapIndex<kB, true>();
  const __m512i lo = _mm512_load_si512(kLo.data()), hi = _mm512_load_si512(kHi.data());
  for (int i = 0; i < 16; ++i) {
    if (i & kB) continue;
    const __m512i a = v[i], c = v[i + kB];
    v[i] = _mm512_permutex2var_epi32(a, lo, c);
    v[i + kB] = _mm512_permutex2var_epi32(a, hi, c);
  }
}

// Transposes 16 vectors of 16 words in place: v[i][c] becomes v[c][i]. Four rounds swap the
// off-diagonal blocks of 8, 4, 2 and 1 words.
RVEC_BF16_TARGET inline __attribute__((always_inline)) void Transpose16(__m512i v[16]) {
  TransposeRound<8>(v);
  TransposeRound<4>(v);
  TransposeRound<2>(v);
  TransposeRound<1>(v);
}

// Loads the 16 weight rows starting at `wg` (fewer when `rows` < 16: zeros) at pairs
// [p0, p0 + 16) and transposes them: v[j] holds pair p0 + j of each row, one row per lane.
// Returns how many of the 16 pairs exist.
RVEC_BF16_TARGET inline __attribute__((always_inline)) size_t LoadTransposed(const uint16_t* wg,
                                                                             size_t cols,
                                                                             size_t rows, size_t p0,
                                                                             __m512i v[16]) {
  const size_t k0 = p0 * 2;
  // 16 rows read 64 bytes at a time are 16 interleaved streams, which the hardware prefetcher
  // follows badly when the weights come from DRAM (decode). The next group's 16 rows are one
  // contiguous block of cols / 2 lines: fetch 16 of them into L2 per call, in address order, so
  // the block arrives over this group's cols / 32 calls (as the f32 kernel's Tile does).
  const char* ahead = reinterpret_cast<const char*>(wg + 16 * cols) + (p0 / 16) * 16 * 64;
  for (size_t i = 0; i < 16; ++i) _mm_prefetch(ahead + i * 64, _MM_HINT_T1);
  size_t np = 16;
  if (rows == 16 && k0 + 32 <= cols) {
    for (size_t i = 0; i < 16; ++i) v[i] = _mm512_loadu_si512(wg + i * cols + k0);
  } else {
    const size_t kn = std::min<size_t>(32, cols - k0);
    const __mmask32 kmask = kn == 32 ? ~__mmask32{0} : (__mmask32{1} << kn) - 1;
    for (size_t i = 0; i < 16; ++i) {
      v[i] =
          i < rows ? _mm512_maskz_loadu_epi16(kmask, wg + i * cols + k0) : _mm512_setzero_si512();
    }
    np = std::min<size_t>(16, BF16Pairs(cols) - p0);
  }
  Transpose16(v);
  return np;
}

// panel[p * 48 + i] = elements 2p, 2p+1 of weight row r + i (zeros past `rows` or `cols`).
RVEC_BF16_TARGET void PackPanel(const uint16_t* w, size_t cols, size_t r, size_t rows,
                                uint32_t* panel) {
  const size_t pairs = BF16Pairs(cols);
  for (size_t g = 0; g * 16 < rows; ++g) {
    const uint16_t* wg = w + (r + g * 16) * cols;
    const size_t grows = std::min<size_t>(16, rows - g * 16);
    for (size_t p0 = 0; p0 < pairs; p0 += 16) {
      __m512i v[16];
      const size_t np = LoadTransposed(wg, cols, grows, p0, v);
      uint32_t* dst = panel + p0 * kPanelRows + g * 16;
      for (size_t j = 0; j < np; ++j) _mm512_store_si512(dst + j * kPanelRows, v[j]);
    }
  }
}

// kT tokens x kV vectors of 16 rows. The last vector stores only the lanes in `last`.
template <size_t kT, size_t kV>
RVEC_BF16_TARGET void Tile(const uint32_t* __restrict xp, const uint32_t* __restrict panel,
                           size_t pairs, const float* __restrict bias, float* __restrict out,
                           size_t out_stride, __mmask16 last) {
  __m512 acc[kT][kV];
  for (size_t t = 0; t < kT; ++t) {
    for (size_t v = 0; v < kV; ++v) acc[t][v] = _mm512_setzero_ps();
  }
  for (size_t p = 0; p < pairs; ++p) {
    __m512bh wv[kV];
    for (size_t v = 0; v < kV; ++v) {
      wv[v] = reinterpret_cast<__m512bh>(_mm512_load_si512(panel + p * kPanelRows + v * 16));
    }
    for (size_t t = 0; t < kT; ++t) {
      const __m512bh xv = reinterpret_cast<__m512bh>(
          _mm512_set1_epi32(static_cast<int>(xp[p * kBF16TokenTile + t])));
      for (size_t v = 0; v < kV; ++v) acc[t][v] = _mm512_dpbf16_ps(acc[t][v], xv, wv[v]);
    }
  }
  for (size_t v = 0; v < kV; ++v) {
    const __mmask16 m = v + 1 == kV ? last : __mmask16(0xFFFF);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + v * 16) : _mm512_setzero_ps();
    for (size_t t = 0; t < kT; ++t) {
      const __m512 r = bias ? _mm512_add_ps(acc[t][v], b) : acc[t][v];
      _mm512_mask_storeu_ps(out + t * out_stride + v * 16, m, r);
    }
  }
}

// Few tokens (decode): the weights stream from DRAM once, so instead of packing a panel, each
// transposed block is used straight from the registers. Same per-lane arithmetic as Tile.
template <size_t kT>
RVEC_BF16_TARGET void DirectRows(const uint32_t* __restrict xp, const uint16_t* w, size_t cols,
                                 size_t r0, size_t r1, const float* bias, float* out,
                                 size_t out_stride) {
  const size_t pairs = BF16Pairs(cols);
  for (size_t r = r0; r < r1; r += 16) {
    const size_t rows = std::min<size_t>(16, r1 - r);
    const uint16_t* wg = w + r * cols;
    __m512 acc[kT];
    for (size_t t = 0; t < kT; ++t) acc[t] = _mm512_setzero_ps();
    for (size_t p0 = 0; p0 < pairs; p0 += 16) {
      __m512i v[16];
      const size_t np = LoadTransposed(wg, cols, rows, p0, v);
      for (size_t j = 0; j < np; ++j) {
        for (size_t t = 0; t < kT; ++t) {
          // Token t's pair p sits in activation tile t / 8 (see PackActivationsBF16).
          const uint32_t* xt =
              xp + t / kBF16TokenTile * pairs * kBF16TokenTile + t % kBF16TokenTile;
          const __m512bh xv = reinterpret_cast<__m512bh>(
              _mm512_set1_epi32(static_cast<int>(xt[(p0 + j) * kBF16TokenTile])));
          acc[t] = _mm512_dpbf16_ps(acc[t], xv, reinterpret_cast<__m512bh>(v[j]));
        }
      }
    }
    const __mmask16 m = LaneMask(rows);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + r) : _mm512_setzero_ps();
    for (size_t t = 0; t < kT; ++t) {
      _mm512_mask_storeu_ps(out + t * out_stride + r, m, bias ? _mm512_add_ps(acc[t], b) : acc[t]);
    }
  }
}

using TileFn = void (*)(const uint32_t*, const uint32_t*, size_t, const float*, float*, size_t,
                        __mmask16);

template <size_t kV, size_t... kT>
constexpr std::array<TileFn, sizeof...(kT)> TileRow(std::index_sequence<kT...>) {
  return {&Tile<kT + 1, kV>...};
}

// kTiles[kV - 1][kT - 1]
const std::array<std::array<TileFn, kBF16TokenTile>, 3> kTiles = {
    TileRow<1>(std::make_index_sequence<kBF16TokenTile>()),
    TileRow<2>(std::make_index_sequence<kBF16TokenTile>()),
    TileRow<3>(std::make_index_sequence<kBF16TokenTile>())};

using DirectFn = void (*)(const uint32_t*, const uint16_t*, size_t, size_t, size_t, const float*,
                          float*, size_t);

template <size_t... kT>
constexpr std::array<DirectFn, sizeof...(kT)> DirectTable(std::index_sequence<kT...>) {
  return {&DirectRows<kT + 1>...};
}

// Batches up to this size (decode of several sequences) skip the panel: packing it stalls on DRAM
// with no arithmetic to overlap, while the register transpose keeps the linear prefetch running.
constexpr size_t kDirectTokens = 16;
const std::array<DirectFn, kDirectTokens> kDirect =
    DirectTable(std::make_index_sequence<kDirectTokens>());

}  // namespace

void MatMulRowsBF16Dot(const uint32_t* packed, size_t n, const uint16_t* w, size_t cols, size_t r0,
                       size_t r1, const float* bias, float* out, size_t out_stride) {
  if (n <= kDirectTokens) return kDirect[n - 1](packed, w, cols, r0, r1, bias, out, out_stride);
  static thread_local PanelBuffer buffer;
  const size_t pairs = BF16Pairs(cols);
  uint32_t* panel = buffer.Get(pairs * kPanelRows);
  for (size_t r = r0; r < r1; r += kPanelRows) {
    const size_t rows = std::min(kPanelRows, r1 - r);
    PackPanel(w, cols, r, rows, panel);
    const size_t vectors = (rows + 15) / 16;
    const size_t tail = rows - (vectors - 1) * 16;
    const __mmask16 last = LaneMask(tail);
    const float* br = bias ? bias + r : nullptr;
    for (size_t t = 0; t < n; t += kBF16TokenTile) {
      const size_t tokens = std::min(kBF16TokenTile, n - t);
      kTiles[vectors - 1][tokens - 1](packed + t * pairs, panel, pairs, br,
                                      out + t * out_stride + r, out_stride, last);
    }
  }
}

}  // namespace rvec
