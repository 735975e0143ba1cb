// `rvec tokenize`: encodes text to token ids (or decodes ids to text) with a model's
// tokenizer.json, byte-exact with Hugging Face; single inputs or JSON-lines files for scripts.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/fs.h"
#include "cli/command.h"
#include "text/tokenizer.h"

namespace rvec::cli {
namespace {

using json = nlohmann::json;

struct TokenizeFlags {
  std::string model;
  std::string text;
  std::string file;
  std::string jsonl;
  bool text_given = false;
  bool decode = false;
  bool tokens = false;
  bool add_special = false;
  bool skip_special = false;
};

StatusOr<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    return all;
  }
  return ReadFileToString(path);
}

void Write(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

// Ids as "1,2,3", "1 2 3" or a JSON array "[1, 2, 3]".
StatusOr<std::vector<int32_t>> ParseIds(const std::string& text, const std::string& where) {
  std::string s = text;
  size_t first = s.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && s[first] == '[') {
    const json j = json::parse(s, nullptr, false);
    if (j.is_discarded() || !j.is_array()) {
      return InvalidArgument("{}: not a JSON array of token ids", where);
    }
    std::vector<int32_t> ids;
    for (const json& v : j) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
        return InvalidArgument("{}: '{}' is not a token id", where, v.dump());
      }
      ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    return ids;
  }
  for (char& c : s) {
    if (c == ',') c = ' ';
  }
  std::istringstream in(s);
  std::vector<int32_t> ids;
  std::string item;
  while (in >> item) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > INT32_MAX) {
      return InvalidArgument("{}: '{}' is not a token id (expected \"1,2,3\" or [1,2,3])", where,
                             item);
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

std::string IdsCsv(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(',');
    out += std::to_string(ids[i]);
  }
  return out;
}

Status RunJsonl(const Tokenizer& tok, const TokenizeFlags& f) {
  ASSIGN_OR_RETURN(std::string all, ReadInput(f.jsonl));
  const std::string label = f.jsonl == "-" ? "<stdin>" : f.jsonl;
  std::istringstream in(all);
  std::string line;
  std::string out;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = fmt::format("{} line {}", label, line_no);
    if (f.decode) {
      ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(line, where));
      out += json(tok.Decode(ids, f.skip_special))
                 .dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_string()) {
        return InvalidArgument("{}: expected a JSON string per line", where);
      }
      out += json(tok.Encode(j.get_ref<const std::string&>(), f.add_special)).dump();
    }
    out.push_back('\n');
    if (out.size() > (1 << 20)) {
      Write(out);
      out.clear();
    }
  }
  Write(out);
  return OkStatus();
}

Status RunTokenize(const TokenizeFlags& f) {
  const int sources = (f.text_given ? 1 : 0) + (f.file.empty() ? 0 : 1) + (f.jsonl.empty() ? 0 : 1);
  if (sources > 1) return InvalidArgument("give only one of TEXT, --file and --jsonl");
  ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromModelDir(f.model));
  if (!f.jsonl.empty()) return RunJsonl(tok, f);
  std::string input;
  if (f.text_given) {
    input = f.text;
  } else {
    ASSIGN_OR_RETURN(input, ReadInput(f.file.empty() ? "-" : f.file));
  }
  const bool as_json = Globals().json;
  if (f.decode) {
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(input, f.file.empty() ? "ids" : f.file));
    const std::string text = tok.Decode(ids, f.skip_special);
    if (as_json) {
      json j = {{"text", text}, {"ids", ids}};
      if (f.tokens) {
        json tokens = json::array();
        for (int32_t id : ids) tokens.push_back(tok.IdToToken(id));
        j["tokens"] = tokens;
      }
      PrintJson(j.dump(-1, ' ', false, json::error_handler_t::replace));
    } else {
      Write(text);
      Write("\n");
    }
    return OkStatus();
  }
  const std::vector<int32_t> ids = tok.Encode(input, f.add_special);
  if (as_json) {
    json j = {{"ids", ids}, {"count", ids.size()}};
    if (f.tokens) {
      json tokens = json::array();
      for (int32_t id : ids) tokens.push_back(tok.IdToToken(id));
      j["tokens"] = tokens;
    }
    PrintJson(j.dump(-1, ' ', false, json::error_handler_t::replace));
  } else if (f.tokens) {
    std::string out;
    for (int32_t id : ids) out += fmt::format("{}\t{}\n", id, tok.IdToToken(id));
    Write(out);
  } else {
    Write(IdsCsv(ids) + "\n");
  }
  return OkStatus();
}

const RegisterCommand kTokenize(
    "tokenize", "Encode text to token ids or decode ids to text (byte-exact with transformers)", 44,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<TokenizeFlags>();
      app.description(
          "Encode text with a model's tokenizer.json as transformers' tokenizer.encode(text, "
          "add_special_tokens=False) does (added tokens such as <|im_start|> in the text are "
          "recognised), or decode ids back to text with --decode. Input is TEXT, --file F, or "
          "standard input; --jsonl F processes one JSON string (or, with --decode, one JSON "
          "array of ids) per line and prints one JSON array of ids (or JSON string) per line.\n\n"
          "Examples:\n"
          "  rvec tokenize Qwen2.5-1.5B-Instruct 'Hello world'          # 9707,1879\n"
          "  rvec tokenize Qwen2.5-1.5B-Instruct 'Hello world' --tokens  # ids and tokens\n"
          "  rvec tokenize Qwen2.5-1.5B-Instruct --decode 9707,1879      # Hello world\n"
          "  rvec tokenize tokenizer.json --jsonl prompts.jsonl > ids.jsonl");
      app.add_option("model", f->model, "Model directory (with tokenizer.json) or tokenizer.json")
          ->required();
      app.add_option("text", f->text, "Text to encode (or ids to decode: \"1,2,3\" or [1,2,3])")
          ->each([f](const std::string&) { f->text_given = true; });
      app.add_option("--file", f->file, "Read the text (or ids) from a file ('-' for stdin)");
      app.add_option("--jsonl", f->jsonl,
                     "JSON-lines file ('-' for stdin): one string per line in, one id array out");
      app.add_flag("--decode", f->decode, "Turn ids into text instead");
      app.add_flag("--tokens", f->tokens, "Also show each id's token string");
      app.add_flag("--add-special-tokens", f->add_special,
                   "Add the post-processor's special tokens (e.g. Llama-3's BOS)");
      app.add_flag("--skip-special-tokens", f->skip_special,
                   "With --decode: drop special tokens (<|im_end|>, ...)");
      AddCommonFlags(app);
      return [f] { return RunTokenize(*f); };
    });

}  // namespace
}  // namespace rvec::cli
