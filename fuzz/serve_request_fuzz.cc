// Fuzz target for `rvec serve`'s request parser: arbitrary bodies are parsed as completions and
// chat requests without a crash, a leak or an exception; the verdict is deterministic, every
// rejection is an OpenAI-shaped 4xx naming a reason, and every accepted request holds only
// values the engine can take.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "serve/api.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "serve_request_fuzz: %s\n", what);
    std::abort();
  }
}

rvec::serve::RequestLimits Limits() {
  rvec::serve::RequestLimits l;
  l.model_name = "tiny";
  l.vocab_size = 300;
  l.max_positions = 128;
  l.max_n = 4;
  return l;
}

void CheckRejection(const rvec::serve::ApiError& e) {
  Check(e.status == 400 || e.status == 404, "rejection status is not 400/404");
  Check(!e.message.empty(), "rejection without a message");
  const std::string dumped =
      e.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Check(dumped.find("\"error\"") != std::string::npos, "error JSON has no \"error\" key");
}

void CheckSampling(const rvec::serve::SamplingFields& s, const rvec::serve::RequestLimits& l) {
  Check(s.n >= 1 && s.n <= l.max_n, "accepted n out of range");
  Check(!s.max_tokens || *s.max_tokens >= 0, "accepted negative max_tokens");
  Check(!s.temperature || *s.temperature >= 0, "accepted negative temperature");
  Check(!s.top_p || (*s.top_p > 0 && *s.top_p <= 1), "accepted top_p outside (0, 1]");
  for (const std::string& stop : s.stop) Check(!stop.empty(), "accepted an empty stop string");
  for (int32_t id : s.stop_token_ids) {
    Check(id >= 0 && static_cast<size_t>(id) < l.vocab_size, "accepted a bad stop id");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const rvec::serve::RequestLimits limits = Limits();
  {
    rvec::serve::CompletionRequest a, b;
    rvec::serve::ApiError ea, eb;
    const bool ok = rvec::serve::ParseCompletionRequest(body, limits, &a, &ea);
    Check(ok == rvec::serve::ParseCompletionRequest(body, limits, &b, &eb),
          "completions verdict is not deterministic");
    if (!ok) {
      CheckRejection(ea);
      Check(ea.message == eb.message && ea.param == eb.param, "rejection differs between runs");
    } else {
      Check(!a.prompts.empty(), "accepted a request without prompts");
      for (const auto& p : a.prompts) {
        Check(p.is_text || !p.ids.empty(), "accepted an empty id prompt");
        for (int32_t id : p.ids) {
          Check(id >= 0 && static_cast<size_t>(id) < limits.vocab_size, "accepted a bad id");
        }
      }
      Check(a.logprobs >= -1 && a.logprobs <= limits.max_logprobs, "accepted bad logprobs");
      Check(a.echo || !a.sampling.max_tokens || *a.sampling.max_tokens > 0,
            "accepted max_tokens 0 without echo");
      CheckSampling(a.sampling, limits);
    }
  }
  {
    rvec::serve::ChatRequest a;
    rvec::serve::ApiError e;
    if (!rvec::serve::ParseChatRequest(body, limits, &a, &e)) {
      CheckRejection(e);
    } else {
      Check(a.messages.is_array() && !a.messages.empty(), "accepted chat without messages");
      for (const auto& m : a.messages) {
        Check(m.is_object() && m.contains("role"), "accepted a message without a role");
        Check((m.contains("content") && m.at("content").is_string()) || m.contains("tool_calls"),
              "accepted content that is not normalised to a string");
      }
      Check(a.top_logprobs >= 0 && a.top_logprobs <= limits.max_logprobs, "bad top_logprobs");
      CheckSampling(a.sampling, limits);
    }
  }
  return 0;
}
