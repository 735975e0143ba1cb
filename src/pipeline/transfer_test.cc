// Unit tests of `rvec transfer`'s planning helpers: --compact specs and serve-command templates.
#include "pipeline/transfer.h"

#include <gtest/gtest.h>

namespace rvec::pipeline {
namespace {

TEST(CompactSpec, ParsesEveryFormAndRejectsTheRest) {
  auto lr = ParseCompactSpec("lowrank:64");
  ASSERT_TRUE(lr.ok());
  EXPECT_EQ(lr->name, "lowrank64");
  EXPECT_EQ(lr->rank, 64);
  auto en = ParseCompactSpec("lowrank-energy:0.9");
  ASSERT_TRUE(en.ok());
  EXPECT_DOUBLE_EQ(en->energy, 0.9);
  auto sp = ParseCompactSpec("sparse:0.1");
  ASSERT_TRUE(sp.ok());
  EXPECT_DOUBLE_EQ(sp->density, 0.1);
  EXPECT_FALSE(sp->dare);
  auto dare = ParseCompactSpec("dare:0.2");
  ASSERT_TRUE(dare.ok());
  EXPECT_TRUE(dare->dare);
  EXPECT_EQ(ParseCompactSpec("sign")->name, "sign");
  for (const char* bad :
       {"lowrank", "lowrank:0", "lowrank:1.5", "sparse:x", "sign:2", "svd:4", "sparse:-1", ""}) {
    auto r = ParseCompactSpec(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--compact"), std::string::npos) << bad;
    }
  }
}

TEST(ServeCommand, LoraRowsServeTheTargetWithTheAdapter) {
  TransferOptions o;
  o.backend = "openai";
  o.target = "/m/instruct";
  o.serve_cmd = "vllm serve {model} --served-model-name {name} --port {port}";
  o.serve_lora_cmd = "vllm serve {model} --enable-lora --lora-modules {name}={lora} --port {port}";
  o.serve_port = 8123;
  Variant exact{"alpha_1", "target + 1·v", 1.0, "", 0, "/w/models/alpha_1", "", {}};
  EXPECT_EQ(ServeCommandFor(o, exact),
            "vllm serve /w/models/alpha_1 --served-model-name alpha_1 --port 8123");
  Variant lora{"compact_lowrank64_alpha_1", "l", 1.0, "", 0, "/w/models/c", "lowrank:64",
               "/w/compact/lowrank64"};
  EXPECT_EQ(ServeCommandFor(o, lora),
            "vllm serve /m/instruct --enable-lora --lora-modules "
            "compact_lowrank64_alpha_1=/w/compact/lowrank64 --port 8123");
  EXPECT_TRUE(ServesLoraModule(o, lora));
  EXPECT_FALSE(ServesLoraModule(o, exact));
  // Other forms, and LoRA at α ≠ 1 (a module's scale is fixed), use the merged model.
  Variant sign{"compact_sign_alpha_1", "s", 1.0, "", 0, "/w/models/s", "sign", "/w/compact/sign"};
  EXPECT_EQ(ServeCommandFor(o, sign),
            "vllm serve /w/models/s --served-model-name compact_sign_alpha_1 --port 8123");
  EXPECT_FALSE(ServesLoraModule(o, sign));
  Variant half = lora;
  half.alpha = 0.5;
  EXPECT_FALSE(ServesLoraModule(o, half));
  EXPECT_EQ(ServeCommandFor(o, half).rfind("vllm serve /w/models/c ", 0), 0u);
  // Without --serve-lora-cmd every row uses --serve-cmd.
  o.serve_lora_cmd.clear();
  EXPECT_EQ(ServeCommandFor(o, lora).rfind("vllm serve /w/models/c ", 0), 0u);
  o.serve_cmd.clear();
  EXPECT_EQ(ServeCommandFor(o, exact), "");
}

TEST(ServeCommand, GgufPlaceholderNamesTheVariantsExport) {
  TransferOptions o;
  o.backend = "openai";
  o.workdir = "/w";
  o.target = "/m/instruct";
  o.serve_cmd = "llama-server -m {gguf} --alias {name} --port {port}";
  o.serve_lora_cmd = "vllm serve {model} --enable-lora --lora-modules {name}={lora} --port {port}";
  o.serve_port = 8080;
  o.gguf_dtype = "f32";
  Variant exact{"alpha_1", "target + 1·v", 1.0, "", 0, "/w/models/alpha_1", "", {}};
  EXPECT_TRUE(ServesGguf(o, exact));
  EXPECT_EQ(GgufPathFor(o, exact), "/w/gguf/alpha_1.f32.gguf");
  EXPECT_EQ(ServeCommandFor(o, exact),
            "llama-server -m /w/gguf/alpha_1.f32.gguf --alias alpha_1 --port 8080");
  // The dtype is part of the file name, so a bf16 export never stands in for an f32 one.
  o.gguf_dtype = "bf16";
  EXPECT_EQ(GgufPathFor(o, exact), "/w/gguf/alpha_1.bf16.gguf");
  // A LoRA row is served by its own template from the target: no export.
  Variant lora{"compact_lowrank64_alpha_1", "l", 1.0, "", 0, "/w/models/c", "lowrank:64",
               "/w/compact/lowrank64"};
  EXPECT_FALSE(ServesGguf(o, lora));
  // Without {gguf}, or with another backend, nothing is exported.
  o.serve_cmd = "vllm serve {model} --served-model-name {name} --port {port}";
  EXPECT_FALSE(ServesGguf(o, exact));
  o.serve_cmd = "llama-server -m {gguf}";
  o.backend = "local";
  EXPECT_FALSE(ServesGguf(o, exact));
}

}  // namespace
}  // namespace rvec::pipeline
