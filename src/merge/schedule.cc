// Layer numbers, gradients and alpha overrides for per-tensor coefficients.
#include "merge/schedule.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace rvec::merge {

std::optional<int64_t> LayerIndex(std::string_view name) {
  static constexpr std::string_view kMarkers[] = {"layers.", "h.", "blocks.", "layer."};
  for (std::string_view marker : kMarkers) {
    size_t pos = 0;
    while ((pos = name.find(marker, pos)) != std::string_view::npos) {
      const bool at_boundary = pos == 0 || name[pos - 1] == '.';
      size_t i = pos + marker.size();
      size_t digits_end = i;
      while (digits_end < name.size() && name[digits_end] >= '0' && name[digits_end] <= '9') {
        ++digits_end;
      }
      if (at_boundary && digits_end > i && (digits_end == name.size() || name[digits_end] == '.')) {
        int64_t value = 0;
        std::from_chars(name.data() + i, name.data() + digits_end, value);
        return value;
      }
      pos += marker.size();
    }
  }
  return std::nullopt;
}

double InterpolateGradient(const std::vector<double>& values, double t) {
  if (values.empty()) return 0.0;
  if (values.size() == 1) return values[0];
  if (t <= 0) return values.front();
  if (t >= 1) return values.back();
  const double scaled = t * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(scaled));
  if (lo + 1 >= values.size()) return values.back();
  const double frac = scaled - static_cast<double>(lo);
  return values[lo] * (1.0 - frac) + values[lo + 1] * frac;
}

double GradientPosition(std::string_view tensor_name, int64_t num_layers) {
  const std::optional<int64_t> layer = LayerIndex(tensor_name);
  if (!layer) return 0.0;
  if (num_layers <= 1) return 1.0;
  return static_cast<double>(*layer) / static_cast<double>(num_layers - 1);
}

ModuleGroup GroupOf(std::string_view name) {
  auto has = [&](std::string_view s) { return name.find(s) != std::string_view::npos; };
  if (has("embed") || has("lm_head") || has("wte") || has("wpe")) return ModuleGroup::kEmbedding;
  if (has("norm") || has("ln_")) return ModuleGroup::kNorm;
  if (has("attn") || has("attention")) return ModuleGroup::kAttention;
  if (has("mlp") || has("feed_forward") || has("ffn")) return ModuleGroup::kMlp;
  return ModuleGroup::kOther;
}

const char* ModuleGroupName(ModuleGroup group) {
  switch (group) {
    case ModuleGroup::kAttention:
      return "attention";
    case ModuleGroup::kMlp:
      return "mlp";
    case ModuleGroup::kEmbedding:
      return "embeddings";
    case ModuleGroup::kNorm:
      return "norms";
    case ModuleGroup::kOther:
      return "other";
  }
  return "other";
}

bool IsVocabTensor(std::string_view name) {
  return name.find("embed_tokens") != std::string_view::npos ||
         name.find("lm_head") != std::string_view::npos ||
         name.find("wte") != std::string_view::npos;
}

StatusOr<double> ParseNumber(std::string_view text, std::string_view what) {
  std::string s(text);
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (s.empty()) return InvalidArgument("{}: expected a number, got an empty string", what);
  double value = 0;
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  if (*begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return InvalidArgument("{}: '{}' is not a finite number", what, text);
  }
  return value;
}

StatusOr<std::regex> CompileRegex(const std::string& pattern, std::string_view what) {
  try {
    return std::regex(pattern, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return InvalidArgument("{}: bad regular expression '{}': {}", what, pattern, e.what());
  }
}

Status AlphaSchedule::AddOverride(std::string_view spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgument("--alpha-for '{}': expected REGEX=ALPHA, e.g. 'mlp=0.5'", spec);
  }
  const std::string pattern(spec.substr(0, eq));
  ASSIGN_OR_RETURN(double value, ParseNumber(spec.substr(eq + 1), "--alpha-for " + pattern));
  ASSIGN_OR_RETURN(std::regex re, CompileRegex(pattern, "--alpha-for"));
  overrides_.push_back({pattern, std::move(re), value});
  return OkStatus();
}

Status AlphaSchedule::SetLayerGradient(std::string_view spec) {
  layer_values_.clear();
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string_view::npos) comma = spec.size();
    ASSIGN_OR_RETURN(double v, ParseNumber(spec.substr(start, comma - start), "--alpha-layers"));
    layer_values_.push_back(v);
    start = comma + 1;
  }
  if (layer_values_.empty()) return InvalidArgument("--alpha-layers: no values");
  return OkStatus();
}

double AlphaSchedule::For(std::string_view tensor_name) const {
  for (const Override& o : overrides_) {
    if (std::regex_search(tensor_name.begin(), tensor_name.end(), o.regex)) return o.value;
  }
  if (!layer_values_.empty()) {
    return InterpolateGradient(layer_values_, GradientPosition(tensor_name, num_layers_));
  }
  return alpha_;
}

std::string AlphaSchedule::Describe() const {
  std::string out;
  for (const Override& o : overrides_) {
    out += fmt::format("alpha {} for tensors matching /{}/; ", o.value, o.pattern);
  }
  if (!layer_values_.empty()) {
    out += "layer gradient [";
    for (size_t i = 0; i < layer_values_.size(); ++i) {
      out += fmt::format("{}{}", i ? ", " : "", layer_values_[i]);
    }
    out += fmt::format("] over {} layers (tensors outside the layers use the first value)",
                       num_layers_);
  } else {
    out += fmt::format("alpha {} elsewhere", alpha_);
  }
  return out;
}

}  // namespace rvec::merge
