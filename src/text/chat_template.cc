// Chat templates: finds a model's Jinja chat template and special tokens, and renders conversations
// with the variables transformers' apply_chat_template passes.
#include "text/chat_template.h"

#include <fmt/format.h>

#include <system_error>
#include <utility>
#include <vector>

#include "base/fs.h"
#include "text/jinja.h"
#include "text/tokenizer.h"

namespace rvec {

struct ChatTemplate::Impl {
  // Named templates (tokenizer_config.json's list form); a single template is named "default".
  std::vector<std::pair<std::string, jinja::Template>> templates;
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();
  std::string bos_token;
  std::string eos_token;
  std::string label = "<string>";
};

namespace {

// A special token in tokenizer_config.json: a string, or an AddedToken object {"content": ...}.
std::optional<std::string> TokenString(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object()) {
    auto it = v.find("content");
    if (it != v.end() && it->is_string()) return it->get<std::string>();
  }
  return std::nullopt;
}

StatusOr<nlohmann::ordered_json> ReadJson(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLoss("{}: not valid JSON", path.string());
  if (!j.is_object()) return DataLoss("{}: expected a JSON object at top level", path.string());
  return j;
}

Status AddTemplate(ChatTemplate::Impl* impl, std::string name, std::string_view source,
                   const std::string& label) {
  auto t = jinja::Template::Parse(source);
  if (!t.ok()) {
    if (label == "<string>") return t.status();
    std::string where = label;
    if (name != "default") where += fmt::format(" (template '{}')", name);
    return t.status().WithContext(where);
  }
  impl->templates.emplace_back(std::move(name), std::move(t).value());
  return OkStatus();
}

StatusOr<std::string> RenderWith(const ChatTemplate::Impl& impl,
                                 const nlohmann::ordered_json& messages,
                                 const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra) {
  if (impl.templates.empty()) return FailedPrecondition("chat template: nothing loaded");
  if (!messages.is_array()) {
    return InvalidArgument("chat template: messages must be a JSON array, got {}",
                           messages.type_name());
  }
  if (!extra.is_null() && !extra.is_object()) {
    return InvalidArgument("chat template: extra variables must be a JSON object");
  }
  // transformers picks "tool_use" when tools are given and such a template exists, else
  // "default".
  const jinja::Template* chosen = nullptr;
  const bool has_tools = !tools.is_null();
  for (const auto& [name, t] : impl.templates) {
    if (has_tools && name == "tool_use") chosen = &t;
  }
  if (chosen == nullptr) {
    for (const auto& [name, t] : impl.templates) {
      if (name == "default") chosen = &t;
    }
  }
  if (chosen == nullptr) {
    std::string names;
    for (const auto& [name, t] : impl.templates) names += (names.empty() ? "" : ", ") + name;
    return FailedPrecondition("{}: no 'default' chat template among the named templates ({})",
                              impl.label, names);
  }
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  vars["messages"] = messages;
  vars["tools"] = tools;
  vars["documents"] = nullptr;
  vars["add_generation_prompt"] = add_generation_prompt;
  for (auto it = impl.special_tokens.begin(); it != impl.special_tokens.end(); ++it) {
    vars[it.key()] = it.value();
  }
  if (extra.is_object()) {
    for (auto it = extra.begin(); it != extra.end(); ++it) vars[it.key()] = it.value();
  }
  auto rendered = chosen->Render(vars);
  if (!rendered.ok() && impl.label != "<string>") return rendered.status().WithContext(impl.label);
  return rendered;
}

}  // namespace

ChatTemplate::ChatTemplate() : impl_(std::make_unique<Impl>()) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

StatusOr<ChatTemplate> ChatTemplate::Parse(std::string_view source, std::string bos_token,
                                           std::string eos_token) {
  ChatTemplate ct;
  RETURN_IF_ERROR(AddTemplate(ct.impl_.get(), "default", source, "<string>"));
  // transformers passes only the special tokens a tokenizer has; an empty one stays undefined.
  if (!bos_token.empty()) ct.impl_->special_tokens["bos_token"] = bos_token;
  if (!eos_token.empty()) ct.impl_->special_tokens["eos_token"] = eos_token;
  ct.impl_->bos_token = std::move(bos_token);
  ct.impl_->eos_token = std::move(eos_token);
  return ct;
}

StatusOr<ChatTemplate> ChatTemplate::FromModelDir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFound("{}: not a model directory", dir.string());
  }
  ChatTemplate ct;
  Impl* impl = ct.impl_.get();

  nlohmann::ordered_json config;
  const auto config_path = dir / "tokenizer_config.json";
  const bool has_config = std::filesystem::exists(config_path, ec);
  if (has_config) {
    ASSIGN_OR_RETURN(config, ReadJson(config_path));
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                            "cls_token", "mask_token"}) {
      auto it = config.find(key);
      if (it == config.end() || it->is_null()) continue;
      auto token = TokenString(*it);
      if (!token) {
        return DataLoss("{}: '{}' must be a string or an object with \"content\"",
                        config_path.string(), key);
      }
      impl->special_tokens[key] = *token;
    }
    auto extra = config.find("additional_special_tokens");
    if (extra != config.end() && extra->is_array()) {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto& t : *extra) {
        if (auto s = TokenString(t)) list.push_back(*s);
      }
      impl->special_tokens["additional_special_tokens"] = std::move(list);
    }
    if (impl->special_tokens.contains("bos_token")) {
      impl->bos_token = impl->special_tokens["bos_token"].get<std::string>();
    }
    if (impl->special_tokens.contains("eos_token")) {
      impl->eos_token = impl->special_tokens["eos_token"].get<std::string>();
    }
  }

  const auto jinja_path = dir / "chat_template.jinja";
  const auto json_path = dir / "chat_template.json";
  if (std::filesystem::exists(jinja_path, ec)) {
    ASSIGN_OR_RETURN(std::string source, ReadFileToString(jinja_path));
    impl->label = jinja_path.string();
    RETURN_IF_ERROR(AddTemplate(impl, "default", source, impl->label));
    return ct;
  }
  nlohmann::ordered_json holder;
  std::string holder_path;
  if (std::filesystem::exists(json_path, ec)) {
    ASSIGN_OR_RETURN(holder, ReadJson(json_path));
    holder_path = json_path.string();
  } else if (has_config) {
    holder = config;
    holder_path = config_path.string();
  } else {
    return NotFound(
        "{}: no chat template (looked for chat_template.jinja, chat_template.json "
        "and tokenizer_config.json)",
        dir.string());
  }
  impl->label = holder_path;
  auto it = holder.find("chat_template");
  if (it == holder.end() || it->is_null()) {
    return NotFound(
        "{}: no \"chat_template\" (this model has no chat template; base models "
        "often do not)",
        holder_path);
  }
  if (it->is_string()) {
    RETURN_IF_ERROR(AddTemplate(impl, "default", it->get_ref<const std::string&>(), holder_path));
    return ct;
  }
  if (it->is_array()) {
    for (const auto& entry : *it) {
      auto name = entry.find("name");
      auto tmpl = entry.find("template");
      if (!entry.is_object() || name == entry.end() || !name->is_string() || tmpl == entry.end() ||
          !tmpl->is_string()) {
        return DataLoss("{}: each named chat template must be {{\"name\": ..., \"template\": ...}}",
                        holder_path);
      }
      RETURN_IF_ERROR(AddTemplate(impl, name->get<std::string>(),
                                  tmpl->get_ref<const std::string&>(), holder_path));
    }
    if (impl->templates.empty()) return DataLoss("{}: empty chat_template list", holder_path);
    return ct;
  }
  return DataLoss("{}: \"chat_template\" must be a string or a list of named templates",
                  holder_path);
}

StatusOr<std::string> ChatTemplate::Render(const ChatTemplateInputs& inputs) const {
  // nlohmann::json (sorted keys) converts to ordered_json by value; key order is then sorted.
  return RenderWith(*impl_, nlohmann::ordered_json(inputs.messages),
                    nlohmann::ordered_json(inputs.tools), inputs.add_generation_prompt,
                    nlohmann::ordered_json(inputs.extra));
}

StatusOr<std::string> ChatTemplate::Render(const OrderedChatTemplateInputs& inputs) const {
  return RenderWith(*impl_, inputs.messages, inputs.tools, inputs.add_generation_prompt,
                    inputs.extra);
}

const std::string& ChatTemplate::bos_token() const { return impl_->bos_token; }
const std::string& ChatTemplate::eos_token() const { return impl_->eos_token; }
const std::string& ChatTemplate::source_label() const { return impl_->label; }

std::optional<int32_t> EndOfTurnId(const ChatTemplate& tmpl, const Tokenizer& tok) {
  static constexpr char kMark[] = "rvec-end-of-turn-probe";
  ChatTemplateInputs in;
  in.messages.push_back({{"role", "user"}, {"content", "hi"}});
  in.messages.push_back({{"role", "assistant"}, {"content", kMark}});
  auto text = tmpl.Render(in);
  if (!text.ok()) return std::nullopt;
  const size_t at = text->find(kMark);
  if (at == std::string::npos) return std::nullopt;
  const std::vector<int32_t> after = tok.Encode(text->substr(at + sizeof(kMark) - 1), false);
  if (after.empty() || !tok.IsSpecial(after[0])) return std::nullopt;
  return after[0];
}

}  // namespace rvec
