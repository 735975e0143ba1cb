// Provenance metadata, side-file copies and config.json dtype patching.
#include "merge/provenance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "base/fs.h"
#include "base/sha256.h"
#include "merge/kernels.h"
#include "merge/schedule.h"

namespace rvec::merge {

std::string UtcNow() {
  // SOURCE_DATE_EPOCH (reproducible-builds.org) pins the stamp, so two runs can be compared
  // byte for byte; anything but a plain non-negative integer is ignored.
  std::time_t now = std::time(nullptr);
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH"); epoch && *epoch) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(epoch, &end, 10);
    if (errno == 0 && *end == '\0' && v >= 0) now = static_cast<std::time_t>(v);
  }
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ConfigSha256(const Checkpoint& ckpt) {
  const auto path = ckpt.dir() / "config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return "none";
  auto text = ReadFileToString(path);
  if (!text.ok()) return "unreadable";
  return Sha256Hex(*text);
}

std::string HeaderSha256s(const Checkpoint& ckpt) {
  std::string out;
  for (size_t i = 0; i < ckpt.num_shards(); ++i) {
    if (i) out += ",";
    out += Sha256Hex(ckpt.shard(i).RawHeader());
  }
  return out;
}

std::string DTypesOf(const Checkpoint& ckpt) {
  std::set<std::string> names;
  for (const std::string& name : ckpt.TensorNames()) {
    const TensorInfo* info = ckpt.Info(name);
    if (info && IsFloat(info->dtype)) names.insert(std::string(DTypeName(info->dtype)));
  }
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::optional<std::string> MetadataValue(const Checkpoint& ckpt, const std::string& key) {
  if (ckpt.num_shards() == 0) return std::nullopt;
  const auto& md = ckpt.shard(0).metadata();
  auto it = md.find(key);
  if (it == md.end()) return std::nullopt;
  return it->second;
}

std::string ArchitectureOf(const Checkpoint& ckpt) {
  if (ckpt.config()) return ckpt.config()->Architecture();
  return MetadataValue(ckpt, "rvec.architecture").value_or("");
}

int64_t NumLayersOf(const Checkpoint& ckpt) {
  if (ckpt.config() && ckpt.config()->num_hidden_layers > 0) {
    return ckpt.config()->num_hidden_layers;
  }
  if (auto v = MetadataValue(ckpt, "rvec.num_hidden_layers")) {
    auto n = ParseNumber(*v, "rvec.num_hidden_layers");
    if (n.ok() && *n > 0) return static_cast<int64_t>(*n);
  }
  int64_t max_layer = -1;
  for (const std::string& name : ckpt.TensorNames()) {
    if (auto l = LayerIndex(name)) max_layer = std::max(max_layer, *l);
  }
  return max_layer + 1;
}

void AddInputMetadata(std::map<std::string, std::string>& md, std::string_view role,
                      const Checkpoint& ckpt) {
  const std::string p = fmt::format("rvec.{}.", role);
  std::error_code ec;
  const auto abs = std::filesystem::absolute(ckpt.path(), ec);
  md[p + "path"] = (ec ? ckpt.path() : abs).string();
  md[p + "config_sha256"] = ConfigSha256(ckpt);
  md[p + "header_sha256"] = HeaderSha256s(ckpt);
  md[p + "dtypes"] = DTypesOf(ckpt);
}

void AddCommonMetadata(std::map<std::string, std::string>& md, std::string_view kind,
                       const Checkpoint& model, std::string_view version) {
  md["format"] = "pt";
  md["rvec.kind"] = std::string(kind);
  md["rvec.version"] = std::string(version);
  md["rvec.created"] = UtcNow();
  md["rvec.architecture"] = ArchitectureOf(model);
  md["rvec.num_hidden_layers"] = std::to_string(NumLayersOf(model));
  if (model.config()) {
    md["rvec.model_type"] = model.config()->model_type;
    md["rvec.tie_word_embeddings"] = model.config()->tie_word_embeddings ? "true" : "false";
  } else {
    for (const char* key : {"rvec.model_type", "rvec.tie_word_embeddings"}) {
      if (auto v = MetadataValue(model, key)) md[key] = *v;
    }
  }
}

std::string TorchDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kF32:
      return "float32";
    case DType::kF64:
      return "float64";
    case DType::kF8E4M3:
      return "float8_e4m3fn";
    case DType::kF8E5M2:
      return "float8_e5m2";
    default:
      return std::string(DTypeName(dtype));
  }
}

Status CopySideFiles(const Checkpoint& donor, const std::filesystem::path& dir,
                     std::optional<DType> out_dtype) {
  for (const std::string& name : donor.side_files()) {
    const auto src = donor.dir() / name;
    const auto dst = dir / name;
    if (name == "config.json" && out_dtype && donor.config()) {
      nlohmann::json raw = donor.config()->raw;
      const std::string wanted = TorchDTypeName(*out_dtype);
      const bool has_dtype = raw.is_object() && raw.contains("torch_dtype");
      if (raw.is_object() && (!has_dtype || raw["torch_dtype"] != wanted)) {
        raw["torch_dtype"] = wanted;
        RETURN_IF_ERROR(WriteFileAtomic(dst, raw.dump(2) + "\n"));
        continue;
      }
    }
    std::error_code ec;
    std::filesystem::copy_file(src, dst, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) return IoError("copying {} to {}: {}", src.string(), dst.string(), ec.message());
  }
  return OkStatus();
}

}  // namespace rvec::merge
