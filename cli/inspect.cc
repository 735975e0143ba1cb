// `rvec inspect`: what a checkpoint holds (architecture, parameters, dtypes, shards, metadata,
// config, side files, optionally every tensor), read from the headers only.
#include <chrono>
#include <cstdio>
#include <string>

#include "base/progress.h"
#include "cli/command.h"
#include "io/checkpoint.h"
#include "io/checkpoint_summary.h"

namespace rvec::cli {
namespace {

using nlohmann::json;

std::string WithCommas(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string ShortCount(uint64_t n) {
  const double v = static_cast<double>(n);
  if (v >= 1e9) return fmt::format("{:.2f}B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}K", v / 1e3);
  return std::to_string(n);
}

std::string ShapeText(const json& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i].get<int64_t>());
  }
  return s + "]";
}

void PrintRow(const char* key, const std::string& value) {
  std::printf("%-13s%s\n", key, value.c_str());
}

void PrintHuman(const json& d, double millis) {
  const size_t num_shards = d["shards"].size();
  std::string where = d["path"].get<std::string>();
  if (d["sharded"].get<bool>()) {
    where += fmt::format("  ({} shards via model.safetensors.index.json)", num_shards);
  } else {
    where += "  (single file)";
  }
  PrintRow("Checkpoint", where);
  if (!d["architecture"].is_null() || !d["model_type"].is_null()) {
    std::string arch = d["architecture"].is_null() ? "?" : d["architecture"].get<std::string>();
    if (!d["model_type"].is_null())
      arch += fmt::format(" ({})", d["model_type"].get<std::string>());
    PrintRow("Architecture", arch);
  } else {
    PrintRow("Architecture", "unknown (no config.json)");
  }
  const uint64_t params = d["parameters"].get<uint64_t>();
  PrintRow("Parameters", fmt::format("{} ({})", WithCommas(params), ShortCount(params)));
  PrintRow("Tensors", WithCommas(d["tensor_count"].get<uint64_t>()));
  bool first = true;
  for (const auto& [name, t] : d["dtypes"].items()) {
    PrintRow(first ? "Dtypes" : "", fmt::format("{:<8} {} tensors, {} parameters, {}", name,
                                                WithCommas(t["tensors"].get<uint64_t>()),
                                                ShortCount(t["parameters"].get<uint64_t>()),
                                                HumanBytes(t["bytes"].get<uint64_t>())));
    first = false;
  }
  if (first) PrintRow("Dtypes", "none (no tensors)");
  PrintRow("Size", fmt::format("{} of tensor data, {} on disk",
                               HumanBytes(d["tensor_bytes"].get<uint64_t>()),
                               HumanBytes(d["file_bytes"].get<uint64_t>())));
  size_t name_width = 0;
  for (const json& s : d["shards"])
    name_width = std::max(name_width, s["file"].get_ref<const std::string&>().size());
  first = true;
  for (const json& s : d["shards"]) {
    PrintRow(first ? "Shards" : "",
             fmt::format("{:<{}}  {:>6} tensors  {:>10}", s["file"].get<std::string>(), name_width,
                         s["tensors"].get<uint64_t>(), HumanBytes(s["bytes"].get<uint64_t>())));
    first = false;
  }
  std::string meta;
  for (const auto& [k, v] : d["metadata"].items()) {
    if (!meta.empty()) meta += ", ";
    meta += k + "=" + v.get<std::string>();
  }
  if (meta.empty()) meta = "none";
  if (!d["metadata_consistent"].get<bool>()) meta += "  (first shard; other shards differ)";
  PrintRow("Metadata", meta);
  if (!d["config"].is_null()) {
    const json& c = d["config"];
    std::string text = fmt::format(
        "hidden {}, layers {}, heads {} (kv {}, head_dim {}), intermediate {}, vocab {}",
        c["hidden_size"].get<int64_t>(), c["num_hidden_layers"].get<int64_t>(),
        c["num_attention_heads"].get<int64_t>(), c["num_key_value_heads"].get<int64_t>(),
        c["head_dim"].get<int64_t>(), c["intermediate_size"].get<int64_t>(),
        c["vocab_size"].get<int64_t>());
    PrintRow("Config", text);
    std::string more = fmt::format("rope_theta {}", c["rope_theta"].get<double>());
    if (!c["rope_scaling"].is_null()) more += ", rope_scaling " + c["rope_scaling"].dump();
    more += fmt::format(", rms_norm_eps {}, {} embeddings", c["rms_norm_eps"].get<double>(),
                        c["tie_word_embeddings"].get<bool>() ? "tied" : "untied");
    if (!c["torch_dtype"].get<std::string>().empty()) {
      more += ", torch_dtype " + c["torch_dtype"].get<std::string>();
    }
    PrintRow("", more);
  } else {
    PrintRow("Config", "none");
  }
  std::string side;
  for (const json& f : d["side_files"]) {
    if (!side.empty()) side += ", ";
    side += f.get<std::string>();
  }
  PrintRow("Side files", side.empty() ? "none" : side);
  PrintRow("Read in", fmt::format("{:.1f} ms (headers only)", millis));
  if (d.contains("tensors")) {
    size_t width = 4;
    for (const json& t : d["tensors"])
      width = std::max(width, t["name"].get_ref<const std::string&>().size());
    std::printf("\n%-*s  %-7s  %-20s  %s\n", static_cast<int>(width), "NAME", "DTYPE", "SHAPE",
                "SHARD");
    for (const json& t : d["tensors"]) {
      std::printf("%-*s  %-7s  %-20s  %s\n", static_cast<int>(width),
                  t["name"].get_ref<const std::string&>().c_str(),
                  t["dtype"].get_ref<const std::string&>().c_str(), ShapeText(t["shape"]).c_str(),
                  t["shard"].get_ref<const std::string&>().c_str());
    }
  }
}

const RegisterCommand kInspect(
    "inspect", "Show what a checkpoint holds (headers only; fast on multi-GB models)", 10,
    [](CLI::App& app) -> std::function<Status()> {
      auto path = std::make_shared<std::string>();
      auto tensors = std::make_shared<bool>(false);
      app.description(
          "Show a checkpoint's architecture, parameter count, dtypes, shards, bytes, safetensors "
          "metadata, config.json summary and side files. Reads only the headers, so it takes "
          "milliseconds even on multi-gigabyte sharded models. Exits non-zero with a message "
          "naming the file and the problem when a file is malformed.\n\n"
          "Examples:\n"
          "  rvec inspect Qwen2.5-1.5B-Instruct/\n"
          "  rvec inspect model.safetensors --tensors\n"
          "  rvec inspect /tmp/tiny --json | jq .parameters");
      app.add_option("path", *path,
                     "Model directory (model.safetensors or model.safetensors.index.json), "
                     "a .safetensors file, or an index file")
          ->required();
      app.add_flag("--tensors", *tensors, "Also list every tensor: name, dtype, shape, shard");
      AddCommonFlags(app);
      return [path, tensors]() -> Status {
        const auto start = std::chrono::steady_clock::now();
        ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(*path));
        const json description = DescribeCheckpoint(checkpoint, *tensors);
        const double millis =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (Globals().json) {
          PrintJson(description.dump(2, ' ', false, json::error_handler_t::replace));
        } else {
          PrintHuman(description, millis);
        }
        return OkStatus();
      };
    });

}  // namespace
}  // namespace rvec::cli
