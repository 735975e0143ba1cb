// Test helpers for the merge layer: tiny synthetic model families and scalar tensor reads.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "synth/synth.h"

namespace rvec::merge::testing {

// Removes the scratch directories when the test binary exits (set RVEC_KEEP_TEST_DIRS to keep).
struct ScratchCleanup {
  std::vector<std::filesystem::path> dirs;
  ~ScratchCleanup() {
    if (std::getenv("RVEC_KEEP_TEST_DIRS")) return;
    std::error_code ec;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};

// A fresh scratch directory per call, removed at exit.
inline std::filesystem::path ScratchDir(const std::string& name) {
  static ScratchCleanup cleanup;
  static std::atomic<int> counter{0};
  const auto dir =
      std::filesystem::temp_directory_path() / ("rvec_merge_test_" + std::to_string(::getpid()) +
                                                "_" + std::to_string(counter++) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  cleanup.dirs.push_back(dir);
  return dir;
}

inline void MakeModel(const std::string& preset, uint64_t seed, DType dtype,
                      const std::filesystem::path& out, size_t shards = 1) {
  SynthOptions o;
  o.preset = preset;
  o.seed = seed;
  o.dtype = dtype;
  o.shards = shards;
  o.out = out;
  o.threads = 1;
  auto r = WriteSyntheticModel(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

inline void Perturb(const std::filesystem::path& base, uint64_t seed, double stddev,
                    const std::filesystem::path& out) {
  PerturbOptions o;
  o.base = base;
  o.out = out;
  o.seed = seed;
  o.stddev = stddev;
  o.threads = 1;
  auto r = WritePerturbedModel(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

// A family like the paper's: base model, SFT = base + noise, GRPO = SFT + smaller noise,
// Instruct = base + other noise.
struct Family {
  std::filesystem::path base, sft, grpo, instruct;
};
inline Family MakeFamily(const std::filesystem::path& dir, const std::string& preset, DType dtype) {
  Family f{dir / "base", dir / "sft", dir / "grpo", dir / "instruct"};
  MakeModel(preset, 11, dtype, f.base);
  Perturb(f.base, 21, 0.01, f.sft);
  Perturb(f.sft, 31, 0.002, f.grpo);
  Perturb(f.base, 41, 0.01, f.instruct);
  return f;
}

inline std::vector<float> ReadF32Scalar(const std::filesystem::path& path, const std::string& name,
                                        DType* dtype = nullptr) {
  auto ckpt = Checkpoint::Open(path);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  if (!ckpt.ok()) return {};
  auto view = ckpt->View(name);
  EXPECT_TRUE(view.ok()) << view.status().ToString();
  if (!view.ok()) return {};
  std::vector<float> out(view->NumElements());
  for (size_t i = 0; i < out.size(); ++i) out[i] = LoadAsF32(view->dtype(), view->data, i);
  if (dtype) *dtype = view->dtype();
  return out;
}

inline std::string ReadBytes(const std::filesystem::path& path, const std::string& name) {
  auto ckpt = Checkpoint::Open(path);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  if (!ckpt.ok()) return {};
  auto view = ckpt->View(name);
  EXPECT_TRUE(view.ok()) << view.status().ToString();
  if (!view.ok()) return {};
  return std::string(reinterpret_cast<const char*>(view->data), view->NumBytes());
}

inline std::vector<std::string> TensorNames(const std::filesystem::path& path) {
  auto ckpt = Checkpoint::Open(path);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  return ckpt.ok() ? ckpt->TensorNames() : std::vector<std::string>{};
}

// Writes a checkpoint with the given tensors (all of one dtype) from f32 values.
struct RawTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};
inline void WriteTensors(const std::filesystem::path& out, const std::vector<RawTensor>& tensors,
                         DType dtype, const std::string& config_json = "") {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) specs.push_back({t.name, dtype, t.shape});
  CheckpointWriterOptions o;
  o.max_shard_bytes = 0;
  auto w = CheckpointWriter::Create(out, specs, o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  for (size_t i = 0; i < tensors.size(); ++i) {
    std::vector<uint8_t> bytes(tensors[i].values.size() * DTypeSize(dtype));
    for (size_t e = 0; e < tensors[i].values.size(); ++e) {
      StoreFromF32(dtype, bytes.data(), e, tensors[i].values[e]);
    }
    ASSERT_TRUE((*w)->Write(i, 0, bytes.data(), bytes.size()).ok());
  }
  if (!config_json.empty()) {
    FILE* f = std::fopen(((*w)->staging_dir() / "config.json").c_str(), "w");
    std::fwrite(config_json.data(), 1, config_json.size(), f);
    std::fclose(f);
  }
  auto s = (*w)->Finish();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

}  // namespace rvec::merge::testing
