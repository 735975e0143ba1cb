// Reading compact vectors: layout detection, validation with errors that name the file and
// tensor, and range decoding to dense f32.
#include "merge/compact.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>

#include "base/fs.h"
#include "merge/kernels.h"
#include "merge/stream.h"

namespace rvec::merge {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr char kPeftPrefix[] = "base_model.model.";
constexpr char kLoraA[] = ".lora_A.weight";
constexpr char kLoraB[] = ".lora_B.weight";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

uint64_t Product(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t DirectoryBytes(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

int64_t ReadIndex(const TensorView& v, uint64_t i) {
  if (v.dtype() == DType::kI32) {
    int32_t x;
    std::memcpy(&x, v.data + 4 * i, 4);
    return x;
  }
  int64_t x;
  std::memcpy(&x, v.data + 8 * i, 8);
  return x;
}

// PEFT's per-module pattern lookup: a key matches a module whose name equals it or ends in
// ".<key>" (PEFT treats keys as regular expressions anchored at the end; rvec writes full names).
const json* PatternFor(const json& patterns, const std::string& module) {
  if (!patterns.is_object()) return nullptr;
  for (auto it = patterns.begin(); it != patterns.end(); ++it) {
    const std::string& key = it.key();
    if (module == key || EndsWith(module, "." + key)) return &it.value();
    std::regex re;
    try {
      re = std::regex("(.*\\.)?" + key + "$");
    } catch (const std::regex_error&) {
      continue;
    }
    if (std::regex_match(module, re)) return &it.value();
  }
  return nullptr;
}

}  // namespace

struct CompactVector::Entry {
  enum class Source { kLora, kDense, kSparse, kSign };
  Source source = Source::kDense;
  std::vector<int64_t> shape;
  const Checkpoint* ckpt = nullptr;
  TensorView first;    // lora A [r, in] / sparse indices / sign bits / dense tensor
  TensorView second;   // lora B [out, r] / sparse values / sign scale
  float scale = 1.0f;  // lora scaling (lora_alpha / r)
};

std::string_view CompactKindName(CompactKind kind) {
  switch (kind) {
    case CompactKind::kLowRank:
      return "lowrank";
    case CompactKind::kSparse:
      return "sparse";
    case CompactKind::kSign:
      return "sign";
  }
  return "?";
}

std::string LoraModuleOf(const std::string& tensor_name) {
  return EndsWith(tensor_name, ".weight") ? tensor_name.substr(0, tensor_name.size() - 7)
                                          : tensor_name;
}

bool IsCompactVector(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec) && fs::exists(path / kAdapterConfig, ec)) return true;
  auto ckpt = Checkpoint::Open(path);
  if (!ckpt.ok() || ckpt->num_shards() == 0) return false;
  const auto& md = ckpt->shard(0).metadata();
  auto it = md.find(kKindKey);
  return it != md.end() && (it->second == kSparseKind || it->second == kSignKind);
}

CompactVector::~CompactVector() = default;

bool CompactVector::Has(std::string_view name) const { return entries_.count(name) > 0; }

const std::vector<int64_t>& CompactVector::Shape(std::string_view name) const {
  static const std::vector<int64_t> kNone;
  auto it = entries_.find(name);
  return it == entries_.end() ? kNone : it->second.shape;
}

uint64_t CompactVector::NumElements(std::string_view name) const { return Product(Shape(name)); }

namespace {

// adapter_config.json's scaling facts (PEFT: scale = lora_alpha / r, or / √r with rsLoRA).
struct LoraConfig {
  double r_default = 0;
  double alpha_default = 0;
  bool rslora = false;
  json rank_pattern;
  json alpha_pattern;
};

StatusOr<LoraConfig> ReadLoraConfig(const fs::path& config_path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path));
  const json config = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return DataLoss("{}: not a JSON object", config_path.string());
  }
  if (config.value("peft_type", std::string()) != "LORA") {
    return Unimplemented("{}: peft_type is '{}'; rvec reads LORA adapters", config_path.string(),
                         config.value("peft_type", std::string()));
  }
  if (config.value("fan_in_fan_out", false)) {
    return Unimplemented("{}: fan_in_fan_out adapters (GPT-2 Conv1D layout) are not supported",
                         config_path.string());
  }
  if (config.value("use_dora", false)) {
    return Unimplemented("{}: DoRA adapters are not supported", config_path.string());
  }
  const json r_json = config.value("r", json());
  const json alpha_json = config.value("lora_alpha", json());
  if (!r_json.is_number() || !alpha_json.is_number()) {
    return DataLoss("{}: needs numeric \"r\" and \"lora_alpha\"", config_path.string());
  }
  LoraConfig c;
  c.r_default = r_json.get<double>();
  c.alpha_default = alpha_json.get<double>();
  c.rslora = config.value("use_rslora", false);
  c.rank_pattern = config.value("rank_pattern", json::object());
  c.alpha_pattern = config.value("alpha_pattern", json::object());
  return c;
}

// One adapted module: its factors A [r, in] and B [out, r], checked against the config.
struct LoraModule {
  std::string dense;  // the dense tensor name
  TensorView a;
  TensorView b;
  float scale = 1.0f;
};

StatusOr<LoraModule> ReadLoraModule(const Checkpoint& st, const fs::path& path,
                                    const std::string& name, const LoraConfig& config) {
  if (!EndsWith(name, kLoraA) || name.rfind(kPeftPrefix, 0) != 0) {
    return Unimplemented(
        "{}: tensor {} is not a lora_A/lora_B weight (embedding LoRA and modules_to_save are "
        "not supported)",
        (path / kAdapterWeights).string(), name);
  }
  const std::string stem = name.substr(0, name.size() - std::strlen(kLoraA));
  const std::string module = stem.substr(std::strlen(kPeftPrefix));
  const std::string b_name = stem + kLoraB;
  LoraModule m;
  ASSIGN_OR_RETURN(m.a, st.View(name));
  ASSIGN_OR_RETURN(m.b, st.View(b_name));
  const TensorView& a = m.a;
  const TensorView& b = m.b;
  if (a.shape().size() != 2 || b.shape().size() != 2 || a.shape()[0] != b.shape()[1]) {
    return DataLoss("{}: {} {} and {} {} are not [r, in] and [out, r]",
                    (path / kAdapterWeights).string(), name, fmt::join(a.shape(), "x"), b_name,
                    fmt::join(b.shape(), "x"));
  }
  if (!IsSupportedFloat(a.dtype()) || !IsSupportedFloat(b.dtype())) {
    return DataLoss("{}: {} is not a float tensor", (path / kAdapterWeights).string(), name);
  }
  const int64_t rank = a.shape()[0];
  double r_conf = config.r_default;
  if (const json* p = PatternFor(config.rank_pattern, module); p && p->is_number()) {
    r_conf = p->get<double>();
  }
  if (static_cast<double>(rank) != r_conf) {
    return DataLoss("{}: {} has rank {} but {} gives r = {} for it (PEFT would not load it)",
                    path.string(), name, rank, kAdapterConfig, r_conf);
  }
  double alpha = config.alpha_default;
  if (const json* p = PatternFor(config.alpha_pattern, module); p && p->is_number()) {
    alpha = p->get<double>();
  }
  m.scale = static_cast<float>(config.rslora ? alpha / std::sqrt(r_conf) : alpha / r_conf);
  m.dense = module + ".weight";
  return m;
}

// The dense shape of `dense` recorded in a sparse or sign file's metadata.
StatusOr<std::vector<int64_t>> RecordedShape(const json& shapes, const fs::path& path,
                                             const std::string& dense) {
  if (!shapes.contains(dense) || !shapes[dense].is_array()) {
    return DataLoss("{}: {} has no shape in {}", path.string(), dense, kShapesKey);
  }
  std::vector<int64_t> shape;
  for (const auto& d : shapes[dense]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return DataLoss("{}: bad shape for {} in {}", path.string(), dense, kShapesKey);
    }
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

}  // namespace

StatusOr<std::unique_ptr<CompactVector>> CompactVector::Open(const fs::path& path) {
  std::unique_ptr<CompactVector> cv(new CompactVector());
  cv->path_ = path;
  std::error_code ec;
  if (fs::is_directory(path, ec) && fs::exists(path / kAdapterConfig, ec)) {
    RETURN_IF_ERROR(cv->OpenAdapter());
  } else {
    RETURN_IF_ERROR(cv->OpenPacked());
  }
  return cv;
}

Status CompactVector::OpenAdapter() {
  kind_ = CompactKind::kLowRank;
  ASSIGN_OR_RETURN(LoraConfig config, ReadLoraConfig(path_ / kAdapterConfig));
  ASSIGN_OR_RETURN(Checkpoint adapter, Checkpoint::Open(path_ / kAdapterWeights));
  storage_ = std::make_unique<Checkpoint>(std::move(adapter));
  const Checkpoint& st = *storage_;
  for (const std::string& name : st.TensorNames()) {
    if (EndsWith(name, kLoraB)) continue;
    ASSIGN_OR_RETURN(LoraModule m, ReadLoraModule(st, path_, name, config));
    Entry e;
    e.source = Entry::Source::kLora;
    e.shape = {m.b.shape()[0], m.a.shape()[1]};
    e.ckpt = storage_.get();
    e.first = m.a;
    e.second = m.b;
    e.scale = m.scale;
    names_.push_back(m.dense);
    entries_.emplace(m.dense, std::move(e));
  }
  std::error_code ec;
  if (fs::is_directory(path_ / kRestDir, ec)) RETURN_IF_ERROR(OpenRest());
  if (st.num_shards() > 0) metadata_ = st.shard(0).metadata();
  bytes_on_disk_ = DirectoryBytes(path_);
  return OkStatus();
}

Status CompactVector::OpenRest() {
  ASSIGN_OR_RETURN(Checkpoint rest, Checkpoint::Open(path_ / kRestDir));
  rest_ = std::make_unique<Checkpoint>(std::move(rest));
  for (const std::string& name : rest_->TensorNames()) {
    if (entries_.count(name)) {
      return DataLoss("{}: {} is both in the adapter and in {}/", path_.string(), name, kRestDir);
    }
    ASSIGN_OR_RETURN(TensorView v, rest_->View(name));
    if (!IsSupportedFloat(v.dtype())) {
      return DataLoss("{}/{}: {} is not a float tensor", path_.string(), kRestDir, name);
    }
    Entry e;
    e.source = Entry::Source::kDense;
    e.shape = v.shape();
    e.ckpt = rest_.get();
    e.first = v;
    names_.push_back(name);
    entries_.emplace(name, std::move(e));
  }
  return OkStatus();
}

Status CompactVector::OpenPacked() {
  ASSIGN_OR_RETURN(Checkpoint storage, Checkpoint::Open(path_));
  storage_ = std::make_unique<Checkpoint>(std::move(storage));
  const Checkpoint& st = *storage_;
  if (st.num_shards() > 0) metadata_ = st.shard(0).metadata();
  const auto kind = metadata_.find(kKindKey);
  if (kind == metadata_.end() || (kind->second != kSparseKind && kind->second != kSignKind)) {
    return InvalidArgument("{}: not a compact vector (no {} = {} or {} in its metadata)",
                           path_.string(), kKindKey, kSparseKind, kSignKind);
  }
  kind_ = kind->second == kSparseKind ? CompactKind::kSparse : CompactKind::kSign;
  const auto shapes_it = metadata_.find(kShapesKey);
  if (shapes_it == metadata_.end()) {
    return DataLoss("{}: metadata lacks {}", path_.string(), kShapesKey);
  }
  const json shapes = json::parse(shapes_it->second, nullptr, false);
  if (shapes.is_discarded() || !shapes.is_object()) {
    return DataLoss("{}: metadata {} is not a JSON object", path_.string(), kShapesKey);
  }
  // Dense names in storage order: the stored tensor each one starts with.
  for (const std::string& stored : st.TensorNames()) {
    Entry e;
    e.ckpt = storage_.get();
    ASSIGN_OR_RETURN(std::string dense, ReadPacked(stored, e));
    if (dense.empty()) continue;
    ASSIGN_OR_RETURN(e.shape, RecordedShape(shapes, path_, dense));
    RETURN_IF_ERROR(CheckPacked(stored, e));
    names_.push_back(dense);
    entries_.emplace(dense, std::move(e));
  }
  bytes_on_disk_ = 0;
  for (size_t s = 0; s < st.num_shards(); ++s) bytes_on_disk_ += DirectoryBytes(st.shard(s).path());
  if (st.index_path()) bytes_on_disk_ += DirectoryBytes(*st.index_path());
  return OkStatus();
}

StatusOr<std::string> CompactVector::ReadPacked(const std::string& stored, Entry& e) const {
  const Checkpoint& st = *storage_;
  const std::string path = path_.string();
  if (kind_ == CompactKind::kSparse && EndsWith(stored, kSparseIndices)) {
    const std::string dense = stored.substr(0, stored.size() - std::strlen(kSparseIndices));
    e.source = Entry::Source::kSparse;
    ASSIGN_OR_RETURN(e.first, st.View(stored));
    ASSIGN_OR_RETURN(e.second, st.View(dense + kSparseValues));
    if (e.first.dtype() != DType::kI32 && e.first.dtype() != DType::kI64) {
      return DataLoss("{}: {} must be I32 or I64", path, stored);
    }
    if (e.first.shape().size() != 1 || e.second.shape().size() != 1 ||
        e.first.NumElements() != e.second.NumElements() || !IsSupportedFloat(e.second.dtype())) {
      return DataLoss("{}: {} and {}{} must be 1-D of equal length, values float", path, stored,
                      dense, kSparseValues);
    }
    return dense;
  }
  if (kind_ == CompactKind::kSign && EndsWith(stored, kSignBits)) {
    const std::string dense = stored.substr(0, stored.size() - std::strlen(kSignBits));
    e.source = Entry::Source::kSign;
    ASSIGN_OR_RETURN(e.first, st.View(stored));
    ASSIGN_OR_RETURN(e.second, st.View(dense + kSignScale));
    if (e.first.dtype() != DType::kU8 || e.second.dtype() != DType::kF32) {
      return DataLoss("{}: {} must be U8 and {}{} F32", path, stored, dense, kSignScale);
    }
    return dense;
  }
  if (EndsWith(stored, kSparseValues) || EndsWith(stored, kSignScale)) return std::string();
  e.source = Entry::Source::kDense;
  ASSIGN_OR_RETURN(e.first, st.View(stored));
  if (!IsSupportedFloat(e.first.dtype())) {
    return DataLoss("{}: {} is not a float tensor", path, stored);
  }
  return stored;
}

Status CompactVector::CheckPacked(const std::string& stored, const Entry& e) const {
  const std::string path = path_.string();
  const uint64_t numel = Product(e.shape);
  if (e.source == Entry::Source::kDense && e.first.NumElements() != numel) {
    return DataLoss("{}: {} has {} elements, its shape says {}", path, stored,
                    e.first.NumElements(), numel);
  }
  if (e.source == Entry::Source::kSign) {
    const uint64_t rows = e.shape.empty() ? 1 : static_cast<uint64_t>(e.shape[0]);
    const uint64_t cols = rows ? numel / std::max<uint64_t>(rows, 1) : 0;
    const uint64_t scales = e.second.NumElements();
    if (e.first.NumElements() != rows * ((cols + 7) / 8) || (scales != 1 && scales != rows)) {
      return DataLoss("{}: {} has the wrong size for shape [{}]", path, stored,
                      fmt::join(e.shape, ", "));
    }
  }
  if (e.source == Entry::Source::kSparse) {
    // Indices must ascend inside the tensor: Decode relies on it (binary search).
    const uint64_t k = e.first.NumElements();
    int64_t prev = -1;
    for (uint64_t i = 0; i < k; ++i) {
      const int64_t idx = ReadIndex(e.first, i);
      if (idx <= prev || static_cast<uint64_t>(idx) >= numel) {
        return DataLoss("{}: {} entry {} ({}) is out of order or outside [0, {})", path, stored, i,
                        idx, numel);
      }
      prev = idx;
    }
  }
  return OkStatus();
}

Status CompactVector::Decode(std::string_view name, uint64_t begin, uint64_t n, float* dst) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return NotFound("{}: no tensor {}", path_.string(), name);
  const Entry& e = it->second;
  const uint64_t numel = Product(e.shape);
  if (begin + n > numel) {
    return InvalidArgument("{}: elements [{}, {}) outside {} ({} elements)", path_.string(), begin,
                           begin + n, name, numel);
  }
  if (n == 0) return OkStatus();
  switch (e.source) {
    case Entry::Source::kDense:
      ReadF32(e.first, begin, n, dst);
      return OkStatus();
    case Entry::Source::kLora: {
      const uint64_t cols = static_cast<uint64_t>(e.shape[1]);
      const uint64_t rank = static_cast<uint64_t>(e.first.shape()[0]);
      const uint64_t row0 = begin / cols, row1 = (begin + n - 1) / cols + 1;
      // A is decoded once per call (r x in values): calls cover whole chunks of rows.
      std::vector<float> a(rank * cols), b(rank), row(cols);
      ReadF32(e.first, 0, rank * cols, a.data());
      for (uint64_t r = row0; r < row1; ++r) {
        ReadF32(e.second, r * rank, rank, b.data());
        std::fill(row.begin(), row.end(), 0.0f);
        // out[j] = Σ_k B[r,k]·A[k,j], summed in k order (the same order for every chunking).
        for (uint64_t k = 0; k < rank; ++k) {
          const float bk = b[k];
          const float* ak = a.data() + k * cols;
          for (uint64_t j = 0; j < cols; ++j) row[j] += bk * ak[j];
        }
        const uint64_t lo = std::max(begin, r * cols), hi = std::min(begin + n, (r + 1) * cols);
        for (uint64_t x = lo; x < hi; ++x) dst[x - begin] = row[x - r * cols] * e.scale;
      }
      return OkStatus();
    }
    case Entry::Source::kSparse: {
      std::fill(dst, dst + n, 0.0f);
      const uint64_t k = e.first.NumElements();
      uint64_t lo = 0, hi = k;  // first position with index >= begin
      while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (static_cast<uint64_t>(ReadIndex(e.first, mid)) < begin) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      float v;
      for (uint64_t p = lo; p < k; ++p) {
        const uint64_t idx = static_cast<uint64_t>(ReadIndex(e.first, p));
        if (idx >= begin + n) break;
        ReadF32(e.second, p, 1, &v);
        dst[idx - begin] = v;
      }
      return OkStatus();
    }
    case Entry::Source::kSign: {
      const uint64_t rows = e.shape.empty() ? 1 : static_cast<uint64_t>(e.shape[0]);
      const uint64_t cols = numel / std::max<uint64_t>(rows, 1);
      const uint64_t bytes_per_row = (cols + 7) / 8;
      const bool per_row = e.second.NumElements() == rows && rows > 1;
      const float* scales = reinterpret_cast<const float*>(e.second.data);
      for (uint64_t x = begin; x < begin + n; ++x) {
        const uint64_t r = x / cols, c = x % cols;
        float s;
        std::memcpy(&s, scales + (per_row ? r : 0), 4);
        const bool plus = (e.first.data[r * bytes_per_row + c / 8] >> (c % 8)) & 1u;
        dst[x - begin] = plus ? s : -s;
      }
      return OkStatus();
    }
  }
  return Internal("unreachable");
}

StatusOr<std::unique_ptr<VectorReader>> VectorReader::Open(const fs::path& path) {
  std::unique_ptr<VectorReader> r(new VectorReader());
  if (IsCompactVector(path)) {
    ASSIGN_OR_RETURN(r->compact_, CompactVector::Open(path));
    r->names_ = r->compact_->TensorNames();
    return r;
  }
  ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(path));
  r->dense_ = std::make_unique<Checkpoint>(std::move(ckpt));
  for (const std::string& name : r->dense_->TensorNames()) {
    ASSIGN_OR_RETURN(TensorView v, r->dense_->View(name));
    if (!IsSupportedFloat(v.dtype())) continue;
    r->names_.push_back(name);
    r->views_.emplace(name, v);
  }
  return r;
}

bool VectorReader::Has(std::string_view name) const {
  return compact_ ? compact_->Has(name) : views_.count(name) > 0;
}

const std::vector<int64_t>& VectorReader::Shape(std::string_view name) const {
  static const std::vector<int64_t> kNone;
  if (compact_) return compact_->Shape(name);
  auto it = views_.find(name);
  return it == views_.end() ? kNone : it->second.shape();
}

uint64_t VectorReader::NumElements(std::string_view name) const { return Product(Shape(name)); }

std::string VectorReader::StorageName(std::string_view name) const {
  if (compact_) return std::string(CompactKindName(compact_->kind()));
  auto it = views_.find(name);
  return it == views_.end() ? "" : std::string(DTypeName(it->second.dtype()));
}

Status VectorReader::Read(std::string_view name, uint64_t begin, uint64_t n, float* dst) const {
  if (compact_) return compact_->Decode(name, begin, n, dst);
  auto it = views_.find(name);
  if (it == views_.end()) return NotFound("{}: no float tensor {}", dense_->path().string(), name);
  if (begin + n > it->second.NumElements()) {
    return InvalidArgument("{}: elements [{}, {}) outside {}", dense_->path().string(), begin,
                           begin + n, name);
  }
  ReadF32(it->second, begin, n, dst);
  return OkStatus();
}

void VectorReader::Release(std::string_view name, uint64_t begin, uint64_t end) const {
  if (!dense_) return;
  auto it = views_.find(name);
  if (it != views_.end()) ReleaseElements(*dense_, it->second, begin, end);
}

}  // namespace rvec::merge
