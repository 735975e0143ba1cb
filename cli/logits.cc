// `rvec logits`: raw next-token logits for given token ids, to compare rvec with other
// implementations (transformers, llama.cpp) number by number.
#include <charconv>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "cli/command.h"
#include "io/checkpoint.h"
#include "model/engine.h"
#include "model/model_config.h"
#include "model/reference_forward.h"
#include "model/sampler.h"
#include "model/weights.h"

namespace rvec::cli {
namespace {

struct LogitsFlags {
  std::string model;
  std::string ids;
  std::string text;
  bool all_positions = false;
  bool reference = false;
  size_t top = 5;
};

StatusOr<std::vector<int32_t>> ParseIds(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    int64_t v = -1;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || end != item.data() + item.size() || v < 0 || v > INT32_MAX) {
      return InvalidArgument("--ids: '{}' is not a token id (expected e.g. --ids 1,2,3)", item);
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return InvalidArgument("--ids is empty");
  return ids;
}

Status RunLogits(const LogitsFlags& f) {
  if (f.ids.empty() == f.text.empty())
    return InvalidArgument("give exactly one of --ids or --text");
  EngineOptions eo;
  eo.threads = Globals().threads;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Load(f.model, eo));
  std::vector<int32_t> ids;
  if (!f.text.empty()) {
    ids = engine->tokenizer().Encode(f.text, /*add_special_tokens=*/true);
  } else {
    ASSIGN_OR_RETURN(ids, ParseIds(f.ids));
  }
  std::vector<std::vector<float>> rows;
  if (f.reference) {
    // The scalar f64 reference (slow; meant for small models).
    ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(f.model));
    if (!ckpt.config()) return NotFound("{}: no config.json", f.model);
    ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromHf(*ckpt.config(), f.model));
    ASSIGN_OR_RETURN(ModelWeights weights, ModelWeights::Load(ckpt, config));
    for (int32_t id : ids) {
      if (id < 0 || size_t(id) >= config.vocab) {
        return InvalidArgument("token id {} is outside the vocabulary (0..{})", id,
                               config.vocab - 1);
      }
    }
    const auto ref = ReferenceForward(config, weights, ids);
    for (size_t p = f.all_positions ? 0 : ids.size() - 1; p < ids.size(); ++p) {
      rows.emplace_back(ref[p].begin(), ref[p].end());
    }
  } else {
    ASSIGN_OR_RETURN(rows, engine->Logits(ids, f.all_positions));
  }
  const size_t first = f.all_positions ? 0 : ids.size() - 1;
  if (Globals().json) {
    // Floats in shortest round-trip form, so the numbers compare exactly.
    std::string out = "{\"ids\": [";
    for (size_t i = 0; i < ids.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", ids[i]);
    out += "], \"positions\": [";
    for (size_t r = 0; r < rows.size(); ++r) out += fmt::format("{}{}", r ? ", " : "", first + r);
    out += fmt::format("], \"reference\": {}, \"logits\": [", f.reference ? "true" : "false");
    for (size_t r = 0; r < rows.size(); ++r) {
      out += r ? ",\n[" : "\n[";
      for (size_t v = 0; v < rows[r].size(); ++v)
        out += fmt::format("{}{}", v ? "," : "", rows[r][v]);
      out += "]";
    }
    out += "]}";
    PrintJson(out);
    return OkStatus();
  }
  const Tokenizer& tok = engine->tokenizer();
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    std::vector<int32_t> order(row.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    const size_t k = std::min(f.top, row.size());
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    std::printf("position %zu (token %d %s):\n", first + r, ids[first + r],
                nlohmann::json(tok.IdToToken(ids[first + r]))
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    .c_str());
    for (size_t i = 0; i < k; ++i) {
      std::printf("  %8d  %12.6f  %s\n", order[i], row[order[i]],
                  nlohmann::json(tok.IdToToken(order[i]))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                      .c_str());
    }
    std::printf("  first values:");
    for (size_t v = 0; v < std::min<size_t>(6, row.size()); ++v) std::printf(" %.6f", row[v]);
    std::printf("\n");
  }
  return OkStatus();
}

const RegisterCommand kLogits(
    "logits", "Print raw logits for token ids (for checking against other implementations)", 51,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<LogitsFlags>();
      app.description(
          "Run token ids through the engine and print the logits of the last position (or every "
          "position). --json prints every vocabulary logit in shortest round-trip form; "
          "--reference uses the scalar f64 reference forward pass instead of the fast path.\n\n"
          "Examples:\n"
          "  rvec logits Qwen2.5-0.5B/ --ids 9707,11,1879\n"
          "  rvec logits /tmp/tiny --text \"Hello\" --all-positions --json > rvec.json\n"
          "  rvec logits /tmp/tiny --ids 1,2,3 --reference --json");
      app.add_option("model", f->model, "Model directory")->required();
      auto* ids = app.add_option("--ids", f->ids, "Comma-separated token ids, e.g. 1,2,3");
      auto* text = app.add_option("--text", f->text, "Text to tokenize instead of --ids");
      ids->excludes(text);
      app.add_flag("--all-positions", f->all_positions, "Logits of every position");
      app.add_flag("--reference", f->reference, "Use the scalar f64 reference (slow)");
      app.add_option("--top", f->top, "Most likely tokens shown per position (default 5)");
      AddCommonFlags(app);
      return [f]() { return RunLogits(*f); };
    });

}  // namespace
}  // namespace rvec::cli
