// Compressing a reasoning vector: truncated SVD (randomized, or exact from the Gram matrix's
// eigen-decomposition in double) into PEFT LoRA factors, top-magnitude or DARE sparsification,
// BitDelta sign compression; then the retention pass that decodes the written form back.
#include "merge/compress.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <regex>

#include "base/fs.h"
#include "base/rng.h"
#include "base/sha256.h"
#include "base/threading.h"
#include "io/checkpoint_writer.h"
#include "merge/eigen.h"  // one thread per tensor, never Eigen's own threads
#include "merge/kernels.h"
#include "merge/model_card.h"
#include "merge/provenance.h"
#include "merge/stream.h"

namespace rvec::merge {

namespace fs = std::filesystem;
using json = nlohmann::json;
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

bool IsEmbedding(const std::string& name) {
  return name.find("embed_tokens") != std::string::npos ||
         name.find("lm_head") != std::string::npos || name.find("wte") != std::string::npos ||
         name.find("embed_in") != std::string::npos || name.find("embed_out") != std::string::npos;
}

// What a LoRA adapter carries: 2-D linear weights. Embeddings and the output head stay out (vLLM
// and most servers do not load LoRA on them), and so do norms and biases (not matrices).
bool IsLoraTarget(const std::string& name, const std::vector<int64_t>& shape) {
  return shape.size() == 2 && name.size() > 7 && name.ends_with(".weight") && !IsEmbedding(name);
}

std::string LayerOf(const std::string& name) {
  static const std::regex kLayer(R"((?:^|\.)(?:layers|h|blocks)\.(\d+)\.)");
  std::smatch m;
  if (std::regex_search(name, m, kLayer)) return "layer " + m[1].str();
  return "outside layers";
}

// Which data type stores compact values: F32, or BF16 / F16 rounded once to nearest even.
Status CheckValueDType(DType d) {
  if (d != DType::kF32 && d != DType::kBF16 && d != DType::kF16) {
    return InvalidArgument("--dtype {}: compact values are stored as F32, BF16 or F16",
                           DTypeName(d));
  }
  return OkStatus();
}

std::vector<uint8_t> Encode(DType d, const float* src, size_t n) {
  std::vector<uint8_t> out(n * DTypeSize(d));
  EncodeFromF32(d, src, n, out.data());
  return out;
}

// ---- truncated SVD ------------------------------------------------------------------------------

struct Factors {
  RowMatF b;  // [m, r]
  RowMatF a;  // [r, n]
};

// Orthonormal basis of Y's columns (thin Householder QR).
Eigen::MatrixXf ThinQ(const Eigen::MatrixXf& y) {
  Eigen::HouseholderQR<Eigen::MatrixXf> qr(y);
  return qr.householderQ() * Eigen::MatrixXf::Identity(y.rows(), y.cols());
}

// B = U·√Σ, A = √Σ·Vᵀ: the balanced split, so neither factor holds all of the scale.
Factors Split(const Eigen::MatrixXd& u, const Eigen::VectorXd& sigma, const Eigen::MatrixXd& v,
              int64_t r) {
  Factors f;
  f.b.setZero(u.rows(), r);
  f.a.setZero(r, v.rows());
  for (int64_t k = 0; k < r && k < sigma.size(); ++k) {
    const double s = std::sqrt(std::max(sigma(k), 0.0));
    f.b.col(k) = (u.col(k) * s).cast<float>();
    f.a.row(k) = (v.col(k) * s).transpose().cast<float>();
  }
  return f;
}

// Halko, Martinsson & Tropp (2011), Algorithm 4.4: randomized range finder with power iterations
// (re-orthonormalised each step), then the exact SVD of the small projected matrix in double.
Factors RandomizedSvd(const RowMatF& m, int64_t r, int oversample, int power_iters,
                      const CounterRng& rng) {
  const int64_t rows = m.rows(), cols = m.cols();
  const int64_t l = std::min<int64_t>(r + oversample, std::min(rows, cols));
  Eigen::MatrixXf omega(cols, l);
  for (int64_t j = 0; j < l; ++j) {
    for (int64_t i = 0; i < cols; i += 2) {
      double z0, z1;
      rng.Normal2(static_cast<uint64_t>(j * ((cols + 1) / 2) + i / 2), &z0, &z1);
      omega(i, j) = static_cast<float>(z0);
      if (i + 1 < cols) omega(i + 1, j) = static_cast<float>(z1);
    }
  }
  Eigen::MatrixXf y = m * omega;
  for (int it = 0; it < power_iters; ++it) {
    const Eigen::MatrixXf q = ThinQ(y);
    const Eigen::MatrixXf z = ThinQ(m.transpose() * q);
    y = m * z;
  }
  const Eigen::MatrixXf q = ThinQ(y);
  const Eigen::MatrixXd small = (q.transpose() * m).cast<double>();  // [l, cols]
  Eigen::BDCSVD<Eigen::MatrixXd> svd(small, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::MatrixXd u = q.cast<double>() * svd.matrixU();
  return Split(u, svd.singularValues(), svd.matrixV(), r);
}

// Eigenvalues (descending) and eigenvectors of the smaller Gram matrix, in double.
struct Gram {
  bool left = true;  // true: G = M·Mᵀ (vectors are U), false: G = Mᵀ·M (vectors are V)
  Eigen::VectorXd values;
  Eigen::MatrixXd vectors;
};

Gram GramEigen(const RowMatF& m, bool with_vectors) {
  const RowMatD md = m.cast<double>();
  Gram g;
  g.left = m.rows() <= m.cols();
  const Eigen::MatrixXd gram =
      g.left ? Eigen::MatrixXd(md * md.transpose()) : Eigen::MatrixXd(md.transpose() * md);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(
      gram, with_vectors ? Eigen::ComputeEigenvectors : Eigen::EigenvaluesOnly);
  g.values = eig.eigenvalues().reverse().cwiseMax(0.0);
  if (with_vectors) g.vectors = eig.eigenvectors().rowwise().reverse();
  return g;
}

// The exact rank-r truncation (Eckart–Young) from the Gram eigen-decomposition.
Factors ExactSvd(const RowMatF& m, int64_t r) {
  const Gram g = GramEigen(m, true);
  const RowMatD md = m.cast<double>();
  r = std::min<int64_t>(r, g.values.size());
  Eigen::VectorXd sigma = g.values.head(r).cwiseSqrt();
  Eigen::MatrixXd known = g.vectors.leftCols(r);
  // The other side's singular vectors: M·v / σ (or Mᵀ·u / σ); zero for σ = 0.
  Eigen::MatrixXd other =
      g.left ? Eigen::MatrixXd(md.transpose() * known) : Eigen::MatrixXd(md * known);
  for (int64_t k = 0; k < r; ++k) {
    if (sigma(k) > 0) {
      other.col(k) /= sigma(k);
    } else {
      other.col(k).setZero();
    }
  }
  return g.left ? Split(known, sigma, other, r) : Split(other, sigma, known, r);
}

int64_t RankForEnergy(const RowMatF& m, double energy) {
  const Gram g = GramEigen(m, false);
  const double total = g.values.sum();
  if (!(total > 0)) return 1;
  double kept = 0;
  for (int64_t k = 0; k < g.values.size(); ++k) {
    kept += g.values(k);
    if (kept >= energy * total) return k + 1;
  }
  return g.values.size();
}

RowMatF LoadMatrix(const TensorView& v) {
  RowMatF m(v.shape()[0], v.shape()[1]);
  ReadF32(v, 0, v.NumElements(), m.data());
  return m;
}

// ---- shared output pieces -------------------------------------------------------------------

std::map<std::string, std::string> Provenance(const Checkpoint& vector, const CompressOptions& o,
                                              const json& params, std::string_view kind) {
  std::map<std::string, std::string> md;
  AddCommonMetadata(md, kind, vector, o.version);
  md["rvec.compact.method"] = std::string(CompactKindName(o.method));
  md["rvec.compact.parameters"] = params.dump();
  md["rvec.source.path"] = fs::absolute(o.vector).lexically_normal().string();
  md["rvec.source.header_sha256"] = HeaderSha256s(vector);
  md["rvec.source.config_sha256"] = ConfigSha256(vector);
  return md;
}

// The one-file writer every compact form uses: rvec provenance of kind `kind`, plus the dense
// shapes for the sparse and sign layouts (null for LoRA, whose shapes are in the factors).
StatusOr<std::unique_ptr<CheckpointWriter>> CompactWriter(
    const Checkpoint& vector, const CompressOptions& o, const json& params, std::string_view kind,
    const fs::path& file, std::vector<TensorSpec> specs, const json* shapes) {
  CheckpointWriterOptions wo;
  wo.single_file = true;
  wo.max_shard_bytes = 0;
  wo.metadata = Provenance(vector, o, params, kind);
  if (shapes) wo.metadata[kShapesKey] = shapes->dump();
  return CheckpointWriter::Create(file, std::move(specs), wo);
}

struct FloatTensor {
  std::string name;
  TensorView view;
};

StatusOr<std::vector<FloatTensor>> FloatTensors(const Checkpoint& vector,
                                                std::vector<std::string>* warnings) {
  std::vector<FloatTensor> out;
  for (const std::string& name : vector.TensorNames()) {
    ASSIGN_OR_RETURN(TensorView v, vector.View(name));
    if (!IsSupportedFloat(v.dtype())) {
      warnings->push_back(
          fmt::format("{} ({}) is not a float tensor: left out", name, DTypeName(v.dtype())));
      continue;
    }
    out.push_back({name, v});
  }
  if (out.empty()) return InvalidArgument("{}: no float tensors", vector.path().string());
  return out;
}

// ---- low-rank -----------------------------------------------------------------------------------

// Ranks: fixed, or from each matrix's spectrum (first pass, eigenvalues only).
std::vector<int64_t> ChooseRanks(const Checkpoint& vector, const CompressOptions& o,
                                 const std::vector<FloatTensor>& targets, ThreadPool& pool,
                                 Progress* progress) {
  std::vector<int64_t> ranks(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& s = targets[i].view.shape();
    ranks[i] = std::min<int64_t>(o.rank, std::min(s[0], s[1]));
  }
  if (o.energy > 0) {
    ParallelTasks(pool, targets.size(), [&](size_t i) {
      ranks[i] = RankForEnergy(LoadMatrix(targets[i].view), o.energy);
      vector.Release(targets[i].name);  // mapped pages: keep resident memory bounded
      if (progress) progress->Advance(targets[i].view.NumBytes());
    });
  }
  return ranks;
}

// What adapter_config.json and the factor tensors say about the ranks.
struct AdapterLayout {
  int64_t r_default = 0;
  json rank_pattern = json::object();
  json alpha_pattern = json::object();
  std::vector<std::string> kinds;  // target_modules
  std::vector<TensorSpec> specs;   // lora_A, lora_B per target
};

// The config's r is the most common rank; the others go to rank_pattern (alpha = rank keeps the
// scaling lora_alpha / r at exactly 1 for every module).
AdapterLayout LayoutAdapter(const CompressOptions& o, const std::vector<FloatTensor>& targets,
                            const std::vector<int64_t>& ranks) {
  AdapterLayout l;
  std::map<int64_t, size_t> count;
  for (int64_t r : ranks) ++count[r];
  l.r_default = ranks[0];
  for (const auto& [r, c] : count) {
    if (c > count[l.r_default]) l.r_default = r;
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string module = LoraModuleOf(targets[i].name);
    const auto& s = targets[i].view.shape();
    if (ranks[i] != l.r_default) {
      l.rank_pattern[module] = ranks[i];
      l.alpha_pattern[module] = ranks[i];
    }
    const std::string leaf = module.substr(module.rfind('.') + 1);
    if (std::find(l.kinds.begin(), l.kinds.end(), leaf) == l.kinds.end()) l.kinds.push_back(leaf);
    l.specs.push_back({"base_model.model." + module + ".lora_A.weight", o.dtype, {ranks[i], s[1]}});
    l.specs.push_back({"base_model.model." + module + ".lora_B.weight", o.dtype, {s[0], ranks[i]}});
  }
  return l;
}

// One matrix per task, at most one per worker in flight (bounded memory).
Status WriteFactors(const Checkpoint& vector, const CompressOptions& o,
                    const std::vector<FloatTensor>& targets, const std::vector<int64_t>& ranks,
                    CheckpointWriter& writer, ThreadPool& pool, Progress* progress) {
  std::mutex error_mutex;
  Status first_error;
  ParallelTasks(pool, targets.size(), [&](size_t i) {
    const TensorView& v = targets[i].view;
    const RowMatF m = LoadMatrix(v);
    vector.Release(targets[i].name);
    const int64_t r = ranks[i];
    const bool exact = o.exact || o.energy > 0 || r + o.oversample >= std::min(m.rows(), m.cols());
    const Factors f = exact ? ExactSvd(m, r)
                            : RandomizedSvd(m, r, o.oversample, o.power_iters,
                                            CounterRng(o.seed, targets[i].name, 0x5BD));
    const auto a = Encode(o.dtype, f.a.data(), static_cast<size_t>(f.a.size()));
    const auto b = Encode(o.dtype, f.b.data(), static_cast<size_t>(f.b.size()));
    Status s = writer.Write(2 * i, 0, a.data(), a.size());
    if (s.ok()) s = writer.Write(2 * i + 1, 0, b.data(), b.size());
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (first_error.ok()) first_error = s;
    }
    if (progress) progress->Advance(v.NumBytes());
  });
  RETURN_IF_ERROR(first_error);
  return writer.Finish();
}

// --keep-rest: what LoRA cannot carry, densely in rest/ (rounded once into the value dtype).
Status WriteRest(const Checkpoint& vector, const CompressOptions& o, const fs::path& dir,
                 const json& params, const std::vector<FloatTensor>& rest) {
  std::vector<TensorSpec> rest_specs;
  for (const auto& t : rest) rest_specs.push_back({t.name, o.dtype, t.view.shape()});
  std::error_code ec;
  fs::create_directories(dir / kRestDir, ec);
  if (ec) return IoError("{}: cannot create: {}", (dir / kRestDir).string(), ec.message());
  ASSIGN_OR_RETURN(auto rest_writer,
                   CompactWriter(vector, o, params, "vector", dir / kRestDir / "model.safetensors",
                                 rest_specs, nullptr));
  for (size_t i = 0; i < rest.size(); ++i) {
    const TensorView& v = rest[i].view;
    std::vector<float> buf(kChunkElements);
    for (uint64_t begin = 0; begin < v.NumElements(); begin += kChunkElements) {
      const size_t n =
          static_cast<size_t>(std::min<uint64_t>(kChunkElements, v.NumElements() - begin));
      ReadF32(v, begin, n, buf.data());
      const auto bytes = Encode(o.dtype, buf.data(), n);
      RETURN_IF_ERROR(
          rest_writer->Write(i, begin * DTypeSize(o.dtype), bytes.data(), bytes.size()));
      ReleaseElements(vector, v, begin, begin + n);
    }
  }
  return rest_writer->Finish();
}

json AdapterConfig(const CompressOptions& o, const AdapterLayout& l) {
  return {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", o.base_model.empty() ? json(nullptr) : json(o.base_model)},
      {"r", l.r_default},
      {"lora_alpha", l.r_default},
      {"lora_dropout", 0.0},
      {"target_modules", l.kinds},
      {"rank_pattern", l.rank_pattern},
      {"alpha_pattern", l.alpha_pattern},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"use_rslora", false},
      {"use_dora", false},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"revision", nullptr},
  };
}

Status WriteLowRank(const Checkpoint& vector, const CompressOptions& o, const fs::path& dir,
                    const json& params, ThreadPool& pool, Progress* progress,
                    CompressReport* report) {
  ASSIGN_OR_RETURN(std::vector<FloatTensor> all, FloatTensors(vector, &report->warnings));
  std::vector<FloatTensor> targets, rest;
  for (auto& t : all) (IsLoraTarget(t.name, t.view.shape()) ? targets : rest).push_back(t);
  if (targets.empty()) {
    return InvalidArgument("{}: no 2-D linear weights to factorise (only embeddings, norms, ...)",
                           o.vector.string());
  }
  for (const auto& t : rest) report->not_in_adapter.push_back(t.name);

  const std::vector<int64_t> ranks = ChooseRanks(vector, o, targets, pool, progress);
  report->min_rank = *std::min_element(ranks.begin(), ranks.end());
  report->max_rank = *std::max_element(ranks.begin(), ranks.end());
  const AdapterLayout layout = LayoutAdapter(o, targets, ranks);
  ASSIGN_OR_RETURN(auto writer, CompactWriter(vector, o, params, "lora_vector",
                                              dir / kAdapterWeights, layout.specs, nullptr));
  RETURN_IF_ERROR(WriteFactors(vector, o, targets, ranks, *writer, pool, progress));

  if (progress) {
    for (const auto& t : rest) progress->Advance(t.view.NumBytes());
  }
  if (o.keep_rest && !rest.empty()) {
    RETURN_IF_ERROR(WriteRest(vector, o, dir, params, rest));
    report->rest_written = true;
  }
  return WriteFileAtomic(dir / kAdapterConfig, AdapterConfig(o, layout).dump(2) + "\n");
}

// ---- sparse -------------------------------------------------------------------------------------

Status WriteSparse(const Checkpoint& vector, const CompressOptions& o, const fs::path& dir,
                   const json& params, ThreadPool& pool, Progress* progress,
                   CompressReport* report) {
  ASSIGN_OR_RETURN(std::vector<FloatTensor> tensors, FloatTensors(vector, &report->warnings));
  const float rescale = o.dare ? static_cast<float>(1.0 / o.density) : 1.0f;

  // Pass 1: which elements stay, counted per chunk (so that pass 2 knows where each chunk writes).
  struct Plan {
    TopKSelector top = TopKSelector::All();
    std::vector<uint64_t> before;  // kept elements before each chunk; back() = total
    DType index_dtype = DType::kI32;
  };
  std::vector<Plan> plans(tensors.size());
  auto keep_flags = [&](size_t t, size_t chunk, uint64_t begin, size_t n, float* vals,
                        std::vector<uint8_t>& keep) {
    ReadF32(tensors[t].view, begin, n, vals);
    keep.assign(n, 0);
    if (o.dare) {
      const CounterRng rng(o.seed, tensors[t].name, 0xDA5E);
      for (size_t i = 0; i < n; ++i) keep[i] = rng.Uniform(begin + i) < o.density;
    } else {
      std::vector<uint32_t> keys(n);
      for (size_t i = 0; i < n; ++i) keys[i] = MagnitudeKey(vals[i]);
      plans[t].top.Mark(chunk, keys.data(), n, keep.data());
    }
  };
  json shapes = json::object();
  std::vector<TensorSpec> specs;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const TensorView& v = tensors[t].view;
    const uint64_t numel = v.NumElements();
    const size_t chunks =
        static_cast<size_t>(std::max<uint64_t>(1, (numel + kChunkElements - 1) / kChunkElements));
    Plan& plan = plans[t];
    if (!o.dare) {
      const uint64_t k = std::min<uint64_t>(
          numel, static_cast<uint64_t>(std::llround(o.density * static_cast<double>(numel))));
      plan.top = TopKSelector::Build(
          k, chunks,
          [&](size_t c, std::vector<uint32_t>& keys) {
            const uint64_t begin = c * kChunkElements;
            const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkElements, numel - begin));
            std::vector<float> vals(n);
            ReadF32(v, begin, n, vals.data());
            keys.resize(n);
            for (size_t i = 0; i < n; ++i) keys[i] = MagnitudeKey(vals[i]);
          },
          [&](size_t n, const std::function<void(size_t)>& fn) { ParallelTasks(pool, n, fn); });
    }
    std::vector<uint64_t> counts(chunks, 0);
    ParallelTasks(pool, chunks, [&](size_t c) {
      const uint64_t begin = c * kChunkElements;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkElements, numel - begin));
      std::vector<float> vals(n);
      std::vector<uint8_t> keep;
      keep_flags(t, c, begin, n, vals.data(), keep);
      counts[c] = static_cast<uint64_t>(std::count(keep.begin(), keep.end(), 1));
    });
    plan.before.assign(chunks + 1, 0);
    for (size_t c = 0; c < chunks; ++c) plan.before[c + 1] = plan.before[c] + counts[c];
    plan.index_dtype = numel > uint64_t{0x7FFFFFFF} ? DType::kI64 : DType::kI32;
    const int64_t kept = static_cast<int64_t>(plan.before.back());
    specs.push_back({tensors[t].name + kSparseIndices, plan.index_dtype, {kept}});
    specs.push_back({tensors[t].name + kSparseValues, o.dtype, {kept}});
    shapes[tensors[t].name] = v.shape();
    if (progress) progress->Advance(v.NumBytes());
  }
  ASSIGN_OR_RETURN(auto writer, CompactWriter(vector, o, params, kSparseKind,
                                              dir / "model.safetensors", specs, &shapes));

  // Pass 2: indices (ascending) and values, each chunk at its own offset.
  std::mutex error_mutex;
  Status first_error;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const uint64_t numel = tensors[t].view.NumElements();
    const Plan& plan = plans[t];
    const size_t chunks = plan.before.size() - 1;
    ParallelTasks(pool, chunks, [&](size_t c) {
      const uint64_t begin = c * kChunkElements;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkElements, numel - begin));
      std::vector<float> vals(n), kept_vals;
      std::vector<uint8_t> keep;
      keep_flags(t, c, begin, n, vals.data(), keep);
      std::vector<int64_t> idx64;
      std::vector<int32_t> idx32;
      for (size_t i = 0; i < n; ++i) {
        if (!keep[i]) continue;
        kept_vals.push_back(vals[i] * rescale);
        if (plan.index_dtype == DType::kI64) {
          idx64.push_back(static_cast<int64_t>(begin + i));
        } else {
          idx32.push_back(static_cast<int32_t>(begin + i));
        }
      }
      if (kept_vals.empty()) return;
      const uint64_t at = plan.before[c];
      const size_t isz = DTypeSize(plan.index_dtype);
      Status s = plan.index_dtype == DType::kI64
                     ? writer->Write(2 * t, at * isz, idx64.data(), idx64.size() * isz)
                     : writer->Write(2 * t, at * isz, idx32.data(), idx32.size() * isz);
      const auto bytes = Encode(o.dtype, kept_vals.data(), kept_vals.size());
      if (s.ok()) s = writer->Write(2 * t + 1, at * DTypeSize(o.dtype), bytes.data(), bytes.size());
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (first_error.ok()) first_error = s;
      }
    });
    RETURN_IF_ERROR(first_error);
    vector.Release(tensors[t].name);
    if (progress) progress->Advance(tensors[t].view.NumBytes());
  }
  return writer->Finish();
}

// ---- sign ---------------------------------------------------------------------------------------

Status WriteSign(const Checkpoint& vector, const CompressOptions& o, const fs::path& dir,
                 const json& params, ThreadPool& pool, Progress* progress, CompressReport* report) {
  ASSIGN_OR_RETURN(std::vector<FloatTensor> tensors, FloatTensors(vector, &report->warnings));
  json shapes = json::object();
  std::vector<TensorSpec> specs;
  std::vector<bool> packed(tensors.size());
  for (size_t t = 0; t < tensors.size(); ++t) {
    const auto& shape = tensors[t].view.shape();
    shapes[tensors[t].name] = shape;
    packed[t] = shape.size() >= 2;
    if (!packed[t]) {
      // Norm weights and biases: a few thousand values, kept exactly.
      specs.push_back({tensors[t].name, DType::kF32, shape});
      continue;
    }
    const int64_t rows = shape[0];
    const int64_t cols =
        static_cast<int64_t>(tensors[t].view.NumElements()) / std::max<int64_t>(rows, 1);
    specs.push_back({tensors[t].name + kSignBits, DType::kU8, {rows, (cols + 7) / 8}});
    specs.push_back(
        {tensors[t].name + kSignScale, DType::kF32, {o.per_tensor_scale ? int64_t{1} : rows}});
  }
  ASSIGN_OR_RETURN(auto writer, CompactWriter(vector, o, params, kSignKind,
                                              dir / "model.safetensors", specs, &shapes));

  size_t spec = 0;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const TensorView& v = tensors[t].view;
    const uint64_t numel = v.NumElements();
    if (!packed[t]) {
      std::vector<float> vals(numel);
      ReadF32(v, 0, numel, vals.data());
      RETURN_IF_ERROR(writer->Write(spec++, 0, vals.data(), numel * 4));
      if (progress) progress->Advance(v.NumBytes());
      continue;
    }
    const uint64_t rows = static_cast<uint64_t>(v.shape()[0]);
    const uint64_t cols = numel / std::max<uint64_t>(rows, 1);
    const uint64_t bytes_per_row = (cols + 7) / 8;
    const uint64_t rows_per_block =
        std::max<uint64_t>(1, kChunkElements / std::max<uint64_t>(cols, 1));
    const size_t blocks = static_cast<size_t>((rows + rows_per_block - 1) / rows_per_block);
    std::vector<uint8_t> bits(rows * bytes_per_row, 0);
    std::vector<double> abs_sum(rows, 0.0);
    ParallelTasks(pool, blocks, [&](size_t blk) {
      const uint64_t r0 = blk * rows_per_block, r1 = std::min(rows, r0 + rows_per_block);
      std::vector<float> row(cols);
      for (uint64_t r = r0; r < r1; ++r) {
        ReadF32(v, r * cols, cols, row.data());
        double sum = 0;
        uint8_t* out = bits.data() + r * bytes_per_row;
        for (uint64_t c = 0; c < cols; ++c) {
          sum += std::fabs(static_cast<double>(row[c]));
          // +0.0 and -0.0 both decode to +scale: a sign bit cannot say "zero".
          if (!(row[c] < 0.0f)) out[c / 8] |= static_cast<uint8_t>(1u << (c % 8));
        }
        abs_sum[r] = sum;
      }
    });
    // The L2-optimal scale for fixed signs σ is Σ v·σ / n = mean |v| (BitDelta, Liu et al. 2024).
    std::vector<float> scales;
    if (o.per_tensor_scale) {
      double total = 0;
      for (double s : abs_sum) total += s;
      scales.push_back(static_cast<float>(numel ? total / static_cast<double>(numel) : 0.0));
    } else {
      for (double s : abs_sum) scales.push_back(static_cast<float>(cols ? s / cols : 0.0));
    }
    vector.Release(tensors[t].name);
    RETURN_IF_ERROR(writer->Write(spec++, 0, bits.data(), bits.size()));
    RETURN_IF_ERROR(writer->Write(spec++, 0, scales.data(), scales.size() * 4));
    if (progress) progress->Advance(v.NumBytes());
  }
  return writer->Finish();
}

ModelCard CompactCard(const CompressReport& r, const CompressOptions& o) {
  const std::string kind(CompactKindName(r.method));
  ModelCard card;
  card.FrontMatter(false, {"rvec", "reasoning-vector", kind})
      .Title(fmt::format("Compact reasoning vector ({})", kind))
      .WrittenBy(o.version, "`rvec compress`",
                 fmt::format("from `{}`", fs::absolute(o.vector).lexically_normal().string()))
      .Paragraph(fmt::format("Parameters: `{}`", r.parameters.dump()))
      .Table(
          {"", ""},
          {{"size on disk",
            fmt::format("{} bytes ({:.2f}% of the dense bf16 vector)", r.bytes_on_disk,
                        r.dense_bf16_bytes ? 100.0 * r.bytes_on_disk / r.dense_bf16_bytes : 0.0)},
           {"relative error ‖v − ṽ‖/‖v‖", fmt::format("{:.4f}", r.RelativeError())},
           {"cosine(v, ṽ)", fmt::format("{:.4f}", r.Cosine())}});
  if (r.method == CompactKind::kLowRank) {
    card.Paragraph(
        "A PEFT LoRA adapter: ΔW = (lora_alpha / r)·B·A = B·A for every module. Load it with "
        "PEFT (`PeftModel.from_pretrained`) or serve it with `vllm serve BASE --enable-lora "
        "--lora-modules NAME=THIS_DIR`; `rvec apply --vector THIS_DIR:ALPHA` merges it.");
    if (!r.not_in_adapter.empty()) {
      card.Paragraph(fmt::format(
          "Not in the adapter ({:.4f}% of ‖v‖²): {} tensors (norms, biases, embeddings){}.",
          100.0 * r.not_in_adapter_share, r.not_in_adapter.size(),
          r.rest_written ? ", written densely in rest/" : "; use --keep-rest to keep them"));
    }
  }
  card.Paragraph("See compress.json for retention per module kind and per layer.");
  return card;
}

}  // namespace

std::string ModuleKindOf(const std::string& name) {
  if (IsEmbedding(name)) return "embeddings";
  if (name.find("norm") != std::string::npos) return "norms";
  if (name.ends_with(".bias")) return "biases";
  const std::string module = LoraModuleOf(name);
  const size_t dot = module.rfind('.');
  return dot == std::string::npos ? module : module.substr(dot + 1);
}

double CompressReport::RelativeError() const {
  return total.norm2 > 0 ? std::sqrt(total.err2 / total.norm2) : 0.0;
}

double CompressReport::Cosine() const {
  const double d = std::sqrt(total.norm2) * std::sqrt(total.approx2);
  return d > 0 ? total.dot / d : 0.0;
}

json CompressReport::ToJson() const {
  auto group = [&](const RetentionGroup& g) {
    return json{{"group", g.group},
                {"share_of_norm2", total.norm2 > 0 ? g.norm2 / total.norm2 : 0.0},
                {"captured_energy", g.Captured()},
                {"relative_error", g.norm2 > 0 ? std::sqrt(g.err2 / g.norm2) : 0.0}};
  };
  json kinds = json::array(), layers = json::array();
  for (const auto& g : by_kind) kinds.push_back(group(g));
  for (const auto& g : by_layer) layers.push_back(group(g));
  json j = {{"output", out.string()},
            {"method", std::string(CompactKindName(method))},
            {"parameters", parameters},
            {"tensors", tensors},
            {"bytes_on_disk", bytes_on_disk},
            {"dense_bf16_bytes", dense_bf16_bytes},
            {"size_fraction_of_dense_bf16",
             dense_bf16_bytes ? static_cast<double>(bytes_on_disk) / dense_bf16_bytes : 0.0},
            {"relative_error", RelativeError()},
            {"cosine", Cosine()},
            {"captured_energy", total.Captured()},
            {"by_kind", kinds},
            {"by_layer", layers},
            {"warnings", warnings}};
  if (method == CompactKind::kLowRank) {
    j["min_rank"] = min_rank;
    j["max_rank"] = max_rank;
    j["not_in_adapter"] = not_in_adapter;
    j["not_in_adapter_share_of_norm2"] = not_in_adapter_share;
    j["rest_written"] = rest_written;
  }
  return j;
}

Status MeasureRetention(const Checkpoint& dense, const CompactVector& compact, size_t threads,
                        CompressReport* report, Progress* progress) {
  struct Chunk {
    size_t tensor;
    uint64_t begin, n;
  };
  std::vector<TensorView> views;
  std::vector<Chunk> chunks;
  for (const std::string& name : dense.TensorNames()) {
    ASSIGN_OR_RETURN(TensorView v, dense.View(name));
    if (!IsSupportedFloat(v.dtype())) continue;
    if (compact.Has(name) && compact.NumElements(name) != v.NumElements()) {
      return FailedPrecondition("{}: {} has {} elements, the compact form {}",
                                dense.path().string(), name, v.NumElements(),
                                compact.NumElements(name));
    }
    for (uint64_t b = 0; b < v.NumElements(); b += kChunkElements) {
      chunks.push_back({views.size(), b, std::min<uint64_t>(kChunkElements, v.NumElements() - b)});
    }
    views.push_back(v);
  }
  std::vector<std::array<double, 4>> sums(chunks.size());
  std::vector<Status> errors(chunks.size());
  ThreadPool pool(threads);
  ParallelTasks(pool, chunks.size(), [&](size_t c) {
    const Chunk& ch = chunks[c];
    const TensorView& v = views[ch.tensor];
    std::vector<float> x(ch.n), y(ch.n, 0.0f);
    ReadF32(v, ch.begin, ch.n, x.data());
    if (compact.Has(v.name())) errors[c] = compact.Decode(v.name(), ch.begin, ch.n, y.data());
    ReleaseElements(dense, v, ch.begin, ch.begin + ch.n);
    double norm2 = 0, err2 = 0, dot = 0, approx2 = 0;
    for (uint64_t i = 0; i < ch.n; ++i) {
      const double a = x[i], b = y[i];
      norm2 += a * a;
      err2 += (a - b) * (a - b);
      dot += a * b;
      approx2 += b * b;
    }
    sums[c] = {norm2, err2, dot, approx2};
    if (progress) progress->Advance(ch.n * DTypeSize(v.dtype()));
  });
  for (const Status& s : errors) RETURN_IF_ERROR(s);
  // Fixed summation order (chunk order) whatever the thread count.
  std::map<std::string, RetentionGroup> kinds, layers;
  std::vector<std::string> kind_order, layer_order;
  report->total = RetentionGroup{"total"};
  report->not_in_adapter_share = 0;
  std::vector<double> tensor_norm2(views.size(), 0.0);
  for (size_t c = 0; c < chunks.size(); ++c) {
    const std::string& name = views[chunks[c].tensor].name();
    const std::string kind = ModuleKindOf(name), layer = LayerOf(name);
    if (!kinds.count(kind)) kind_order.push_back(kind);
    if (!layers.count(layer)) layer_order.push_back(layer);
    for (RetentionGroup* g : {&kinds[kind], &layers[layer], &report->total}) {
      g->norm2 += sums[c][0];
      g->err2 += sums[c][1];
      g->dot += sums[c][2];
      g->approx2 += sums[c][3];
    }
    tensor_norm2[chunks[c].tensor] += sums[c][0];
  }
  for (size_t t = 0; t < views.size(); ++t) {
    if (std::find(report->not_in_adapter.begin(), report->not_in_adapter.end(), views[t].name()) !=
        report->not_in_adapter.end()) {
      report->not_in_adapter_share += tensor_norm2[t];
    }
  }
  if (report->total.norm2 > 0) report->not_in_adapter_share /= report->total.norm2;
  report->by_kind.clear();
  report->by_layer.clear();
  for (const auto& k : kind_order) {
    kinds[k].group = k;
    report->by_kind.push_back(kinds[k]);
  }
  for (const auto& l : layer_order) {
    layers[l].group = l;
    report->by_layer.push_back(layers[l]);
  }
  report->tensors = views.size();
  uint64_t elements = 0;
  for (const auto& v : views) elements += v.NumElements();
  report->dense_bf16_bytes = 2 * elements;
  report->bytes_on_disk = compact.BytesOnDisk();
  return OkStatus();
}

StatusOr<CompressReport> Compress(const CompressOptions& o, Progress* progress) {
  RETURN_IF_ERROR(CheckValueDType(o.dtype));
  json params;
  switch (o.method) {
    case CompactKind::kLowRank:
      if ((o.rank > 0) == (o.energy > 0)) {
        return InvalidArgument("lowrank needs exactly one of --rank R (R >= 1) or --energy E");
      }
      if (o.energy > 0 && !(o.energy <= 1.0)) {
        return InvalidArgument("--energy {}: a fraction in (0, 1]", o.energy);
      }
      if (o.power_iters < 0 || o.oversample < 0) {
        return InvalidArgument("--power-iters and --oversample must be >= 0");
      }
      params = {{"keep_rest", o.keep_rest}, {"dtype", std::string(DTypeName(o.dtype))}};
      if (o.rank > 0) {
        params["rank"] = o.rank;
        params["svd"] = o.exact ? "exact" : "randomized";
        if (!o.exact) {
          params["power_iters"] = o.power_iters;
          params["oversample"] = o.oversample;
          params["seed"] = o.seed;
        }
      } else {
        params["energy"] = o.energy;
        params["svd"] = "exact";
      }
      break;
    case CompactKind::kSparse:
      if (!(o.density > 0.0 && o.density <= 1.0)) {
        return InvalidArgument("--density {}: a fraction in (0, 1]", o.density);
      }
      params = {{"density", o.density},
                {"selection", o.dare ? "dare" : "magnitude"},
                {"dtype", std::string(DTypeName(o.dtype))}};
      if (o.dare) params["seed"] = o.seed;
      break;
    case CompactKind::kSign:
      params = {{"scale", o.per_tensor_scale ? "tensor" : "row"}};
      break;
  }
  ASSIGN_OR_RETURN(Checkpoint vector, Checkpoint::Open(o.vector));
  if (IsCompactVector(o.vector)) {
    return InvalidArgument("{} is already a compact vector; compress the dense vector",
                           o.vector.string());
  }
  // Progress in bytes of the source: each pass over it, then the retention pass.
  const int passes = o.method == CompactKind::kSparse                      ? 2
                     : (o.method == CompactKind::kLowRank && o.energy > 0) ? 2
                                                                           : 1;
  if (progress) progress->SetTotal((passes + 1) * vector.TotalTensorBytes());
  ASSIGN_OR_RETURN(PendingOutput pending, PendingOutput::Create(o.out, o.force, true));
  CompressReport report;
  report.method = o.method;
  report.parameters = params;
  report.out = o.out;
  ThreadPool pool(o.threads);
  const fs::path dir = pending.temp_path();
  switch (o.method) {
    case CompactKind::kLowRank:
      RETURN_IF_ERROR(WriteLowRank(vector, o, dir, params, pool, progress, &report));
      break;
    case CompactKind::kSparse:
      RETURN_IF_ERROR(WriteSparse(vector, o, dir, params, pool, progress, &report));
      break;
    case CompactKind::kSign:
      RETURN_IF_ERROR(WriteSign(vector, o, dir, params, pool, progress, &report));
      break;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<CompactVector> written, CompactVector::Open(dir));
  if (progress) progress->SetLabel("compress: retention");
  RETURN_IF_ERROR(MeasureRetention(vector, *written, o.threads, &report, progress));
  RETURN_IF_ERROR(WriteFileAtomic(dir / "compress.json", report.ToJson().dump(2) + "\n"));
  RETURN_IF_ERROR(CompactCard(report, o).Write(dir));
  RETURN_IF_ERROR(pending.Commit());
  return report;
}

}  // namespace rvec::merge
