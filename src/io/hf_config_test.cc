// Tests for config.json parsing: real Qwen2/Llama/Qwen3 configs, defaults, and type errors.
#include "io/hf_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rvec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Qwen/Qwen2.5-1.5B-Instruct config.json as published.
const char* kQwen25 = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
  "intermediate_size": 8960, "max_position_embeddings": 32768, "max_window_layers": 21,
  "model_type": "qwen2", "num_attention_heads": 12, "num_hidden_layers": 28,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
  "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 151936})";

TEST(HfConfigTest, ParsesQwen2) {
  auto c = ParseHfConfig(kQwen25, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->model_type, "qwen2");
  EXPECT_THAT(c->architectures, ElementsAre("Qwen2ForCausalLM"));
  EXPECT_EQ(c->Architecture(), "Qwen2ForCausalLM");
  EXPECT_EQ(c->hidden_size, 1536);
  EXPECT_EQ(c->num_hidden_layers, 28);
  EXPECT_EQ(c->num_attention_heads, 12);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->intermediate_size, 8960);
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->max_position_embeddings, 32768);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  EXPECT_TRUE(c->rope_scaling.is_null());
  // Unknown keys are kept.
  EXPECT_EQ(c->raw["sliding_window"], 32768);
  EXPECT_EQ(c->raw["hidden_act"], "silu");
}

TEST(HfConfigTest, DefaultsAndNewerSpellings) {
  // Llama 3 style: rope_scaling object, no kv heads -> heads, explicit head_dim, "dtype" key.
  auto c = ParseHfConfig(R"({"model_type":"llama","architectures":["LlamaForCausalLM"],
      "hidden_size":4096,"num_attention_heads":32,"num_hidden_layers":2,"head_dim":256,
      "rope_scaling":{"rope_type":"llama3","factor":8.0},"dtype":"float16",
      "attention_bias":false,"num_key_value_heads":null})",
                         "cfg");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->num_key_value_heads, 32);
  EXPECT_EQ(c->head_dim, 256);
  EXPECT_EQ(c->torch_dtype, "float16");
  EXPECT_EQ(c->rope_scaling["rope_type"], "llama3");
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  // transformers 5: rope_parameters; integral floats accepted.
  auto d = ParseHfConfig(R"({"hidden_size":64.0,"num_attention_heads":4,
      "rope_parameters":{"rope_theta":500000.0,"rope_type":"default"}})",
                         "cfg");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->hidden_size, 64);
  EXPECT_EQ(d->head_dim, 16);
  EXPECT_DOUBLE_EQ(d->rope_theta, 500000.0);
}

TEST(HfConfigTest, TypeErrorsNameTheKey) {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {R"({"hidden_size":"big"})", "cfg: \"hidden_size\" must be an integer, found a string"},
      {R"({"hidden_size":1.5})", "\"hidden_size\" must be an integer"},
      {R"({"num_hidden_layers":-2})", "\"num_hidden_layers\" is negative"},
      {R"({"rope_theta":"1e6"})", "\"rope_theta\" must be a number"},
      {R"({"tie_word_embeddings":1})", "\"tie_word_embeddings\" must be true or false"},
      {R"({"architectures":"Qwen2ForCausalLM"})", "\"architectures\" must be a list"},
      {R"({"model_type":3})", "\"model_type\" must be a string"},
      {R"([1])", "config must be a JSON object"},
      {R"({"a":)", "not valid JSON"},
  };
  for (const Case& k : cases) {
    auto c = ParseHfConfig(k.json, "cfg");
    ASSERT_FALSE(c.ok()) << k.json;
    EXPECT_THAT(c.status().message(), HasSubstr(k.expect)) << k.json;
  }
  // Duplicate keys follow Python's json.load (last wins), as transformers reads the file.
  auto dup = ParseHfConfig(R"({"hidden_size":1,"hidden_size":2})", "cfg");
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(dup->hidden_size, 2);
}

}  // namespace
}  // namespace rvec
