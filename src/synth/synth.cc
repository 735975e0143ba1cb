// Writing synthetic and perturbed models: counter-based Gaussian weights generated in parallel
// chunks and streamed through CheckpointWriter, so bytes never depend on the thread count.
#include "synth/synth.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "base/fs.h"
#include "base/threading.h"
#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "ops/convert.h"
#include "ops/random.h"

namespace rvec {

namespace fs = std::filesystem;

namespace {

// Elements per parallel task: big enough to amortise dispatch, small enough to balance and to
// keep the per-worker buffers (f32 + converted) in a few MiB.
constexpr size_t kChunkElements = size_t{1} << 20;
// The perturbation stream is separate from the initialisation stream, so perturbing a model
// with the seed that generated it does not add a scaled copy of its own weights.
constexpr uint64_t kPerturbDomain = 0x7065727475726221ULL;

uint64_t TensorKey(uint64_t seed, std::string_view name) {
  return RandomStreamKey(seed, name.data(), name.size());
}

struct Task {
  size_t tensor;
  uint64_t begin;  // element range
  uint64_t count;
};

std::vector<Task> ChunkTasks(const std::vector<uint64_t>& element_counts) {
  std::vector<Task> tasks;
  for (size_t t = 0; t < element_counts.size(); ++t) {
    for (uint64_t b = 0; b < element_counts[t]; b += kChunkElements) {
      tasks.push_back({t, b, std::min<uint64_t>(kChunkElements, element_counts[t] - b)});
    }
  }
  return tasks;
}

uint64_t NumElements(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

// Runs tasks on a pool; the first error stops the remaining tasks and is returned.
class TaskRunner {
 public:
  explicit TaskRunner(size_t threads) : pool_(threads == 0 ? DefaultThreadCount() : threads) {}
  size_t workers() const { return pool_.NumWorkers(); }

  Status Run(size_t num_tasks, const std::function<Status(size_t task, size_t worker)>& fn) {
    std::atomic<bool> failed{false};
    std::mutex mutex;
    Status first;
    pool_.ParallelFor(num_tasks, [&](size_t task, size_t worker) {
      if (failed.load(std::memory_order_relaxed)) return;
      Status s = fn(task, worker);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mutex);
        if (first.ok()) first = std::move(s);
        failed.store(true);
      }
    });
    return first;
  }

 private:
  ThreadPool pool_;
};

struct TokenizerInfo {
  int64_t size = 0;
  int64_t bos_id = -1;
  int64_t eos_id = -1;
  int64_t pad_id = -1;
  int64_t endoftext_id = -1;
};

std::optional<int64_t> LookupToken(const nlohmann::json& tok, const std::string& content) {
  if (const auto it = tok.find("added_tokens"); it != tok.end() && it->is_array()) {
    for (const auto& a : *it) {
      if (a.is_object() && a.value("content", "") == content && a.contains("id") &&
          a["id"].is_number_integer()) {
        return a["id"].get<int64_t>();
      }
    }
  }
  const auto model = tok.find("model");
  if (model != tok.end() && model->is_object()) {
    const auto vocab = model->find("vocab");
    if (vocab != model->end() && vocab->is_object()) {
      const auto v = vocab->find(content);
      if (v != vocab->end() && v->is_number_integer()) return v->get<int64_t>();
    }
  }
  return std::nullopt;
}

// "eos_token": "<|im_end|>" or {"content": "<|im_end|>", ...}.
std::string TokenString(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return "";
}

StatusOr<TokenizerInfo> DescribeTokenizer(const std::string& tokenizer_json,
                                          const std::string& tokenizer_config_json,
                                          const std::string& label) {
  const nlohmann::json tok = nlohmann::json::parse(tokenizer_json, nullptr, false);
  if (tok.is_discarded() || !tok.is_object()) {
    return DataLoss("{}/tokenizer.json: not a JSON object", label);
  }
  const auto model = tok.find("model");
  if (model == tok.end() || !model->is_object() || !model->contains("vocab") ||
      !(*model)["vocab"].is_object()) {
    return DataLoss("{}/tokenizer.json: no model.vocab object", label);
  }
  TokenizerInfo info;
  int64_t max_id = -1;
  for (const auto& [token, id] : (*model)["vocab"].items()) {
    if (!id.is_number_integer()) {
      return DataLoss("{}/tokenizer.json: vocab entry \"{}\" has a non-integer id", label, token);
    }
    max_id = std::max(max_id, id.get<int64_t>());
  }
  if (const auto it = tok.find("added_tokens"); it != tok.end() && it->is_array()) {
    for (const auto& a : *it) {
      if (a.is_object() && a.contains("id") && a["id"].is_number_integer()) {
        max_id = std::max(max_id, a["id"].get<int64_t>());
      }
    }
  }
  info.size = max_id + 1;
  nlohmann::json config = nlohmann::json::object();
  if (!tokenizer_config_json.empty()) {
    config = nlohmann::json::parse(tokenizer_config_json, nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      return DataLoss("{}/tokenizer_config.json: not a JSON object", label);
    }
  }
  auto id_of = [&](const std::string& s) -> int64_t {
    if (s.empty()) return -1;
    return LookupToken(tok, s).value_or(-1);
  };
  info.endoftext_id = id_of("<|endoftext|>");
  info.eos_id = id_of(TokenString(config, "eos_token"));
  info.pad_id = id_of(TokenString(config, "pad_token"));
  // Qwen configs name <|endoftext|> as bos_token_id although the tokenizer adds no BOS.
  info.bos_id =
      info.endoftext_id >= 0 ? info.endoftext_id : id_of(TokenString(config, "bos_token"));
  if (info.eos_id < 0) info.eos_id = info.endoftext_id;
  if (info.bos_id < 0) info.bos_id = info.eos_id;
  return info;
}

std::string GenerationConfigJson(const TokenizerInfo& tok) {
  nlohmann::json g;
  if (tok.bos_id >= 0) g["bos_token_id"] = tok.bos_id;
  g["do_sample"] = false;
  nlohmann::json eos = nlohmann::json::array();
  if (tok.eos_id >= 0) eos.push_back(tok.eos_id);
  if (tok.endoftext_id >= 0 && tok.endoftext_id != tok.eos_id) eos.push_back(tok.endoftext_id);
  if (eos.size() == 1) {
    g["eos_token_id"] = eos[0];
  } else if (eos.size() > 1) {
    g["eos_token_id"] = eos;
  }
  if (tok.pad_id >= 0) g["pad_token_id"] = tok.pad_id;
  g["transformers_version"] = "4.45.2";
  return g.dump(2) + "\n";
}

// The tokenizer files a model directory may carry (copied with --tokenizer).
constexpr const char* kTokenizerFiles[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
    "merges.txt",     "added_tokens.json",     "chat_template.jinja",     "chat_template.json"};

Status CopyFile(const fs::path& from, const fs::path& to) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(from));
  return WriteFileAtomic(to, text);
}

}  // namespace

void SynthNormals(uint64_t seed, std::string_view name, uint64_t first, float* out, size_t n) {
  StandardNormals(TensorKey(seed, name), first, out, n);
}

void PerturbationNormals(uint64_t seed, std::string_view name, uint64_t first, float* out,
                         size_t n) {
  SynthNormals(seed ^ kPerturbDomain, name, first, out, n);
}

StatusOr<uint64_t> ShardBudgetFor(const std::vector<TensorSpec>& tensors, size_t shards) {
  if (shards == 0) return InvalidArgument("the number of shards must be at least 1");
  if (shards == 1) return uint64_t{0};
  if (shards > tensors.size()) {
    return InvalidArgument("cannot split {} tensors into {} shards", tensors.size(), shards);
  }
  // The same greedy rule as CheckpointWriter: a tensor that would overflow the budget starts a
  // new shard. The shard count only falls as the budget grows, so bisect for the smallest budget
  // that gives at most `shards`.
  auto count = [&](uint64_t budget) {
    size_t n = 1;
    uint64_t current = 0;
    bool empty = true;
    for (const TensorSpec& t : tensors) {
      const uint64_t bytes = t.NumBytes();
      if (!empty && current + bytes > budget) {
        ++n;
        current = 0;
      }
      current += bytes;
      empty = false;
    }
    return n;
  };
  uint64_t lo = 1, hi = 0;
  for (const TensorSpec& t : tensors) {
    lo = std::max(lo, t.NumBytes());
    hi += t.NumBytes();
  }
  hi = std::max(hi, lo);
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (count(mid) <= shards) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  if (count(lo) != shards) {
    return InvalidArgument("cannot split these {} tensors into exactly {} shards (at most {})",
                           tensors.size(), shards, count(lo));
  }
  return lo;
}

StatusOr<SynthResult> WriteSyntheticModel(const SynthOptions& options, Progress* progress) {
  ASSIGN_OR_RETURN(SynthPreset preset, GetSynthPreset(options.preset));
  if (options.dtype != DType::kBF16 && options.dtype != DType::kF16 &&
      options.dtype != DType::kF32) {
    return InvalidArgument("--dtype must be bf16, f16 or f32 (got {})", DTypeName(options.dtype));
  }
  if (options.out.empty()) return InvalidArgument("no output directory given");

  // Tokenizer first: the tiny presets size their vocabulary to it.
  std::vector<std::pair<std::string, std::string>> tokenizer_files;  // name, contents
  if (options.tokenizer_dir) {
    const fs::path& dir = *options.tokenizer_dir;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return NotFound("{}: tokenizer directory not found", dir.string());
    }
    if (!DataFileExists(dir / "tokenizer.json")) {
      return NotFound("{}: no tokenizer.json in the tokenizer directory", dir.string());
    }
    // A compressed NAME.gz (as in the repository's testdata/) is written out uncompressed.
    for (const char* name : kTokenizerFiles) {
      if (!DataFileExists(dir / name)) continue;
      ASSIGN_OR_RETURN(std::string text, ReadDataFile(dir / name));
      tokenizer_files.emplace_back(name, std::move(text));
    }
  } else {
    const SynthTokenizerFiles& builtin = SynthTokenizer();
    tokenizer_files.emplace_back("tokenizer.json", builtin.tokenizer_json);
    tokenizer_files.emplace_back("tokenizer_config.json", builtin.tokenizer_config_json);
  }
  std::string tokenizer_json, tokenizer_config_json;
  for (const auto& [name, text] : tokenizer_files) {
    if (name == "tokenizer.json") tokenizer_json = text;
    if (name == "tokenizer_config.json") tokenizer_config_json = text;
  }
  const std::string tok_label =
      options.tokenizer_dir ? options.tokenizer_dir->string() : std::string("built-in tokenizer");
  ASSIGN_OR_RETURN(TokenizerInfo tok,
                   DescribeTokenizer(tokenizer_json, tokenizer_config_json, tok_label));
  if (preset.vocab_size == 0) {
    preset.vocab_size = (tok.size + 63) / 64 * 64;
  } else if (tok.size > preset.vocab_size) {
    return InvalidArgument(
        "{}: the tokenizer has {} tokens but preset {} has vocab_size {}; use a smaller tokenizer "
        "or a tiny preset (whose vocabulary fits the tokenizer)",
        tok_label, tok.size, preset.name, preset.vocab_size);
  }

  const std::vector<SynthTensor> tensors = SynthTensors(preset, options.dtype);
  std::vector<TensorSpec> specs;
  std::vector<uint64_t> counts;
  for (const SynthTensor& t : tensors) {
    specs.push_back(t.spec);
    counts.push_back(NumElements(t.spec.shape));
  }
  CheckpointWriterOptions writer_options;
  ASSIGN_OR_RETURN(writer_options.max_shard_bytes, ShardBudgetFor(specs, options.shards));
  writer_options.force = options.force;
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, specs, writer_options));

  const fs::path staging = writer->staging_dir();
  RETURN_IF_ERROR(WriteFileAtomic(staging / "config.json",
                                  SynthConfigJson(preset, options.dtype, tok.bos_id, tok.eos_id)));
  RETURN_IF_ERROR(WriteFileAtomic(staging / "generation_config.json", GenerationConfigJson(tok)));
  for (const auto& [name, text] : tokenizer_files) {
    RETURN_IF_ERROR(WriteFileAtomic(staging / name, text));
  }

  SynthResult result;
  for (size_t i = 0; i < specs.size(); ++i) {
    result.parameters += counts[i];
    result.tensor_bytes += specs[i].NumBytes();
  }
  if (progress != nullptr) progress->SetTotal(result.tensor_bytes);

  const std::vector<Task> tasks = ChunkTasks(counts);
  std::vector<uint64_t> keys;
  for (const SynthTensor& t : tensors) keys.push_back(TensorKey(options.seed, t.spec.name));
  TaskRunner runner(options.threads);
  const size_t esize = DTypeSize(options.dtype);
  std::vector<std::unique_ptr<float[]>> values(runner.workers());
  std::vector<std::unique_ptr<unsigned char[]>> bytes(runner.workers());
  RETURN_IF_ERROR(runner.Run(tasks.size(), [&](size_t task, size_t worker) -> Status {
    const Task& t = tasks[task];
    if (!values[worker]) {
      values[worker] = std::make_unique<float[]>(kChunkElements);
      bytes[worker] = std::make_unique<unsigned char[]>(kChunkElements * 4);
    }
    float* v = values[worker].get();
    StandardNormals(keys[t.tensor], t.begin, v, t.count);
    float mean = 0.0f, std = 0.02f;
    if (tensors[t.tensor].init == SynthInit::kNorm) mean = 1.0f;
    if (tensors[t.tensor].init == SynthInit::kBias) std = 0.01f;
    for (uint64_t i = 0; i < t.count; ++i) v[i] = mean + std * v[i];
    ConvertFromF32(options.dtype, v, bytes[worker].get(), t.count);
    RETURN_IF_ERROR(writer->Write(t.tensor, t.begin * esize, bytes[worker].get(), t.count * esize));
    if (progress != nullptr) progress->Advance(t.count * esize);
    return OkStatus();
  }));
  RETURN_IF_ERROR(writer->Finish());
  if (progress != nullptr) progress->Finish();
  result.preset = preset;
  result.shard_names = writer->ShardNames();
  result.tokenizer_size = tok.size;
  return result;
}

StatusOr<PerturbResult> WritePerturbedModel(const PerturbOptions& options, Progress* progress) {
  if (!(options.stddev >= 0.0) || !std::isfinite(options.stddev)) {
    return InvalidArgument("perturbation stddev must be a finite non-negative number (got {})",
                           options.stddev);
  }
  ASSIGN_OR_RETURN(Checkpoint base, Checkpoint::Open(options.base));
  std::vector<TensorSpec> specs;
  std::vector<uint64_t> counts;
  std::vector<TensorView> views;
  std::vector<bool> perturb;
  PerturbResult result;
  for (const std::string& name : base.TensorNames()) {
    ASSIGN_OR_RETURN(TensorView view, base.View(name));
    specs.push_back({name, view.dtype(), view.shape()});
    counts.push_back(view.NumElements());
    views.push_back(view);
    bool selected = IsFloat(view.dtype());
    if (selected && !options.only.empty()) {
      selected = std::any_of(options.only.begin(), options.only.end(), [&](const std::string& s) {
        return name.find(s) != std::string::npos;
      });
    }
    perturb.push_back(selected);
    if (selected) {
      ++result.tensors_perturbed;
      result.parameters_perturbed += view.NumElements();
    } else {
      ++result.tensors_copied;
    }
    result.tensor_bytes += view.NumBytes();
  }
  if (!options.only.empty() && result.tensors_perturbed == 0) {
    return InvalidArgument("{}: no float tensor name contains any of the given patterns",
                           options.base.string());
  }

  CheckpointWriterOptions writer_options;
  const size_t shards =
      options.shards == 0 ? std::max<size_t>(1, base.num_shards()) : options.shards;
  ASSIGN_OR_RETURN(writer_options.max_shard_bytes, ShardBudgetFor(specs, shards));
  writer_options.force = options.force;
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Create(options.out, specs, writer_options));
  for (const std::string& name : base.side_files()) {
    RETURN_IF_ERROR(CopyFile(base.dir() / name, writer->staging_dir() / name));
  }
  if (progress != nullptr) progress->SetTotal(result.tensor_bytes);

  // Chunks of raw bytes for copied tensors, of elements for perturbed ones.
  const std::vector<Task> tasks = ChunkTasks(counts);
  const uint64_t seed = options.seed ^ kPerturbDomain;
  TaskRunner runner(options.threads);
  std::vector<std::unique_ptr<float[]>> values(runner.workers());
  std::vector<std::unique_ptr<float[]>> noise(runner.workers());
  std::vector<std::unique_ptr<unsigned char[]>> bytes(runner.workers());
  const float stddev = static_cast<float>(options.stddev);
  RETURN_IF_ERROR(runner.Run(tasks.size(), [&](size_t task, size_t worker) -> Status {
    const Task& t = tasks[task];
    const TensorView& view = views[t.tensor];
    const size_t esize = DTypeSize(view.dtype());
    const unsigned char* src = view.data + t.begin * esize;
    if (!perturb[t.tensor]) {
      RETURN_IF_ERROR(writer->Write(t.tensor, t.begin * esize, src, t.count * esize));
    } else {
      if (!values[worker]) {
        values[worker] = std::make_unique<float[]>(kChunkElements);
        noise[worker] = std::make_unique<float[]>(kChunkElements);
        bytes[worker] = std::make_unique<unsigned char[]>(kChunkElements * 8);
      }
      float* v = values[worker].get();
      float* z = noise[worker].get();
      ConvertToF32(view.dtype(), src, v, t.count);
      SynthNormals(seed, view.name(), t.begin, z, t.count);
      for (uint64_t i = 0; i < t.count; ++i) {
        const float delta = stddev * z[i];
        v[i] = v[i] + delta;
      }
      ConvertFromF32(view.dtype(), v, bytes[worker].get(), t.count);
      RETURN_IF_ERROR(
          writer->Write(t.tensor, t.begin * esize, bytes[worker].get(), t.count * esize));
    }
    if (progress != nullptr) progress->Advance(t.count * esize);
    return OkStatus();
  }));
  RETURN_IF_ERROR(writer->Finish());
  if (progress != nullptr) progress->Finish();
  return result;
}

}  // namespace rvec
