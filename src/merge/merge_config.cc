// YAML parsing for `rvec merge` (yaml-cpp exceptions are caught here, at the boundary).
#include "merge/merge_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "merge/schedule.h"

namespace rvec::merge {

const char* MergeMethodName(MergeMethod method) {
  switch (method) {
    case MergeMethod::kLinear:
      return "linear";
    case MergeMethod::kTaskArithmetic:
      return "task_arithmetic";
    case MergeMethod::kTies:
      return "ties";
    case MergeMethod::kDareLinear:
      return "dare_linear";
    case MergeMethod::kDareTies:
      return "dare_ties";
    case MergeMethod::kBreadcrumbs:
      return "breadcrumbs";
    case MergeMethod::kBreadcrumbsTies:
      return "breadcrumbs_ties";
  }
  return "?";
}

MethodDefaults DefaultsFor(MergeMethod method) {
  using S = MethodDefaults::Sparsify;
  MethodDefaults d;
  switch (method) {
    case MergeMethod::kLinear:
      d.normalize = true;
      break;
    case MergeMethod::kTaskArithmetic:
      d.needs_base = true;
      break;
    case MergeMethod::kTies:
      d = {true, true, S::kMagnitude, true, false};
      break;
    case MergeMethod::kDareTies:
      d = {true, true, S::kRandom, false, true};
      break;
    case MergeMethod::kDareLinear:
      d = {true, false, S::kRandom, false, true};
      break;
    case MergeMethod::kBreadcrumbs:
      d = {true, false, S::kOutliers, false, false};
      break;
    case MergeMethod::kBreadcrumbsTies:
      d = {true, true, S::kOutliers, false, false};
      break;
  }
  return d;
}

StatusOr<std::optional<double>> EvalNumber(const ParamValue& value, std::string_view tensor,
                                           double t, std::string_view what) {
  switch (value.kind) {
    case ParamValue::Kind::kNumber:
      return std::optional<double>(value.number);
    case ParamValue::Kind::kBool:
      return std::optional<double>(value.boolean ? 1.0 : 0.0);
    case ParamValue::Kind::kGradient:
      return std::optional<double>(InterpolateGradient(value.gradient, t));
    case ParamValue::Kind::kFilters:
      for (const auto& [filter, inner] : value.filters) {
        if (filter.empty() || filter == "*" || tensor.find(filter) != std::string_view::npos) {
          return EvalNumber(inner, tensor, t, what);
        }
      }
      return std::optional<double>();
    case ParamValue::Kind::kString:
      break;
  }
  return InvalidArgument("parameter {}: '{}' is not a number", what, value.text);
}

StatusOr<std::optional<bool>> EvalBool(const ParamValue& value, std::string_view tensor, double t,
                                       std::string_view what) {
  if (value.kind == ParamValue::Kind::kBool) return std::optional<bool>(value.boolean);
  ASSIGN_OR_RETURN(std::optional<double> n, EvalNumber(value, tensor, t, what));
  if (!n) return std::optional<bool>();
  return std::optional<bool>(*n != 0.0);
}

namespace {

std::string Where(std::string_view label, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return std::string(label);
  return fmt::format("{}:{}", label, mark.line + 1);
}

StatusOr<ParamValue> ParseScalar(const YAML::Node& node, std::string_view label,
                                 std::string_view what) {
  ParamValue v;
  const std::string s = node.Scalar();
  if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "on") {
    v.kind = ParamValue::Kind::kBool;
    v.boolean = true;
    return v;
  }
  if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "off") {
    v.kind = ParamValue::Kind::kBool;
    v.boolean = false;
    return v;
  }
  auto n = ParseNumber(s, what);
  if (n.ok()) {
    v.kind = ParamValue::Kind::kNumber;
    v.number = *n;
    return v;
  }
  (void)label;
  v.kind = ParamValue::Kind::kString;
  v.text = s;
  return v;
}

StatusOr<ParamValue> ParseParam(const YAML::Node& node, std::string_view label,
                                const std::string& what) {
  if (node.IsScalar()) return ParseScalar(node, label, what);
  if (node.IsSequence()) {
    if (node.size() == 0) {
      return InvalidArgument("{}: parameter {} is an empty list", Where(label, node), what);
    }
    if (node[0].IsMap()) {
      ParamValue v;
      v.kind = ParamValue::Kind::kFilters;
      for (const YAML::Node& entry : node) {
        if (!entry.IsMap() || !entry["value"]) {
          return InvalidArgument("{}: parameter {}: each filter entry needs a 'value'",
                                 Where(label, entry), what);
        }
        std::string filter;
        if (entry["filter"]) filter = entry["filter"].as<std::string>();
        ASSIGN_OR_RETURN(ParamValue inner, ParseParam(entry["value"], label, what));
        v.filters.emplace_back(filter, std::move(inner));
      }
      return v;
    }
    ParamValue v;
    v.kind = ParamValue::Kind::kGradient;
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) {
        return InvalidArgument("{}: parameter {}: a gradient is a list of numbers",
                               Where(label, item), what);
      }
      ASSIGN_OR_RETURN(double x, ParseNumber(item.Scalar(), fmt::format("{}: parameter {}",
                                                                        Where(label, item), what)));
      v.gradient.push_back(x);
    }
    return v;
  }
  return InvalidArgument("{}: parameter {} must be a number, a list or a filter list",
                         Where(label, node), what);
}

StatusOr<std::map<std::string, ParamValue>> ParseParams(const YAML::Node& node,
                                                        std::string_view label) {
  std::map<std::string, ParamValue> out;
  if (!node || node.IsNull()) return out;
  if (!node.IsMap()) {
    return InvalidArgument("{}: 'parameters' must be a mapping", Where(label, node));
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    ASSIGN_OR_RETURN(ParamValue v, ParseParam(kv.second, label, key));
    out[key] = std::move(v);
  }
  return out;
}

StatusOr<DType> ParseConfigDType(const YAML::Node& node, std::string_view label) {
  std::string s = node.as<std::string>();
  if (s.rfind("torch.", 0) == 0) s = s.substr(6);
  if (s == "bfloat16") return DType::kBF16;
  if (s == "float16") return DType::kF16;
  if (s == "float32") return DType::kF32;
  return InvalidArgument("{}: dtype '{}': rvec accepts bfloat16, float16 or float32",
                         Where(label, node), s);
}

StatusOr<std::string> ModelName(const YAML::Node& node, std::string_view label) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsMap() && node["model"] && node["model"].IsScalar()) {
    // mergekit's long form {model: {model: path}} (LoRA references are not supported).
    if (node["lora"]) {
      return Unimplemented("{}: LoRA model references are not supported", Where(label, node));
    }
    return node["model"].Scalar();
  }
  return InvalidArgument("{}: expected a model path", Where(label, node));
}

StatusOr<MergeConfig> ParseImpl(const YAML::Node& root, std::string_view label) {
  MergeConfig config;
  if (!root.IsMap()) return InvalidArgument("{}: the top level must be a mapping", label);
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& value = kv.second;
    if (key == "merge_method") {
      const std::string m = value.as<std::string>();
      bool found = false;
      for (MergeMethod method :
           {MergeMethod::kLinear, MergeMethod::kTaskArithmetic, MergeMethod::kTies,
            MergeMethod::kDareLinear, MergeMethod::kDareTies, MergeMethod::kBreadcrumbs,
            MergeMethod::kBreadcrumbsTies}) {
        if (m == MergeMethodName(method)) {
          config.method = method;
          found = true;
        }
      }
      if (!found) {
        return Unimplemented(
            "{}: merge_method '{}' is not supported; rvec implements linear, task_arithmetic, "
            "ties, dare_linear, dare_ties, breadcrumbs and breadcrumbs_ties",
            Where(label, value), m);
      }
    } else if (key == "base_model") {
      ASSIGN_OR_RETURN(std::string name, ModelName(value, label));
      config.base_model = name;
    } else if (key == "models") {
      if (!value.IsSequence()) {
        return InvalidArgument("{}: 'models' must be a list", Where(label, value));
      }
      for (const YAML::Node& entry : value) {
        ModelEntry m;
        if (entry.IsScalar()) {
          m.model = entry.Scalar();
        } else if (entry.IsMap() && entry["model"]) {
          ASSIGN_OR_RETURN(m.model, ModelName(entry["model"], label));
          for (const auto& e : entry) {
            const std::string k = e.first.as<std::string>();
            if (k != "model" && k != "parameters") {
              return InvalidArgument(
                  "{}: unknown key '{}' in a models entry (parameters go under 'parameters:', "
                  "check the indentation)",
                  Where(label, e.first), k);
            }
          }
          ASSIGN_OR_RETURN(m.parameters, ParseParams(entry["parameters"], label));
        } else {
          return InvalidArgument("{}: each models entry needs 'model:'", Where(label, entry));
        }
        config.models.push_back(std::move(m));
      }
    } else if (key == "parameters") {
      ASSIGN_OR_RETURN(config.parameters, ParseParams(value, label));
    } else if (key == "dtype") {
      ASSIGN_OR_RETURN(config.dtype, ParseConfigDType(value, label));
    } else if (key == "out_dtype") {
      ASSIGN_OR_RETURN(config.out_dtype, ParseConfigDType(value, label));
    } else if (key == "slices" || key == "modules") {
      return Unimplemented(
          "{}: '{}' (layer-range and multi-module merges) is not supported; use "
          "'models:'",
          Where(label, value), key);
    } else if (key == "tokenizer_source" || key == "tokenizer" || key == "chat_template") {
      config.notes.push_back(fmt::format(
          "'{}' is ignored: rvec never merges vocabularies; config, tokenizer, generation config "
          "and chat template are copied from base_model (else the first model listed)",
          key));
    } else if (key == "name") {
      // mergekit's optional label; nothing to do.
    } else {
      return InvalidArgument("{}: unknown top-level key '{}'", Where(label, kv.first), key);
    }
  }
  if (config.models.empty()) return InvalidArgument("{}: 'models' is missing or empty", label);
  const MethodDefaults defaults = DefaultsFor(config.method);
  if (defaults.needs_base && !config.base_model) {
    return InvalidArgument("{}: merge_method {} needs base_model", label,
                           MergeMethodName(config.method));
  }
  auto known = [](const std::string& k) {
    return k == "weight" || k == "density" || k == "gamma" || k == "lambda" || k == "normalize" ||
           k == "rescale" || k == "int8_mask" || k == "epsilon";
  };
  auto check_keys = [&](const std::map<std::string, ParamValue>& params,
                        const std::string& where) -> Status {
    for (const auto& [k, v] : params) {
      if (!known(k)) {
        return InvalidArgument("{}: unknown parameter '{}' in {}", label, k, where);
      }
      if (k == "int8_mask") {
        config.notes.push_back(
            "'int8_mask' is ignored: rvec keeps masks as bytes (no effect on "
            "results)");
      }
      if (k == "epsilon") {
        config.notes.push_back(
            "'epsilon' is ignored: it only affects DELLA, which rvec does not "
            "implement");
      }
    }
    return OkStatus();
  };
  RETURN_IF_ERROR(check_keys(config.parameters, "parameters"));
  for (const ModelEntry& m : config.models) {
    RETURN_IF_ERROR(check_keys(m.parameters, "the parameters of " + m.model));
  }
  for (const ModelEntry& m : config.models) {
    if (config.base_model && m.model == *config.base_model) continue;
    if (!m.parameters.count("weight") && !config.parameters.count("weight")) {
      return InvalidArgument(
          "{}: missing required parameter 'weight' for model {} (is 'parameters:' indented under "
          "the model entry?)",
          label, m.model);
    }
  }
  return config;
}

}  // namespace

StatusOr<MergeConfig> ParseMergeConfig(std::string_view yaml_text, std::string_view label) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    return ParseImpl(root, label);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("{}: YAML error: {}", label, e.what());
  }
}

}  // namespace rvec::merge
