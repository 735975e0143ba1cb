// `rvec template`: renders a conversation with a model's chat template exactly as transformers'
// apply_chat_template does, and optionally tokenizes the result.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "base/fs.h"
#include "cli/command.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace rvec::cli {
namespace {

using ordered_json = nlohmann::ordered_json;

struct TemplateOptions {
  std::string model_dir;
  std::string messages_file;
  std::string template_file;
  std::string tools_file;
  std::vector<std::string> vars;
  bool add_generation_prompt = false;
  bool ids = false;
};

StatusOr<ordered_json> ReadJsonFile(const std::string& path, const char* what) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    ASSIGN_OR_RETURN(text, ReadFileToString(path));
  }
  ordered_json j = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("{} {}: not valid JSON", what, path);
  return j;
}

Status Run(const TemplateOptions& opt) {
  if (opt.model_dir.empty() && opt.template_file.empty()) {
    return InvalidArgument("template: give a MODEL_DIR or --template FILE");
  }
  if (opt.ids && opt.model_dir.empty()) {
    return InvalidArgument("template: --ids needs a MODEL_DIR (for its tokenizer.json)");
  }
  OrderedChatTemplateInputs inputs;
  ASSIGN_OR_RETURN(ordered_json messages, ReadJsonFile(opt.messages_file, "--messages"));
  // Either a list of messages, or {"messages": [...], "tools": [...], other variables...}.
  if (messages.is_object()) {
    for (auto it = messages.begin(); it != messages.end(); ++it) {
      if (it.key() == "messages") {
        inputs.messages = it.value();
      } else if (it.key() == "tools") {
        inputs.tools = it.value();
      } else if (it.key() == "add_generation_prompt") {
        if (!it.value().is_boolean()) {
          return InvalidArgument("--messages {}: add_generation_prompt must be true or false",
                                 opt.messages_file);
        }
        inputs.add_generation_prompt = it.value().get<bool>();
      } else {
        inputs.extra[it.key()] = it.value();
      }
    }
    if (!messages.contains("messages")) {
      return InvalidArgument("--messages {}: an object must have a \"messages\" list",
                             opt.messages_file);
    }
  } else {
    inputs.messages = std::move(messages);
  }
  if (!inputs.messages.is_array()) {
    return InvalidArgument(
        "--messages {}: expected a JSON list of {{\"role\", \"content\"}} "
        "messages",
        opt.messages_file);
  }
  if (opt.add_generation_prompt) inputs.add_generation_prompt = true;
  if (!opt.tools_file.empty()) {
    ASSIGN_OR_RETURN(inputs.tools, ReadJsonFile(opt.tools_file, "--tools"));
  }
  for (const std::string& kv : opt.vars) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--var {}: expected NAME=VALUE", kv);
    }
    const std::string value = kv.substr(eq + 1);
    ordered_json parsed = ordered_json::parse(value, nullptr, /*allow_exceptions=*/false);
    inputs.extra[kv.substr(0, eq)] = parsed.is_discarded() ? ordered_json(value) : parsed;
  }

  StatusOr<ChatTemplate> tmpl = Status(StatusCode::kInternal, "unset");
  if (!opt.template_file.empty()) {
    ASSIGN_OR_RETURN(std::string source, ReadFileToString(opt.template_file));
    std::string bos, eos;
    if (!opt.model_dir.empty()) {
      // Special tokens still come from the model directory when there is one.
      auto from_dir = ChatTemplate::FromModelDir(opt.model_dir);
      if (from_dir.ok()) {
        bos = from_dir->bos_token();
        eos = from_dir->eos_token();
      }
    }
    tmpl = ChatTemplate::Parse(source, bos, eos);
    if (!tmpl.ok()) return tmpl.status().WithContext(opt.template_file);
  } else {
    tmpl = ChatTemplate::FromModelDir(opt.model_dir);
    if (!tmpl.ok()) return tmpl.status();
  }
  ASSIGN_OR_RETURN(std::string text, tmpl->Render(inputs));

  std::vector<int32_t> ids;
  if (opt.ids) {
    ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::FromModelDir(opt.model_dir));
    // apply_chat_template(tokenize=True) encodes with add_special_tokens=False: the template
    // already wrote any BOS it wants.
    ids = tokenizer.Encode(text, /*add_special_tokens=*/false);
  }
  if (Globals().json) {
    ordered_json out = ordered_json::object();
    out["text"] = text;
    if (opt.ids) out["ids"] = ids;
    PrintJson(out.dump(-1, ' ', false, ordered_json::error_handler_t::replace));
    return OkStatus();
  }
  if (opt.ids) {
    std::string line;
    for (size_t k = 0; k < ids.size(); ++k) {
      if (k) line.push_back(' ');
      line += std::to_string(ids[k]);
    }
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
    return OkStatus();
  }
  // The exact rendered bytes, with no newline added: pipe it straight into other tools.
  std::fwrite(text.data(), 1, text.size(), stdout);
  return OkStatus();
}

const RegisterCommand kTemplate(
    "template", "Render a conversation with a model's chat template (as transformers does)", 45,
    [](CLI::App& app) -> std::function<Status()> {
      auto opt = std::make_shared<TemplateOptions>();
      app.description(
          "Render messages with the model's chat template (chat_template.jinja, "
          "chat_template.json or tokenizer_config.json), byte-identical with transformers' "
          "tokenizer.apply_chat_template(messages, tokenize=False). The text is printed exactly, "
          "with no newline added. --ids prints the token ids instead (tokenize=True).\n\n"
          "The --messages file holds a JSON list of {\"role\": ..., \"content\": ...} messages, "
          "or an object {\"messages\": [...], \"tools\": [...], ...} whose other keys become "
          "template variables (e.g. \"enable_thinking\": false for Qwen3).\n\n"
          "Examples:\n"
          "  echo '[{\"role\":\"user\",\"content\":\"What is 2+2?\"}]' > m.json\n"
          "  rvec template Qwen2.5-1.5B-Instruct/ --messages m.json --add-generation-prompt\n"
          "  rvec template Qwen3-4B/ --messages m.json --add-generation-prompt "
          "--var enable_thinking=false --ids\n"
          "  rvec template --template my.jinja --messages m.json --json");
      app.add_option("model_dir", opt->model_dir,
                     "Model directory with tokenizer_config.json (and tokenizer.json for --ids)");
      app.add_option("--messages", opt->messages_file,
                     "JSON file with the conversation ('-' for stdin)")
          ->required();
      app.add_flag("--add-generation-prompt", opt->add_generation_prompt,
                   "Append the assistant turn header (add_generation_prompt=True)");
      app.add_flag("--ids", opt->ids, "Print the token ids of the rendered text");
      app.add_option("--template", opt->template_file,
                     "Use this Jinja template file instead of the model's");
      app.add_option("--tools", opt->tools_file, "JSON file with the tool definitions list");
      app.add_option("--var", opt->vars,
                     "Extra template variable NAME=VALUE (VALUE parsed as JSON when it is JSON, "
                     "else a string); repeatable");
      AddCommonFlags(app);
      return [opt]() -> Status { return Run(*opt); };
    });

}  // namespace
}  // namespace rvec::cli
