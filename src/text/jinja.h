// Jinja2 subset interpreter for Hugging Face chat templates: parse once, render many times.
//
// Semantics follow Jinja2 3.1 as transformers configures it for apply_chat_template:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
// extension, transformers' tojson (json.dumps, ensure_ascii=False) and the raise_exception /
// strftime_now globals. Values follow Python: ints, floats, str (code points), lists, tuples,
// dicts in insertion order, None, and Jinja's Undefined.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace rvec::jinja {

// Bounds that keep hostile or buggy templates from exhausting memory, stack or time.
struct Limits {
  size_t max_output_bytes = size_t{256} << 20;  // also bounds any single string value
  uint64_t max_steps = 200'000'000;             // evaluated nodes + loop iterations
  int max_nesting = 200;                        // expression/statement nesting when parsing
  int max_call_depth = 100;                     // macro recursion
};

class Template {
 public:
  // Syntax errors name the template line and column.
  static StatusOr<Template> Parse(std::string_view source, const Limits& limits = {});

  Template();
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  Template(const Template&);
  Template& operator=(const Template&);

  // `variables` is a JSON object; each key becomes a template variable. Runtime errors (including
  // raise_exception) name the template line.
  StatusOr<std::string> Render(const nlohmann::ordered_json& variables) const;

  struct Program;

 private:
  std::shared_ptr<const Program> program_;
};

// Python's repr() of a float (shortest round-trip, "1.0", "1e+16"), as json.dumps also writes it.
std::string PythonFloatRepr(double value);

}  // namespace rvec::jinja
