// Jinja2 subset interpreter for chat templates: the public Template API over the lexer, parser
// and evaluator in jinja_*.cc (see jinja_internal.h for how the pieces fit).
#include "text/jinja.h"

#include <exception>
#include <new>

#include "base/utf8.h"
#include "text/jinja_internal.h"

namespace rvec::jinja {
namespace {

using internal::JinjaError;

std::string NormalizeSource(std::string_view source) {
  // Jinja normalises every newline sequence to \n and (keep_trailing_newline=False) drops one
  // trailing newline.
  std::string s;
  s.reserve(source.size());
  for (size_t k = 0; k < source.size(); ++k) {
    if (source[k] == '\r') {
      s.push_back('\n');
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      s.push_back(source[k]);
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::string Where(const JinjaError& e) {
  if (e.line <= 0) return "chat template: ";
  std::string w = "chat template line " + std::to_string(e.line);
  if (e.column > 0) w += ", column " + std::to_string(e.column);
  return w + ": ";
}

}  // namespace

Template::Template() = default;
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;

StatusOr<Template> Template::Parse(std::string_view source, const Limits& limits) {
  if (const size_t bad = FindInvalidUtf8(source); bad != std::string_view::npos) {
    return InvalidArgument("chat template is not valid UTF-8 (byte offset {})", bad);
  }
  try {
    auto program = std::make_shared<Program>();
    program->limits = limits;
    program->body = internal::ParseTokens(internal::Lex(NormalizeSource(source)), program->limits);
    Template t;
    t.program_ = std::move(program);
    return t;
  } catch (const JinjaError& e) {
    return Status(e.code, Where(e) + e.message);
  } catch (const std::exception& e) {
    return Internal("chat template: {}", e.what());
  }
}

StatusOr<std::string> Template::Render(const nlohmann::ordered_json& variables) const {
  if (!program_) return FailedPrecondition("chat template: Render() on an empty template");
  std::string out;
  internal::Interp interp(*program_, &out);
  try {
    interp.Run(variables);
  } catch (JinjaError& e) {
    if (e.line <= 0) e.line = interp.last_line();
    return Status(e.code, Where(e) + e.message);
  } catch (const std::bad_alloc&) {
    return FailedPrecondition("chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    return Internal("chat template: {}", e.what());
  }
  return out;
}

}  // namespace rvec::jinja
