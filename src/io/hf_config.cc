// config.json parsing: typed fields with transformers' defaults, type errors naming the key.
#include "io/hf_config.h"

#include <cmath>
#include <limits>

#include "io/strict_json.h"

namespace rvec {

namespace {

using nlohmann::json;

// A present, non-null key (transformers treats null like absent for these fields).
const json* Field(const json& root, const char* key) {
  const auto it = root.find(key);
  if (it == root.end() || it->is_null()) return nullptr;
  return &*it;
}

Status GetInt(const json& root, const char* key, std::string_view label, int64_t* out) {
  const json* v = Field(root, key);
  if (v == nullptr) return OkStatus();
  if (v->is_number_integer()) {  // also true for number_unsigned
    if (v->is_number_unsigned() &&
        v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return InvalidArgument("{}: \"{}\" is too large ({})", label, key, v->dump());
    }
    *out = v->get<int64_t>();
    return OkStatus();
  }
  // Some exporters write 4096.0; accept integral floats as Python's int() would not complain.
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      *out = static_cast<int64_t>(d);
      return OkStatus();
    }
  }
  return InvalidArgument("{}: \"{}\" must be an integer, found {} ({})", label, key,
                         JsonTypeName(*v), v->dump());
}

Status GetDouble(const json& root, const char* key, std::string_view label, double* out) {
  const json* v = Field(root, key);
  if (v == nullptr) return OkStatus();
  if (!v->is_number()) {
    return InvalidArgument("{}: \"{}\" must be a number, found {} ({})", label, key,
                           JsonTypeName(*v), v->dump());
  }
  *out = v->get<double>();
  return OkStatus();
}

Status GetBool(const json& root, const char* key, std::string_view label, bool* out) {
  const json* v = Field(root, key);
  if (v == nullptr) return OkStatus();
  if (!v->is_boolean()) {
    return InvalidArgument("{}: \"{}\" must be true or false, found {} ({})", label, key,
                           JsonTypeName(*v), v->dump());
  }
  *out = v->get<bool>();
  return OkStatus();
}

Status GetString(const json& root, const char* key, std::string_view label, std::string* out) {
  const json* v = Field(root, key);
  if (v == nullptr) return OkStatus();
  if (!v->is_string()) {
    return InvalidArgument("{}: \"{}\" must be a string, found {} ({})", label, key,
                           JsonTypeName(*v), v->dump());
  }
  *out = v->get<std::string>();
  return OkStatus();
}

}  // namespace

StatusOr<HfConfig> ParseHfConfig(std::string_view json_text, std::string_view label) {
  ASSIGN_OR_RETURN(json root,
                   ParseStrictJson(json_text, label, "config", /*allow_duplicate_keys=*/true));
  if (!root.is_object()) {
    return InvalidArgument("{}: config must be a JSON object, found {}", label, JsonTypeName(root));
  }
  HfConfig c;
  RETURN_IF_ERROR(GetString(root, "model_type", label, &c.model_type));
  if (const json* archs = Field(root, "architectures")) {
    if (!archs->is_array()) {
      return InvalidArgument("{}: \"architectures\" must be a list of strings, found {}", label,
                             JsonTypeName(*archs));
    }
    for (const json& a : *archs) {
      if (!a.is_string()) {
        return InvalidArgument("{}: \"architectures\" must be a list of strings, found {}", label,
                               a.dump());
      }
      c.architectures.push_back(a.get<std::string>());
    }
  }
  RETURN_IF_ERROR(GetInt(root, "hidden_size", label, &c.hidden_size));
  RETURN_IF_ERROR(GetInt(root, "num_hidden_layers", label, &c.num_hidden_layers));
  RETURN_IF_ERROR(GetInt(root, "num_attention_heads", label, &c.num_attention_heads));
  c.num_key_value_heads = c.num_attention_heads;
  RETURN_IF_ERROR(GetInt(root, "num_key_value_heads", label, &c.num_key_value_heads));
  RETURN_IF_ERROR(GetInt(root, "intermediate_size", label, &c.intermediate_size));
  RETURN_IF_ERROR(GetInt(root, "vocab_size", label, &c.vocab_size));
  RETURN_IF_ERROR(GetInt(root, "max_position_embeddings", label, &c.max_position_embeddings));
  if (c.num_attention_heads > 0) c.head_dim = c.hidden_size / c.num_attention_heads;
  RETURN_IF_ERROR(GetInt(root, "head_dim", label, &c.head_dim));
  RETURN_IF_ERROR(GetDouble(root, "rope_theta", label, &c.rope_theta));
  // transformers 5 moves rope settings into "rope_parameters".
  if (Field(root, "rope_theta") == nullptr) {
    if (const json* rp = Field(root, "rope_parameters"); rp != nullptr && rp->is_object()) {
      RETURN_IF_ERROR(GetDouble(*rp, "rope_theta", label, &c.rope_theta));
    }
  }
  RETURN_IF_ERROR(GetDouble(root, "rms_norm_eps", label, &c.rms_norm_eps));
  RETURN_IF_ERROR(GetBool(root, "tie_word_embeddings", label, &c.tie_word_embeddings));
  RETURN_IF_ERROR(GetBool(root, "attention_bias", label, &c.attention_bias));
  // Newer transformers write "dtype"; older ones "torch_dtype".
  RETURN_IF_ERROR(GetString(root, "torch_dtype", label, &c.torch_dtype));
  if (c.torch_dtype.empty()) RETURN_IF_ERROR(GetString(root, "dtype", label, &c.torch_dtype));
  if (const auto it = root.find("rope_scaling"); it != root.end()) c.rope_scaling = *it;
  for (const auto& [key, value] :
       {std::pair{"hidden_size", c.hidden_size},
        std::pair{"num_hidden_layers", c.num_hidden_layers},
        std::pair{"num_attention_heads", c.num_attention_heads},
        std::pair{"num_key_value_heads", c.num_key_value_heads},
        std::pair{"intermediate_size", c.intermediate_size}, std::pair{"vocab_size", c.vocab_size},
        std::pair{"head_dim", c.head_dim}}) {
    if (value < 0) return InvalidArgument("{}: \"{}\" is negative ({})", label, key, value);
  }
  c.raw = std::move(root);
  return c;
}

}  // namespace rvec
