// The Hugging Face -> GGUF mapping: llama.cpp's keys and tensor names per architecture, Llama's
// q/k row order, and the byte-level BPE tokenizer as llama.cpp's converter writes it.
#include "model/gguf_export.h"

#include <cmath>
#include <map>
#include <memory>
#include <optional>

#include "base/dtype.h"
#include "base/fs.h"
#include "io/checkpoint.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// llama.cpp's token types (llama_token_type).
constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenControl = 3;
constexpr int32_t kTokenUserDefined = 4;
constexpr int32_t kTokenUnused = 5;

// general.file_type (llama_ftype) for the matrix dtype.
uint32_t FileType(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
      return 0;
    case GgmlType::kF16:
      return 1;
    case GgmlType::kBF16:
      return 32;
  }
  return 0;
}

// The pre-tokenizer regexes rvec recognises, as tokenizer.json spells them.
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCl100kRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The Split regexes of a pre_tokenizer (a Sequence or a lone Split), and whether a ByteLevel
// step splits with GPT-2's own regex.
void CollectSplits(const json& pre, std::vector<std::string>* regexes, bool* gpt2_regex) {
  if (!pre.is_object()) return;
  const std::string type = pre.value("type", "");
  if (type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array()) {
    for (const json& p : pre["pretokenizers"]) CollectSplits(p, regexes, gpt2_regex);
  } else if (type == "Split" && pre.contains("pattern") && pre["pattern"].is_object()) {
    const json& pat = pre["pattern"];
    if (pat.contains("Regex") && pat["Regex"].is_string()) {
      regexes->push_back(pat["Regex"].get<std::string>());
    } else if (pat.contains("String") && pat["String"].is_string()) {
      regexes->push_back("String:" + pat["String"].get<std::string>());
    }
  } else if (type == "ByteLevel" && pre.value("use_regex", true)) {
    *gpt2_regex = true;
  }
}

// A token's text in tokenizer_config.json: a string or an AddedToken object.
std::optional<std::string> TokenText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return std::nullopt;
}

StatusOr<json> ReadJsonFile(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadDataFile(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument("{}: not a JSON object", path.string());
  }
  return j;
}

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::map<std::string, int32_t, std::less<>> ids;
  size_t real_size = 0;  // tokens the tokenizer defines (the rest are [PADi] fill)
};

// Tokens in id order with their llama.cpp types, padded to `vocab` as the converter pads.
StatusOr<Vocab> BuildVocab(const json& tok, size_t vocab, const std::string& label) {
  const json& model = tok["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return InvalidArgument("{}: model.vocab is not an object", label);
  }
  Vocab v;
  v.tokens.resize(vocab);
  v.types.assign(vocab, kTokenUnused);
  std::vector<bool> seen(vocab, false);
  auto place = [&](const std::string& text, const json& id_json, int32_t type) -> Status {
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0) {
      return InvalidArgument("{}: token {} has no valid id", label, json(text).dump());
    }
    const uint64_t id = id_json.get<uint64_t>();
    if (id >= vocab) {
      return InvalidArgument(
          "{}: token {} has id {} but the model's embedding has only {} rows (config.json "
          "vocab_size)",
          label, json(text).dump(), id, vocab);
    }
    v.tokens[id] = text;
    v.types[id] = type;
    v.ids[text] = static_cast<int32_t>(id);
    if (!seen[id]) ++v.real_size;
    seen[id] = true;
    return OkStatus();
  };
  for (const auto& [text, id] : model["vocab"].items()) {
    RETURN_IF_ERROR(place(text, id, kTokenNormal));
  }
  if (tok.contains("added_tokens") && tok["added_tokens"].is_array()) {
    for (const json& a : tok["added_tokens"]) {
      const std::string text = a.value("content", "");
      // As the converter: special tokens, and ones that look like <|...|>, are control tokens.
      const bool looks_special = text.size() >= 4 && text.rfind("<|", 0) == 0 &&
                                 text.compare(text.size() - 2, 2, "|>") == 0;
      const bool special = a.value("special", false) || looks_special;
      RETURN_IF_ERROR(
          place(text, a.value("id", json()), special ? kTokenControl : kTokenUserDefined));
    }
  }
  for (size_t id = 0; id < vocab; ++id) {
    if (!seen[id]) v.tokens[id] = "[PAD" + std::to_string(id) + "]";
  }
  return v;
}

StatusOr<std::vector<std::string>> Merges(const json& model, const std::string& label) {
  std::vector<std::string> merges;
  if (!model.contains("merges")) return merges;
  if (!model["merges"].is_array())
    return InvalidArgument("{}: model.merges is not an array", label);
  for (const json& m : model["merges"]) {
    if (m.is_string()) {
      merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      // Newer tokenizers write each merge as a pair; GGUF keeps "left right".
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      return InvalidArgument("{}: merge #{} is neither \"a b\" nor [\"a\", \"b\"]", label,
                             merges.size());
    }
  }
  return merges;
}

// Whether the tokenizer adds a BOS token: tokenizer_config's add_bos_token when given, else
// whether the post-processor's single-sequence template starts with a special token.
bool AddsBos(const json& tok, const json& tok_config) {
  if (tok_config.contains("add_bos_token") && tok_config["add_bos_token"].is_boolean()) {
    return tok_config["add_bos_token"].get<bool>();
  }
  const json* post = tok.contains("post_processor") ? &tok["post_processor"] : nullptr;
  if (post != nullptr && post->is_object() && post->value("type", "") == "Sequence" &&
      post->contains("processors") && (*post)["processors"].is_array()) {
    for (const json& p : (*post)["processors"]) {
      if (p.is_object() && p.value("type", "") == "TemplateProcessing") post = &p;
    }
  }
  if (post == nullptr || !post->is_object() || post->value("type", "") != "TemplateProcessing") {
    return false;
  }
  const json& single = post->value("single", json::array());
  return single.is_array() && !single.empty() && single[0].is_object() &&
         single[0].contains("SpecialToken");
}

// bos/eos/pad ids: tokenizer_config.json's tokens first, then config.json's *_token_id.
void AddSpecialIds(const Vocab& v, const json& tok_config, const HfConfig& config,
                   std::vector<GgufKv>* kvs) {
  for (const char* kind : {"bos", "eos", "pad"}) {
    std::optional<int64_t> id;
    const std::string key = std::string(kind) + "_token";
    if (tok_config.contains(key)) {
      if (auto text = TokenText(tok_config[key])) {
        if (auto it = v.ids.find(*text); it != v.ids.end()) id = it->second;
      }
    }
    const json& raw = config.raw;
    const std::string id_key = key + "_id";
    if (!id && raw.contains(id_key)) {
      const json& j = raw[id_key];
      if (j.is_number_integer()) id = j.get<int64_t>();
      if (j.is_array() && !j.empty() && j[0].is_number_integer()) id = j[0].get<int64_t>();
    }
    if (!id || *id < 0 || static_cast<size_t>(*id) >= v.tokens.size()) continue;
    const std::string gguf_key = std::string("tokenizer.ggml.") +
                                 (std::string_view(kind) == "pad" ? "padding" : kind) + "_token_id";
    kvs->emplace_back(gguf_key, GgufValue::U32(static_cast<uint32_t>(*id)));
  }
}

// tokenizer_config.json's chat_template (a string, or a list holding a "default" entry), else
// chat_template.jinja.
StatusOr<std::optional<std::string>> ChatTemplate(const fs::path& dir, const json& tok_config) {
  if (tok_config.contains("chat_template")) {
    const json& t = tok_config["chat_template"];
    if (t.is_string()) return std::optional<std::string>(t.get<std::string>());
    if (t.is_array()) {
      for (const json& e : t) {
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
            e["template"].is_string()) {
          return std::optional<std::string>(e["template"].get<std::string>());
        }
      }
    }
  }
  if (DataFileExists(dir / "chat_template.jinja")) {
    ASSIGN_OR_RETURN(std::string text, ReadDataFile(dir / "chat_template.jinja"));
    return std::optional<std::string>(std::move(text));
  }
  return std::optional<std::string>();
}

void AddArchKvs(const ModelConfig& c, const HfConfig& hf, const std::string& arch,
                std::vector<GgufKv>* kvs) {
  auto u32 = [&](const std::string& key, size_t v) {
    kvs->emplace_back(arch + "." + key, GgufValue::U32(static_cast<uint32_t>(v)));
  };
  u32("vocab_size", c.vocab);
  u32("context_length", c.max_positions);
  u32("embedding_length", c.hidden);
  u32("block_count", c.layers);
  u32("feed_forward_length", c.intermediate);
  u32("attention.head_count", c.heads);
  u32("attention.head_count_kv", c.kv_heads);
  u32("attention.key_length", c.head_dim);
  u32("attention.value_length", c.head_dim);
  u32("rope.dimension_count", c.head_dim);
  kvs->emplace_back(arch + ".rope.freq_base", GgufValue::F32(static_cast<float>(hf.rope_theta)));
  kvs->emplace_back(arch + ".attention.layer_norm_rms_epsilon", GgufValue::F32(c.rms_eps));
}

// llama3 rope scaling as llama.cpp applies it: per-frequency divisors in rope_freqs.weight.
std::optional<std::vector<float>> RopeFreqFactors(const ModelConfig& c, const HfConfig& hf) {
  if (!hf.rope_scaling.is_object()) return std::nullopt;
  std::vector<float> factors(c.inv_freq.size());
  bool any = false;
  for (size_t i = 0; i < factors.size(); ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    const float base = 1.0f / static_cast<float>(std::pow(hf.rope_theta, double(exponent)));
    factors[i] = base / c.inv_freq[i];
    any = any || factors[i] != 1.0f;
  }
  if (!any) return std::nullopt;
  return factors;
}

struct Plan {
  std::vector<GgufTensorSource> tensors;
  uint64_t parameters = 0;
};

// The tensor list: each checkpoint tensor under its GGUF name, in checkpoint order, converting
// from its stored dtype (and, for Llama's q/k, taking rows in llama.cpp's order).
StatusOr<Plan> PlanTensors(std::shared_ptr<const Checkpoint> ckpt, const ModelConfig& c,
                           const HfConfig& hf, GgmlType dtype) {
  Plan plan;
  for (const std::string& name : ckpt->TensorNames()) {
    ASSIGN_OR_RETURN(std::string gguf_name, GgufTensorName(c, name));
    if (gguf_name.empty()) continue;
    if (c.tie_embeddings && gguf_name == "output.weight") continue;  // llama.cpp reuses token_embd
    ASSIGN_OR_RETURN(TensorView view, ckpt->View(name));
    if (!IsFloat(view.dtype()) || view.shape().empty() || view.shape().size() > 2) {
      return InvalidArgument(
          "{}: tensor {} is {} with {} dimensions; GGUF export takes 1-D and "
          "2-D float tensors",
          ckpt->path().string(), name, DTypeName(view.dtype()), view.shape().size());
    }
    GgufTensorSource t;
    t.name = gguf_name;
    for (auto it = view.shape().rbegin(); it != view.shape().rend(); ++it) t.dims.push_back(*it);
    t.type = t.dims.size() == 1 ? GgmlType::kF32 : dtype;
    const uint64_t cols = t.dims.size() == 2 ? t.dims[0] : 1;
    const uint64_t n = view.NumElements();
    const bool permute =
        c.arch == ModelArch::kLlama && (name.find("self_attn.q_proj.") != std::string::npos ||
                                        name.find("self_attn.k_proj.") != std::string::npos);
    const uint64_t head_dim = c.head_dim;
    t.fill = [ckpt, name, view, cols, n, permute, head_dim](uint64_t first, size_t count,
                                                            float* out) -> Status {
      for (size_t k = 0; k < count; ++k) {
        uint64_t e = first + k;
        if (permute) {
          const uint64_t row = e / cols;
          const uint64_t head = row / head_dim;
          e = (head * head_dim + LlamaRopeSourceRow(row % head_dim, head_dim)) * cols + e % cols;
        }
        out[k] = LoadAsF32(view.dtype(), view.data, e);
      }
      // Drop the consumed source pages chunk by chunk (q/k rows are read out of order, so those
      // small tensors go at their end), keeping resident memory bounded by the chunk size.
      if (first + count == n) {
        ckpt->Release(name);
      } else if (!permute) {
        const SafetensorsFile& shard = ckpt->shard(ckpt->ShardOf(name));
        const uint64_t esize = DTypeSize(view.dtype());
        shard.file().Release(shard.data_offset() + view.info->begin + first * esize, count * esize);
      }
      return OkStatus();
    };
    plan.parameters += n;
    plan.tensors.push_back(std::move(t));
  }
  if (auto factors = RopeFreqFactors(c, hf)) {
    if (c.arch != ModelArch::kLlama) {
      return Unimplemented(
          "{}: rope_scaling on {} has no llama.cpp equivalent (only Llama's "
          "llama3 scaling is exported)",
          ckpt->path().string(), c.architecture);
    }
    GgufTensorSource t;
    t.name = "rope_freqs.weight";
    t.dims = {factors->size()};
    t.fill = [f = *factors](uint64_t first, size_t count, float* out) -> Status {
      for (size_t k = 0; k < count; ++k) out[k] = f[first + k];
      return OkStatus();
    };
    plan.tensors.push_back(std::move(t));
  }
  return plan;
}

}  // namespace

nlohmann::json GgufExportReport::ToJson() const {
  return {{"output", output},         {"architecture", architecture}, {"dtype", dtype},
          {"pre_tokenizer", pre},     {"tensors", tensors},           {"vocab", vocab},
          {"parameters", parameters}, {"file_bytes", file_bytes},     {"warnings", warnings}};
}

StatusOr<std::string> GgufArchName(ModelArch arch) {
  switch (arch) {
    case ModelArch::kQwen2:
      return std::string("qwen2");
    case ModelArch::kLlama:
      return std::string("llama");
    case ModelArch::kQwen3:
      return std::string("qwen3");
    case ModelArch::kOlmo2:
      return std::string("olmo2");
  }
  return Unimplemented("architecture has no GGUF name");
}

uint64_t LlamaRopeSourceRow(uint64_t row, uint64_t head_dim) {
  // Output row (i, j) of a head, i < head_dim / 2 and j in {0, 1}, holds source row j * half + i.
  const uint64_t half = head_dim / 2;
  return (row % 2) * half + row / 2;
}

StatusOr<std::string> GgufTensorName(const ModelConfig& c, std::string_view hf_name) {
  if (hf_name == "model.embed_tokens.weight") return std::string("token_embd.weight");
  if (hf_name == "model.norm.weight") return std::string("output_norm.weight");
  if (hf_name == "lm_head.weight") return std::string("output.weight");
  constexpr std::string_view kLayers = "model.layers.";
  auto unsupported = [&](std::string_view why) -> Status {
    return Unimplemented("tensor {}: {}", hf_name, why);
  };
  if (hf_name.substr(0, kLayers.size()) != kLayers) {
    return unsupported("not a tensor of the architectures llama.cpp loads");
  }
  const std::string_view rest = hf_name.substr(kLayers.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return unsupported("no layer number");
  const std::string layer(rest.substr(0, dot));
  const std::string_view leaf = rest.substr(dot + 1);
  if (leaf.ends_with("rotary_emb.inv_freq")) return std::string();
  const bool olmo2 = c.arch == ModelArch::kOlmo2;
  static const std::map<std::string_view, std::string_view, std::less<>> kLeaves = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.o_proj.bias", "attn_output.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"mlp.gate_proj.bias", "ffn_gate.bias"},
      {"mlp.up_proj.bias", "ffn_up.bias"},
      {"mlp.down_proj.bias", "ffn_down.bias"},
  };
  std::string_view gguf_leaf;
  if (leaf == "post_attention_layernorm.weight") {
    // OLMo 2 norms the attention output; the others norm the MLP input under this name.
    gguf_leaf = olmo2 ? "post_attention_norm.weight" : "ffn_norm.weight";
  } else if (auto it = kLeaves.find(leaf); it != kLeaves.end()) {
    gguf_leaf = it->second;
  } else {
    return unsupported("not a tensor of the architectures llama.cpp loads");
  }
  // Biases llama.cpp's graphs never read would make it refuse the file (unused tensors).
  const bool is_bias = gguf_leaf.ends_with(".bias");
  const bool o_or_mlp = gguf_leaf.starts_with("attn_output") || gguf_leaf.starts_with("ffn_");
  if (is_bias && (olmo2 || (o_or_mlp && c.arch != ModelArch::kLlama))) {
    return unsupported(
        fmt::format("llama.cpp's {} graph has no such bias", GgufArchName(c.arch).value()));
  }
  return "blk." + layer + "." + std::string(gguf_leaf);
}

StatusOr<std::string> DetectGgufPreTokenizer(const json& tok, std::string_view label) {
  std::vector<std::string> regexes;
  bool gpt2_regex = false;
  if (tok.contains("pre_tokenizer")) CollectSplits(tok["pre_tokenizer"], &regexes, &gpt2_regex);
  const json& model = tok.contains("model") ? tok["model"] : json::object();
  if (regexes.size() == 1 && regexes[0] == kQwen2Regex && !gpt2_regex) return std::string("qwen2");
  if (regexes.size() == 1 && regexes[0] == kCl100kRegex && !gpt2_regex) {
    // Llama 3 sets ignore_merges (a whole-word vocabulary hit wins), as llama.cpp's "llama-bpe"
    // does; the same pattern without it is tiktoken's cl100k (OLMo 2), llama.cpp's "dbrx".
    return std::string(model.value("ignore_merges", false) ? "llama-bpe" : "dbrx");
  }
  if (regexes.empty() && gpt2_regex) return std::string("gpt-2");
  std::string found = "no Split regex";
  if (!regexes.empty()) found = "Split regex " + json(regexes[0]).dump();
  if (regexes.size() > 1) found = std::to_string(regexes.size()) + " Split regexes";
  return Unimplemented(
      "{}: the pre-tokenizer ({}) is not one rvec maps to a llama.cpp pre-tokenizer type (qwen2, "
      "llama-bpe, dbrx, gpt-2); pass --pre NAME with llama.cpp's name for it",
      label, found);
}

StatusOr<std::vector<GgufKv>> GgufTokenizerKvs(const fs::path& dir, const HfConfig& config,
                                               size_t vocab, std::string_view pre) {
  const fs::path tok_path = dir / "tokenizer.json";
  if (!DataFileExists(tok_path)) return NotFound("{}: no tokenizer.json", dir.string());
  ASSIGN_OR_RETURN(json tok, ReadJsonFile(tok_path));
  json tok_config = json::object();
  if (DataFileExists(dir / "tokenizer_config.json")) {
    ASSIGN_OR_RETURN(tok_config, ReadJsonFile(dir / "tokenizer_config.json"));
  }
  const std::string label = tok_path.string();
  if (!tok.contains("model") || !tok["model"].is_object() ||
      tok["model"].value("type", "") != "BPE") {
    return Unimplemented("{}: only byte-level BPE tokenizers (model.type BPE) are exported", label);
  }
  std::string pre_name(pre);
  if (pre_name.empty()) {
    ASSIGN_OR_RETURN(pre_name, DetectGgufPreTokenizer(tok, label));
  }
  ASSIGN_OR_RETURN(Vocab v, BuildVocab(tok, vocab, label));
  ASSIGN_OR_RETURN(std::vector<std::string> merges, Merges(tok["model"], label));

  std::vector<GgufKv> kvs;
  kvs.emplace_back("tokenizer.ggml.model", GgufValue::String("gpt2"));
  kvs.emplace_back("tokenizer.ggml.pre", GgufValue::String(pre_name));
  kvs.emplace_back("tokenizer.ggml.tokens", GgufValue::StringArray(v.tokens));
  kvs.emplace_back("tokenizer.ggml.token_type", GgufValue::I32Array(v.types));
  kvs.emplace_back("tokenizer.ggml.merges", GgufValue::StringArray(merges));
  AddSpecialIds(v, tok_config, config, &kvs);
  kvs.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::Bool(AddsBos(tok, tok_config)));
  kvs.emplace_back("tokenizer.ggml.add_eos_token",
                   GgufValue::Bool(tok_config.value("add_eos_token", false)));
  ASSIGN_OR_RETURN(std::optional<std::string> chat_template, ChatTemplate(dir, tok_config));
  if (chat_template) {
    kvs.emplace_back("tokenizer.chat_template", GgufValue::String(std::move(*chat_template)));
  }
  return kvs;
}

StatusOr<GgufExportReport> ExportGguf(const fs::path& model, const fs::path& output,
                                      const GgufExportOptions& options, Progress* progress) {
  ASSIGN_OR_RETURN(Checkpoint opened, Checkpoint::Open(model));
  auto ckpt = std::make_shared<const Checkpoint>(std::move(opened));
  if (!ckpt->config()) return NotFound("{}: no config.json", model.string());
  const HfConfig& hf = *ckpt->config();
  ASSIGN_OR_RETURN(ModelConfig config,
                   ModelConfig::FromHf(hf, (ckpt->dir() / "config.json").string()));
  ASSIGN_OR_RETURN(std::string arch, GgufArchName(config.arch));

  std::vector<GgufKv> kvs;
  kvs.emplace_back("general.architecture", GgufValue::String(arch));
  std::string name = fs::absolute(ckpt->dir()).lexically_normal().filename().string();
  if (name.empty()) {
    name = fs::absolute(ckpt->dir()).lexically_normal().parent_path().filename().string();
  }
  kvs.emplace_back("general.name", GgufValue::String(name));
  kvs.emplace_back("general.file_type", GgufValue::U32(FileType(options.dtype)));
  AddArchKvs(config, hf, arch, &kvs);
  ASSIGN_OR_RETURN(std::vector<GgufKv> tok_kvs,
                   GgufTokenizerKvs(ckpt->dir(), hf, config.vocab, options.pre));
  for (GgufKv& kv : tok_kvs) kvs.push_back(std::move(kv));
  ASSIGN_OR_RETURN(Plan plan, PlanTensors(ckpt, config, hf, options.dtype));

  ASSIGN_OR_RETURN(PendingOutput pending, PendingOutput::Create(output, options.force, false));
  ASSIGN_OR_RETURN(uint64_t bytes, WriteGguf(pending.temp_path(), kvs, plan.tensors, progress));
  RETURN_IF_ERROR(pending.Commit());

  GgufExportReport report;
  report.output = output.string();
  report.architecture = arch;
  report.dtype = std::string(GgmlTypeName(options.dtype));
  for (const auto& [key, value] : kvs) {
    if (key == "tokenizer.ggml.pre") report.pre = value.s;
    if (key == "tokenizer.ggml.tokens") report.vocab = value.array.size();
  }
  report.tensors = plan.tensors.size();
  report.parameters = plan.parameters;
  report.file_bytes = bytes;
  bool has_template = false;
  for (const auto& kv : kvs) has_template = has_template || kv.first == "tokenizer.chat_template";
  if (!has_template) {
    report.warnings.push_back(fmt::format(
        "{}: no chat template (tokenizer_config.json or chat_template.jinja); chat front ends "
        "such as ollama will need one",
        model.string()));
  }
  return report;
}

}  // namespace rvec
