// Hugging Face checkpoint directories: single-file or index-sharded safetensors, cross-checked
// against model.safetensors.index.json, plus config.json and the side files.
#include "io/checkpoint.h"

#include <algorithm>
#include <limits>
#include <set>

#include "base/fs.h"
#include "io/strict_json.h"

namespace rvec {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

// Index shard names must stay inside the model directory. The check is on the name as written:
// symlinks are followed, because the Hugging Face cache links every snapshot file into ../blobs.
Status CheckShardName(const std::string& shard, const std::string& tensor, std::string_view label) {
  if (shard.empty()) {
    return DataLoss("{}: tensor \"{}\" is mapped to an empty shard name", label, tensor);
  }
  if (shard.find('\0') != std::string::npos) {
    return DataLoss("{}: tensor \"{}\" is mapped to a shard name containing a NUL byte", label,
                    tensor);
  }
  const fs::path p(shard);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) {
    return DataLoss(
        "{}: tensor \"{}\" is mapped to the absolute path \"{}\"; shards must be files inside the "
        "model directory",
        label, tensor, shard);
  }
  for (const fs::path& part : p) {
    if (part == "..") {
      return DataLoss(
          "{}: tensor \"{}\" is mapped to \"{}\", which leaves the model directory (\"..\")", label,
          tensor, shard);
    }
  }
  return OkStatus();
}

std::vector<std::string> SafetensorsFilesIn(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".safetensors") names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Where a checkpoint's weights are: one safetensors file or an index of shards.
struct WeightsLayout {
  fs::path dir;         // the model directory (side files, shard names are relative to it)
  fs::path single;      // a lone safetensors file, or empty
  fs::path index_file;  // model.safetensors.index.json (or another *.index.json), or empty
  bool load_side_files = true;
};

StatusOr<WeightsLayout> LocateDirectoryWeights(const fs::path& path) {
  std::error_code ec;
  WeightsLayout w;
  w.dir = path;
  // transformers looks for model.safetensors before the index; so do we.
  if (fs::exists(path / kSingleName, ec)) {
    w.single = path / kSingleName;
    return w;
  }
  if (fs::exists(path / kIndexName, ec)) {
    w.index_file = path / kIndexName;
    return w;
  }
  const std::vector<std::string> found = SafetensorsFilesIn(path);
  if (found.empty() && (fs::exists(path / "pytorch_model.bin", ec) ||
                        fs::exists(path / "pytorch_model.bin.index.json", ec))) {
    return Unimplemented(
        "{}: only PyTorch pickle weights (pytorch_model.bin); rvec reads safetensors. "
        "Convert once with transformers: AutoModelForCausalLM.from_pretrained(dir)"
        ".save_pretrained(out, safe_serialization=True)",
        path.string());
  }
  if (found.empty()) {
    return NotFound("{}: no {} or {} in this directory (not a safetensors model)", path.string(),
                    kSingleName, kIndexName);
  }
  // Several shards without an index could be stitched together by name, but nothing says
  // they form one model; transformers refuses too. A lone file is opened by its path.
  return NotFound(
      "{}: no {} or {}; found {} other .safetensors file(s) ({}{}): pass a file path "
      "directly, or add an index",
      path.string(), kSingleName, kIndexName, found.size(), found[0],
      found.size() > 1 ? ", ..." : "");
}

StatusOr<WeightsLayout> LocateWeights(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    if (fs::is_symlink(fs::symlink_status(path, ec))) {
      return NotFound("{}: dangling symbolic link", path.string());
    }
    return NotFound("{}: no such file or directory", path.string());
  }
  if (fs::is_directory(st)) return LocateDirectoryWeights(path);
  if (!fs::is_regular_file(st))
    return InvalidArgument("{}: not a file or directory", path.string());
  WeightsLayout w;
  w.dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const std::string name = path.filename().string();
  if (name.size() > 11 && name.substr(name.size() - 11) == ".index.json") {
    w.index_file = path;
  } else {
    w.single = path;
    // A lone file (a reasoning vector, say) has no config; read the side files only when it
    // is a model directory's canonical weights file.
    w.load_side_files = (name == kSingleName);
  }
  return w;
}

// The index's weight_map, validated: tensor -> shard name.
StatusOr<std::map<std::string, std::string>> ReadWeightMap(const fs::path& index_file) {
  const std::string label = index_file.string();
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_file));
  ASSIGN_OR_RETURN(nlohmann::json index, ParseStrictJson(text, label, "index"));
  if (!index.is_object()) {
    return DataLoss("{}: index must be a JSON object, found {}", label, JsonTypeName(index));
  }
  const auto wm = index.find("weight_map");
  if (wm == index.end()) return DataLoss("{}: index has no \"weight_map\"", label);
  if (!wm->is_object()) {
    return DataLoss("{}: \"weight_map\" must be an object, found {}", label, JsonTypeName(*wm));
  }
  if (wm->empty()) return DataLoss("{}: \"weight_map\" lists no tensors", label);
  if (const auto meta = index.find("metadata");
      meta != index.end() && !meta->is_null() && !meta->is_object()) {
    return DataLoss("{}: \"metadata\" must be an object, found {}", label, JsonTypeName(*meta));
  }
  std::map<std::string, std::string> weight_map;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) {
      return DataLoss("{}: tensor \"{}\" is mapped to {}, expected a shard file name", label,
                      it.key(), JsonTypeName(it.value()));
    }
    const std::string& shard = it.value().get_ref<const std::string&>();
    RETURN_IF_ERROR(CheckShardName(shard, it.key(), label));
    weight_map.emplace(it.key(), shard);
  }
  return weight_map;
}

// Opens every shard the index names, in shard-name order (as transformers), and checks that the
// index and the shards agree in both directions.
StatusOr<std::vector<std::unique_ptr<SafetensorsFile>>> OpenIndexedShards(
    const fs::path& index_file, const fs::path& dir) {
  const std::string label = index_file.string();
  ASSIGN_OR_RETURN(const auto weight_map, ReadWeightMap(index_file));
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [tensor, shard] : weight_map) by_shard[shard].push_back(tensor);
  std::vector<std::unique_ptr<SafetensorsFile>> shards;
  for (const auto& [shard, tensors] : by_shard) {
    auto file = SafetensorsFile::Open(dir / shard);
    if (!file.ok()) {
      return Status(file.status().code(),
                    fmt::format("{}: shard \"{}\" (listed for {} tensor{}, e.g. \"{}\"): {}", label,
                                shard, tensors.size(), tensors.size() == 1 ? "" : "s", tensors[0],
                                file.status().message()));
    }
    for (const std::string& t : tensors) {
      if (file->Find(t) == nullptr) {
        return DataLoss("{}: tensor \"{}\" is mapped to shard \"{}\", which does not contain it",
                        label, t, shard);
      }
    }
    shards.push_back(std::make_unique<SafetensorsFile>(std::move(file).value()));
  }
  // Every tensor stored in a shard must be the one the index points to (checked once all shards
  // opened, so that a missing shard is reported first).
  auto shard_name = by_shard.begin();
  for (const auto& file : shards) {
    const std::string& shard = (shard_name++)->first;
    for (const TensorInfo& t : file->tensors()) {
      const auto it = weight_map.find(t.name);
      if (it == weight_map.end()) {
        return DataLoss("{}: shard \"{}\" holds tensor \"{}\", which the index does not list",
                        label, shard, t.name);
      }
      if (it->second != shard) {
        return DataLoss(
            "{}: tensor \"{}\" is stored in two shards, \"{}\" and \"{}\" (the index names "
            "\"{}\")",
            label, t.name, std::min(shard, it->second), std::max(shard, it->second), it->second);
      }
    }
  }
  return shards;
}

}  // namespace

StatusOr<Checkpoint> Checkpoint::Open(const fs::path& path) {
  ASSIGN_OR_RETURN(const WeightsLayout layout, LocateWeights(path));
  Checkpoint ckpt;
  ckpt.path_ = path;
  ckpt.dir_ = layout.dir;
  if (!layout.single.empty()) {
    ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(layout.single));
    ckpt.shards_.push_back(std::make_unique<SafetensorsFile>(std::move(file)));
  } else {
    ckpt.index_path_ = layout.index_file;
    ASSIGN_OR_RETURN(ckpt.shards_, OpenIndexedShards(layout.index_file, layout.dir));
  }

  for (size_t s = 0; s < ckpt.shards_.size(); ++s) {
    for (const TensorInfo& t : ckpt.shards_[s]->tensors()) {
      if (!ckpt.by_name_.emplace(t.name, std::make_pair(s, &t)).second) {
        return Internal("{}: tensor \"{}\" seen twice", path.string(), t.name);
      }
      ckpt.names_.push_back(t.name);
    }
  }

  if (layout.load_side_files) {
    std::error_code ec;
    const fs::path config_path = ckpt.dir_ / "config.json";
    if (fs::is_regular_file(config_path, ec)) {
      ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path));
      ASSIGN_OR_RETURN(ckpt.config_, ParseHfConfig(text, config_path.string()));
    }
    for (std::string_view name : kModelSideFiles) {
      if (fs::is_regular_file(ckpt.dir_ / name, ec)) ckpt.side_files_.emplace_back(name);
    }
  }
  return ckpt;
}

bool Checkpoint::Has(std::string_view name) const { return by_name_.find(name) != by_name_.end(); }

StatusOr<TensorView> Checkpoint::View(std::string_view name) const {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    return NotFound("{}: no tensor named \"{}\"", path_.string(), name);
  }
  return shards_[it->second.first]->View(*it->second.second);
}

const TensorInfo* Checkpoint::Info(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.second;
}

size_t Checkpoint::ShardOf(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? std::numeric_limits<size_t>::max() : it->second.first;
}

void Checkpoint::Release(std::string_view name) const {
  const auto it = by_name_.find(name);
  if (it != by_name_.end()) shards_[it->second.first]->Release(*it->second.second);
}

uint64_t Checkpoint::TotalTensorBytes() const {
  uint64_t total = 0;
  for (const auto& s : shards_) {
    for (const TensorInfo& t : s->tensors()) total += t.NumBytes();
  }
  return total;
}

uint64_t Checkpoint::TotalParameters() const {
  uint64_t total = 0;
  for (const auto& s : shards_) {
    for (const TensorInfo& t : s->tensors()) total += t.NumElements();
  }
  return total;
}

}  // namespace rvec
