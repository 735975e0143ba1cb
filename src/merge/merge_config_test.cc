// YAML parsing of the mergekit subset: the paper's config, gradients, filters, defaults, errors.
#include "merge/merge_config.h"

#include <gtest/gtest.h>

namespace rvec::merge {
namespace {

constexpr char kPaperConfig[] = R"(models:
  - model: /models/Instella-3B-Instruct
    parameters:
      weight: 1.0
  - model: /models/Instella-3B-GRPO
    parameters:
      weight: 1.0
  - model: /models/Instella-3B-SFT
    parameters:
      weight: -1.0
merge_method: linear
parameters:
  normalize: false
dtype: bfloat16
)";

double Eval(const ParamValue& v, const std::string& tensor, double t) {
  auto r = EvalNumber(v, tensor, t, "p");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() && *r ? **r : -999;
}

TEST(MergeConfig, PaperConfig) {
  auto c = ParseMergeConfig(kPaperConfig, "paper.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->method, MergeMethod::kLinear);
  EXPECT_FALSE(c->base_model.has_value());
  ASSERT_EQ(c->models.size(), 3u);
  EXPECT_EQ(c->models[0].model, "/models/Instella-3B-Instruct");
  EXPECT_EQ(Eval(c->models[2].parameters.at("weight"), "x", 0), -1.0);
  auto normalize = EvalBool(c->parameters.at("normalize"), "x", 0, "normalize");
  ASSERT_TRUE(normalize.ok());
  EXPECT_EQ(**normalize, false);
  EXPECT_EQ(c->dtype, DType::kBF16);
  EXPECT_FALSE(c->out_dtype.has_value());
}

TEST(MergeConfig, GradientsFiltersAndDtypes) {
  auto c = ParseMergeConfig(R"(
merge_method: ties
base_model: base
models:
  - model: a
    parameters:
      density: [0.2, 0.6, 1.0]
      weight:
        - filter: self_attn
          value: 0.3
        - filter: mlp
          value: [0, 1]
        - value: 0.9
  - model: {model: b}
    parameters: {weight: 0.5}
parameters:
  normalize: true
  int8_mask: true
  lambda: 0.8
dtype: torch.float32
out_dtype: float16
tokenizer_source: base
)",
                            "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->method, MergeMethod::kTies);
  EXPECT_EQ(c->base_model, "base");
  EXPECT_EQ(c->models[1].model, "b");
  const auto& w = c->models[0].parameters.at("weight");
  EXPECT_EQ(Eval(w, "model.layers.3.self_attn.q_proj.weight", 0.5), 0.3);
  EXPECT_EQ(Eval(w, "model.layers.3.mlp.up_proj.weight", 0.25), 0.25);
  EXPECT_EQ(Eval(w, "model.norm.weight", 0.0), 0.9);
  EXPECT_DOUBLE_EQ(Eval(c->models[0].parameters.at("density"), "x", 0.75), 0.8);
  EXPECT_EQ(c->dtype, DType::kF32);
  EXPECT_EQ(c->out_dtype, DType::kF16);
  // int8_mask and tokenizer_source are accepted with notes.
  EXPECT_GE(c->notes.size(), 2u);
}

TEST(MergeConfig, MethodDefaultsFollowMergekit) {
  EXPECT_TRUE(DefaultsFor(MergeMethod::kLinear).normalize);
  EXPECT_FALSE(DefaultsFor(MergeMethod::kTaskArithmetic).normalize);
  EXPECT_TRUE(DefaultsFor(MergeMethod::kTies).normalize);
  EXPECT_TRUE(DefaultsFor(MergeMethod::kTies).consensus);
  EXPECT_TRUE(DefaultsFor(MergeMethod::kDareTies).rescale);
  EXPECT_FALSE(DefaultsFor(MergeMethod::kDareTies).normalize);
  EXPECT_FALSE(DefaultsFor(MergeMethod::kDareLinear).consensus);
  EXPECT_FALSE(DefaultsFor(MergeMethod::kBreadcrumbs).consensus);
  EXPECT_TRUE(DefaultsFor(MergeMethod::kBreadcrumbsTies).consensus);
}

TEST(MergeConfig, Errors) {
  auto expect_error = [](const std::string& yaml, const std::string& needle) {
    auto c = ParseMergeConfig(yaml, "bad.yaml");
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
    EXPECT_EQ(c.status().message().rfind("bad.yaml", 0), 0u) << c.status().message();
  };
  expect_error("merge_method: slerp\nmodels: [a]\n", "not supported");
  expect_error("merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: 1}\n",
               "needs base_model");
  expect_error("merge_method: linear\nmodels:\n  - model: a\n", "missing required parameter");
  // A parameter indented at the wrong level (mergekit issue #248).
  expect_error("merge_method: linear\nmodels:\n  - model: a\n    weight: 1\n", "indentation");
  expect_error("merge_method: linear\nmodels: [a]\nparameters: {weight: 1}\nslices: []\n",
               "not supported");
  expect_error("merge_method: linear\nmodels: [a]\nparameters: {wieght: 1}\n", "unknown parameter");
  expect_error("merge_method: [linear\n", "YAML error");
  expect_error("", "mapping");
  expect_error("merge_method: linear\nmodels: [a]\nparameters: {weight: 1}\ndtype: float64\n",
               "dtype");
}

}  // namespace
}  // namespace rvec::merge
