// Test helpers for the engine: tiny random models written by the synth library into a temporary
// directory (once per preset, dtype and config edit), and the model structures loaded from them.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/dtype.h"
#include "base/fs.h"
#include "io/checkpoint.h"
#include "model/model_config.h"
#include "model/weights.h"
#include "synth/synth.h"

namespace rvec::testing_util {

inline std::filesystem::path ScratchRoot() {
  static const std::filesystem::path root = [] {
    auto p = std::filesystem::path(::testing::TempDir()) /
             ("rvec_model_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p;
  }();
  return root;
}

// A synth model directory; `edit_config(json)` may rewrite config.json (e.g. add rope_scaling).
inline std::filesystem::path SynthModel(
    const std::string& preset, DType dtype, uint64_t seed = 7, const std::string& variant = "",
    const std::function<void(nlohmann::json&)>& edit_config = nullptr) {
  static std::map<std::string, std::filesystem::path> made;
  const std::string key =
      preset + "-" + std::string(DTypeName(dtype)) + "-" + std::to_string(seed) + variant;
  if (auto it = made.find(key); it != made.end()) return it->second;
  SynthOptions o;
  o.preset = preset;
  o.seed = seed;
  o.dtype = dtype;
  o.out = ScratchRoot() / key;
  o.threads = 2;
  auto r = WriteSyntheticModel(o, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (edit_config) {
    auto text = ReadFileToString(o.out / "config.json");
    EXPECT_TRUE(text.ok());
    nlohmann::json j = nlohmann::json::parse(*text);
    edit_config(j);
    EXPECT_TRUE(WriteFileAtomic(o.out / "config.json", j.dump(2)).ok());
  }
  made[key] = o.out;
  return o.out;
}

struct LoadedModel {
  std::unique_ptr<Checkpoint> ckpt;
  ModelConfig config;
  ModelWeights weights;
};

inline std::unique_ptr<LoadedModel> LoadModel(const std::filesystem::path& dir) {
  auto m = std::make_unique<LoadedModel>();
  auto ckpt = Checkpoint::Open(dir);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  if (!ckpt.ok()) return nullptr;
  m->ckpt = std::make_unique<Checkpoint>(std::move(*ckpt));
  auto config = ModelConfig::FromHf(*m->ckpt->config(), dir.string());
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  if (!config.ok()) return nullptr;
  m->config = *config;
  auto weights = ModelWeights::Load(*m->ckpt, m->config);
  EXPECT_TRUE(weights.ok()) << weights.status().ToString();
  if (!weights.ok()) return nullptr;
  m->weights = std::move(*weights);
  return m;
}

}  // namespace rvec::testing_util
