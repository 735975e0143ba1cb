// MatMul kernels: Highway f32-FMA tiles for f32/bf16/f16 weights (compiled for every x86 target),
// the row partitioning over the thread pool, and the scalar f64 reference.
#include "ops/matmul.h"

#include <algorithm>
#include <vector>

#include "hwy/cache_control.h"
#include "ops/matmul_bf16.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rvec {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class DF>
HWY_INLINE hn::Vec<DF> LoadWidened(DF df, const float* p) {
  return hn::LoadU(df, p);
}
template <class DF>
HWY_INLINE hn::Vec<DF> LoadWidened(DF df, const hwy::bfloat16_t* p) {
  const hn::Rebind<hwy::bfloat16_t, DF> dbf;
  return hn::PromoteTo(df, hn::LoadU(dbf, p));
}
template <class DF>
HWY_INLINE hn::Vec<DF> LoadWidened(DF df, const hwy::float16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, p));
}

HWY_INLINE float ScalarWeight(const float* p) { return *p; }
HWY_INLINE float ScalarWeight(const hwy::bfloat16_t* p) {
  return BF16ToF32(reinterpret_cast<const uint16_t*>(p)[0]);
}
HWY_INLINE float ScalarWeight(const hwy::float16_t* p) {
  return F16ToF32(reinterpret_cast<const uint16_t*>(p)[0]);
}

// How a tile fetches the weight rows it will need next (see Tile).
enum class Ahead { kNone, kL2NextGroup, kL1 };

// A kT x kR block of outputs: kT tokens times kR weight rows, one accumulator vector each. The
// accumulation order of one output element does not depend on kT/kR, so any tiling (and batch
// size) gives bit-identical results.
template <size_t kT, size_t kR, class WT>
HWY_INLINE void Tile(const float* HWY_RESTRICT x, size_t x_stride, const WT* HWY_RESTRICT w,
                     size_t cols, const float* HWY_RESTRICT bias, float* HWY_RESTRICT out,
                     size_t out_stride, Ahead ahead_mode) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const size_t N = hn::Lanes(df);
  V acc[kT][kR];
  for (size_t t = 0; t < kT; ++t) {
    for (size_t r = 0; r < kR; ++r) acc[t][r] = hn::Zero(df);
  }
  const size_t kv = cols - cols % N;
  // Few tokens (decode) stream the weights from DRAM once, and the hardware prefetcher follows kR
  // short interleaved row streams badly. Rows ahead are one contiguous block: fetch a group's
  // worth of it line by line, in address order, spread over this group's steps. kL2NextGroup
  // fetches the next group into L2 (on the 0.5B shape this took a 896-column matrix-vector
  // product from ~69% to ~86-93% of the read bandwidth); kL1 fetches 16 KiB ahead into L1, which
  // does better still while groups are small (see DecodeRowsT).
  const size_t group_bytes = kR * cols * sizeof(WT);
  const char* ahead = reinterpret_cast<const char*>(w) +
                      (ahead_mode == Ahead::kL1 ? size_t{16} << 10 : group_bytes);
  const size_t lines = ahead_mode == Ahead::kNone ? 0 : group_bytes / 64;
  const size_t per_step = kv ? (lines + kv / N - 1) / (kv / N) : 0;
  size_t line = 0;
  for (size_t k = 0; k < kv; k += N) {
    V wv[kR];
    for (size_t r = 0; r < kR; ++r) wv[r] = LoadWidened(df, w + r * cols + k);
    if (ahead_mode == Ahead::kL1) {
      for (size_t j = 0; j < per_step && line < lines; ++j, ++line) {
        __builtin_prefetch(ahead + line * 64, 0, 3);  // prefetcht0
      }
    } else {
      for (size_t j = 0; j < per_step && line < lines; ++j, ++line) {
        __builtin_prefetch(ahead + line * 64, 0, 2);  // prefetcht1
      }
    }
    for (size_t t = 0; t < kT; ++t) {
      const V xv = hn::LoadU(df, x + t * x_stride + k);
      for (size_t r = 0; r < kR; ++r) acc[t][r] = hn::MulAdd(xv, wv[r], acc[t][r]);
    }
  }
  for (size_t t = 0; t < kT; ++t) {
    for (size_t r = 0; r < kR; ++r) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[t][r]));
      for (size_t k = kv; k < cols; ++k) s += x[t * x_stride + k] * ScalarWeight(w + r * cols + k);
      out[t * out_stride + r] = bias ? s + bias[r] : s;
    }
  }
}

template <size_t kR, class WT>
HWY_INLINE void TokenTail(size_t count, const float* x, size_t x_stride, const WT* w, size_t cols,
                          const float* bias, float* out, size_t out_stride, Ahead ahead) {
  switch (count) {
    case 1:
      Tile<1, kR>(x, x_stride, w, cols, bias, out, out_stride, ahead);
      break;
    case 2:
      Tile<2, kR>(x, x_stride, w, cols, bias, out, out_stride, ahead);
      break;
    case 3:
      Tile<3, kR>(x, x_stride, w, cols, bias, out, out_stride, ahead);
      break;
    default:
      break;
  }
}

// Fewer than 4 tokens (decode): groups of 4 rows, whose linear prefetch (see Tile) kept closest to
// the read bandwidth in a sweep of 2..8 rows. Each output element is still computed the same way.
template <class WT>
void DecodeRowsT(const float* x, size_t n, size_t x_stride, const WT* w, size_t cols, size_t r0,
                 size_t r1, const float* bias, float* out, size_t out_stride) {
  constexpr size_t kR = 4;
  // Fetching 16 KiB ahead into L1 beat fetching the next group into L2 for groups up to 12 KiB
  // (bf16 rows of 896 and 1536 columns; batch-1 decode 6-16% faster on the 0.5B and 1.5B shapes,
  // interleaved A/B) and lost ~25% on 38 KiB groups (4864 columns, stand-alone sweep), whose lines
  // in flight no longer fit in L1 beside the ones in use.
  const Ahead ahead =
      kR * cols * sizeof(WT) <= (size_t{12} << 10) ? Ahead::kL1 : Ahead::kL2NextGroup;
  size_t r = r0;
  for (; r + kR <= r1; r += kR) {
    TokenTail<kR>(n, x, x_stride, w + r * cols, cols, bias ? bias + r : nullptr, out + r,
                  out_stride, ahead);
  }
  for (; r < r1; ++r) {
    TokenTail<1>(n, x, x_stride, w + r * cols, cols, bias ? bias + r : nullptr, out + r, out_stride,
                 Ahead::kNone);
  }
}

// Batches up to this many tokens stream their weights (see RowsT).
constexpr size_t kSmallBatch = 64;

template <class WT>
void RowsT(const float* x, size_t n, size_t x_stride, const WT* w, size_t cols, size_t r0,
           size_t r1, const float* bias, float* out, size_t out_stride) {
  constexpr size_t kT = 4;
  if (n < kT) return DecodeRowsT(x, n, x_stride, w, cols, r0, r1, bias, out, out_stride);
  // 4 tokens x 6 rows: 24 accumulators + 6 weight vectors + 1 activation fit the 32 registers
  // of AVX-512 (measured ~25% faster than 4x4 on Zen 5); 4 x 3 fits the 16 of AVX2.
  constexpr size_t kR = HWY_MAX_BYTES >= 64 ? 6 : 3;
  // Tokens per block: the block's activations (up to ~768 KiB) stay in L2 while a group of kR
  // weight rows stays in L1 and is used for every token of the block.
  const size_t block =
      std::clamp<size_t>((768u << 10) / (cols * sizeof(float) + 1) / kT * kT, kT, 512);
  // A small batch (decode of several sequences) reads each row group from DRAM in its first
  // token tile, so that tile prefetches the next group (see Tile); large blocks are compute-bound.
  const bool prefetch = n <= kSmallBatch;
  for (size_t tb = 0; tb < n; tb += block) {
    const size_t te = std::min(n, tb + block);
    size_t r = r0;
    for (; r + kR <= r1; r += kR) {
      const WT* wr = w + r * cols;
      const float* br = bias ? bias + r : nullptr;
      size_t t = tb;
      for (; t + kT <= te; t += kT) {
        Tile<kT, kR>(x + t * x_stride, x_stride, wr, cols, br, out + t * out_stride + r, out_stride,
                     prefetch && t == tb ? Ahead::kL2NextGroup : Ahead::kNone);
      }
      TokenTail<kR>(te - t, x + t * x_stride, x_stride, wr, cols, br, out + t * out_stride + r,
                    out_stride, prefetch && t == tb ? Ahead::kL2NextGroup : Ahead::kNone);
    }
    for (; r < r1; ++r) {
      const WT* wr = w + r * cols;
      const float* br = bias ? bias + r : nullptr;
      size_t t = tb;
      for (; t + kT <= te; t += kT) {
        Tile<kT, 1>(x + t * x_stride, x_stride, wr, cols, br, out + t * out_stride + r, out_stride,
                    Ahead::kNone);
      }
      TokenTail<1>(te - t, x + t * x_stride, x_stride, wr, cols, br, out + t * out_stride + r,
                   out_stride, Ahead::kNone);
    }
  }
}

void MatMulRows(const float* x, size_t n, size_t x_stride, DType dtype, const void* w, size_t cols,
                size_t r0, size_t r1, const float* bias, float* out, size_t out_stride) {
  switch (dtype) {
    case DType::kBF16:
      RowsT(x, n, x_stride, static_cast<const hwy::bfloat16_t*>(w), cols, r0, r1, bias, out,
            out_stride);
      break;
    case DType::kF16:
      RowsT(x, n, x_stride, static_cast<const hwy::float16_t*>(w), cols, r0, r1, bias, out,
            out_stride);
      break;
    default:
      RowsT(x, n, x_stride, static_cast<const float*>(w), cols, r0, r1, bias, out, out_stride);
      break;
  }
}

int64_t DispatchedTarget() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace rvec
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace rvec {

HWY_EXPORT(MatMulRows);
HWY_EXPORT(DispatchedTarget);

namespace {

struct RowTask {
  size_t job;
  size_t r0;
  size_t r1;
};

// Rows are cut into chunks of a multiple of `granule` (whole 4-, 6- and 3-row f32 tiles, or whole
// 48-row bf16 panels); which chunk runs where never changes a result, because each output element
// is computed the same way in any chunk.
void AppendTasks(size_t job, size_t rows, size_t workers, size_t granule,
                 std::vector<RowTask>* tasks) {
  const size_t target_tasks = std::max<size_t>(1, workers * 4);
  size_t chunk = (rows + target_tasks - 1) / target_tasks;
  chunk =
      std::max<size_t>(std::max<size_t>(24, granule), (chunk + granule - 1) / granule * granule);
  for (size_t r = 0; r < rows; r += chunk) tasks->push_back({job, r, std::min(rows, r + chunk)});
}

bool UseBF16Dot(const WeightMatrix& w, MatMulPrecision precision) {
  return precision == MatMulPrecision::kBF16Activations && w.dtype == DType::kBF16 &&
         HasBF16DotProduct();
}

}  // namespace

void MatMulMulti(const float* x, size_t n, size_t x_stride, const MatMulJob* jobs, size_t num_jobs,
                 ThreadPool* pool, MatMulPrecision precision) {
  if (n == 0 || num_jobs == 0) return;
  const size_t workers = pool ? pool->NumWorkers() : 1;
  // Activations rounded to bf16 and packed once per distinct width, shared by the jobs that use
  // the bf16 dot product (q/k/v and gate/up all read the same normalized input).
  size_t xb_cols = 0;
  for (size_t j = 0; j < num_jobs && xb_cols == 0; ++j) {
    if (UseBF16Dot(jobs[j].w, precision)) xb_cols = jobs[j].w.cols;
  }
  auto dot = [&](const MatMulJob& job) {
    return xb_cols && UseBF16Dot(job.w, precision) && job.w.cols == xb_cols;
  };
  std::vector<RowTask> tasks;
  for (size_t j = 0; j < num_jobs; ++j) {
    // The bf16 kernel works on 48-row panels (16-row groups for up to 16 tokens); chunks of whole
    // panels keep it busy.
    AppendTasks(j, jobs[j].w.rows, workers, dot(jobs[j]) ? 48 : 12, &tasks);
  }
  // Per calling thread; workers see it through `packed` (naming a thread_local in a task would
  // name the worker's own copy).
  static thread_local std::vector<uint32_t> xb;
  uint32_t* const packed =
      xb_cols ? (xb.resize(PackedActivationsWords(n, xb_cols)), xb.data()) : nullptr;
  if (xb_cols) {
    const size_t tiles = (n + kBF16TokenTile - 1) / kBF16TokenTile;
    auto pack = [&](size_t tile, size_t) {
      PackActivationsBF16(x, n, x_stride, xb_cols, tile * kBF16TokenTile,
                          (tile + 1) * kBF16TokenTile, packed);
    };
    if (pool && workers > 1 && tiles > 1) {
      pool->ParallelFor(tiles, pack);
    } else {
      for (size_t t = 0; t < tiles; ++t) pack(t, 0);
    }
  }
  auto run = [&](size_t task, size_t) {
    const RowTask& rt = tasks[task];
    const MatMulJob& job = jobs[rt.job];
    if (dot(job)) {
      MatMulRowsBF16Dot(packed, n, static_cast<const uint16_t*>(job.w.data), job.w.cols, rt.r0,
                        rt.r1, job.bias, job.out, job.out_stride);
    } else {
      HWY_DYNAMIC_DISPATCH(MatMulRows)
      (x, n, x_stride, job.w.dtype, job.w.data, job.w.cols, rt.r0, rt.r1, job.bias, job.out,
       job.out_stride);
    }
  };
  if (pool && workers > 1 && tasks.size() > 1) {
    pool->ParallelFor(tasks.size(), run);
  } else {
    for (size_t t = 0; t < tasks.size(); ++t) run(t, 0);
  }
}

void MatMul(const float* x, size_t n, size_t x_stride, const WeightMatrix& w, const float* bias,
            float* out, size_t out_stride, ThreadPool* pool, MatMulPrecision precision) {
  const MatMulJob job{w, bias, out, out_stride};
  MatMulMulti(x, n, x_stride, &job, 1, pool, precision);
}

void MatMulReference(const float* x, size_t n, size_t x_stride, const WeightMatrix& w,
                     const float* bias, double* out, size_t out_stride) {
  for (size_t t = 0; t < n; ++t) {
    for (size_t r = 0; r < w.rows; ++r) {
      double s = bias ? bias[r] : 0.0;
      for (size_t k = 0; k < w.cols; ++k) {
        s += static_cast<double>(x[t * x_stride + k]) *
             static_cast<double>(LoadAsF32(w.dtype, w.data, r * w.cols + k));
      }
      out[t * out_stride + r] = s;
    }
  }
}

std::string MatMulTargetName() {
  std::string name = hwy::TargetName(HWY_DYNAMIC_DISPATCH(DispatchedTarget)());
  if (HasBF16DotProduct()) name += "+AVX512_BF16";
  return name;
}

}  // namespace rvec
#endif  // HWY_ONCE
