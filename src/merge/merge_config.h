// The mergekit YAML subset rvec understands: merge_method, base_model, models with per-model
// parameters, global parameters (scalars, gradients, filter lists), dtype and out_dtype.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace rvec::merge {

// A parameter as written in the YAML: a number or boolean, a gradient (list of numbers
// interpolated across layers) or a filter list (first entry whose filter is a substring of the
// tensor name wins; no filter or "*" matches everything).
struct ParamValue {
  enum class Kind { kNumber, kBool, kString, kGradient, kFilters };
  Kind kind = Kind::kNumber;
  double number = 0;
  bool boolean = false;
  std::string text;
  std::vector<double> gradient;
  std::vector<std::pair<std::string, ParamValue>> filters;
};

// Evaluates a parameter for one tensor at gradient position t (see GradientPosition).
// `what` names the parameter in errors. nullopt when a filter list has no matching entry.
StatusOr<std::optional<double>> EvalNumber(const ParamValue& value, std::string_view tensor,
                                           double t, std::string_view what);
StatusOr<std::optional<bool>> EvalBool(const ParamValue& value, std::string_view tensor, double t,
                                       std::string_view what);

enum class MergeMethod {
  kLinear,
  kTaskArithmetic,
  kTies,
  kDareLinear,
  kDareTies,
  kBreadcrumbs,
  kBreadcrumbsTies,
};
const char* MergeMethodName(MergeMethod method);

struct ModelEntry {
  std::string model;
  std::map<std::string, ParamValue> parameters;
};

struct MergeConfig {
  MergeMethod method = MergeMethod::kLinear;
  std::optional<std::string> base_model;
  std::vector<ModelEntry> models;
  std::map<std::string, ParamValue> parameters;
  std::optional<DType> dtype;      // mergekit's compute dtype; rvec computes in f32 (see docs)
  std::optional<DType> out_dtype;  // storage dtype
  std::vector<std::string> notes;  // keys accepted but ignored, with the reason
};

// Parses the YAML text; `label` (the file name) starts every error message.
StatusOr<MergeConfig> ParseMergeConfig(std::string_view yaml_text, std::string_view label);

// Method defaults, as mergekit's registry defines them.
struct MethodDefaults {
  bool needs_base = false;
  bool consensus = false;  // TIES sign election
  enum class Sparsify { kNone, kMagnitude, kRandom, kOutliers } sparsify = Sparsify::kNone;
  bool normalize = false;
  bool rescale = false;
};
MethodDefaults DefaultsFor(MergeMethod method);

}  // namespace rvec::merge
