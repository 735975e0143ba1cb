// Per-tensor coefficients: layer numbers from tensor names, mergekit-style gradients (value lists
// interpolated across layers) and regex overrides (`--alpha-for`, `--alpha-layers`).
#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rvec::merge {

// The N of "...layers.N..." (also "h.N", "blocks.N"), or nullopt for embeddings, final norm,
// lm_head.
std::optional<int64_t> LayerIndex(std::string_view tensor_name);

// Piecewise-linear interpolation of `values` at t in [0, 1], as mergekit evaluates a gradient:
// the list's points sit at t = i / (len - 1).
double InterpolateGradient(const std::vector<double>& values, double t);

// mergekit's t for a tensor: layer / (num_layers - 1) for layer tensors (1 when there is a single
// layer), and 0 for tensors outside the layers (embeddings, final norm, lm_head), which mergekit
// evaluates at the start of their slice.
double GradientPosition(std::string_view tensor_name, int64_t num_layers);

// Which module group a tensor belongs to, for stats and charts.
enum class ModuleGroup { kAttention, kMlp, kEmbedding, kNorm, kOther };
ModuleGroup GroupOf(std::string_view tensor_name);
const char* ModuleGroupName(ModuleGroup group);

// True for token embeddings and output heads, whose row counts may legitimately differ (padded
// vocabularies).
bool IsVocabTensor(std::string_view tensor_name);

// The coefficient schedule of `rvec apply`: first matching `--alpha-for` regex, else the layer
// gradient, else the global alpha.
class AlphaSchedule {
 public:
  AlphaSchedule() = default;
  explicit AlphaSchedule(double alpha) : alpha_(alpha) {}

  // "REGEX=VALUE"; the regex is searched (ECMAScript) anywhere in the tensor name.
  Status AddOverride(std::string_view spec);
  // "0,0.5,1" (at least one value).
  Status SetLayerGradient(std::string_view spec);
  void set_alpha(double alpha) { alpha_ = alpha; }
  void set_num_layers(int64_t n) { num_layers_ = n; }

  double For(std::string_view tensor_name) const;
  std::string Describe() const;  // for the model card and provenance
  bool has_layer_gradient() const { return !layer_values_.empty(); }

 private:
  struct Override {
    std::string pattern;
    std::regex regex;
    double value;
  };
  double alpha_ = 1.0;
  int64_t num_layers_ = 0;
  std::vector<Override> overrides_;
  std::vector<double> layer_values_;
};

// Parses a plain decimal number; the whole string must be consumed.
StatusOr<double> ParseNumber(std::string_view text, std::string_view what);
// Compiles an ECMAScript regex, reporting a bad pattern as InvalidArgument.
StatusOr<std::regex> CompileRegex(const std::string& pattern, std::string_view what);

}  // namespace rvec::merge
