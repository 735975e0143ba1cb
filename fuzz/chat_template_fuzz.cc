// libFuzzer target for the chat-template interpreter: any template text must parse and render to a
// value or an error, never crash, hang or exhaust memory (limits bound steps, output and depth);
// rendering is deterministic.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "text/jinja.h"

namespace {

const nlohmann::ordered_json& Variables() {
  static const nlohmann::ordered_json vars = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "What is 2+2? <think>x</think>"},
      {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4",
       "tool_calls": [{"type": "function",
                       "function": {"name": "calc", "arguments": {"expr": "2+2"}}}]},
      {"role": "tool", "content": "4"},
      {"role": "user", "content": [{"type": "text", "text": "thanks"}, {"type": "image"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "calc", "description": "Evaluate",
               "parameters": {"type": "object", "properties": {"expr": {"type": "string"}},
                              "required": ["expr"]}}}],
    "documents": null,
    "add_generation_prompt": true,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "enable_thinking": false,
    "date_string": "26 Jul 2024",
    "numbers": [3, -1.5, 0, 1e300, 9223372036854775807]
  })");
  return vars;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  rvec::jinja::Limits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_steps = 50000;
  limits.max_nesting = 64;
  limits.max_call_depth = 32;
  auto parsed = rvec::jinja::Template::Parse(source, limits);
  if (!parsed.ok()) {
    if (parsed.status().message().empty()) std::abort();
    return 0;
  }
  auto first = parsed->Render(Variables());
  if (!first.ok()) {
    if (first.status().message().empty()) std::abort();
    return 0;
  }
  if (first->size() > limits.max_output_bytes) std::abort();
  if (source.find("strftime_now") == std::string_view::npos) {
    auto second = parsed->Render(Variables());
    if (!second.ok() || *second != *first) {
      std::fprintf(stderr, "rendering is not deterministic\n");
      std::abort();
    }
  }
  return 0;
}
