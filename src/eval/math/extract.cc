// Finding the final answer in a model's response: the last \boxed{}/\fbox{}, the text after
// </think>, then the reference fall-backs ("the answer is", the last number).
#include <cctype>

#include "eval/math/grader.h"

namespace rvec::eval::math {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The start of the last "\boxed" or "\fbox" command (not a longer command name), or npos.
size_t LastBoxCommand(std::string_view text, size_t* name_len) {
  size_t best = std::string_view::npos;
  for (std::string_view name : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    size_t end = text.size();
    while (end > 0) {
      size_t at = text.rfind(name, end - 1);
      if (at == std::string_view::npos) break;
      size_t after = at + name.size();
      bool whole = after >= text.size() || !std::isalpha(static_cast<unsigned char>(text[after]));
      if (whole) {
        if (best == std::string_view::npos || at > best) best = at, *name_len = name.size();
        break;
      }
      end = at;
    }
  }
  return best;
}

// The answer after a phrase such as "the answer is": the rest of that line, without a final
// full stop or math delimiters.
std::string AfterPhrase(std::string_view text, size_t at) {
  std::string_view rest = text.substr(at);
  if (size_t nl = rest.find('\n'); nl != std::string_view::npos) rest = rest.substr(0, nl);
  // The sentence ends at a full stop followed by a space ("12. I hope it is correct.").
  if (size_t stop = rest.find(". "); stop != std::string_view::npos) rest = rest.substr(0, stop);
  rest = Trim(rest);
  if (!rest.empty() && rest.front() == ':') rest = Trim(rest.substr(1));
  while (!rest.empty() && (rest.back() == '.' || rest.back() == ' ')) rest.remove_suffix(1);
  return std::string(rest);
}

std::string LastNumber(std::string_view text) {
  // Scan backwards for the last run of digits, then extend it over a decimal point and sign;
  // thousands separators ("1,234") join the number as the reference drops every comma.
  size_t end = text.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(text[end - 1]))) --end;
  if (end == 0) return "";
  size_t begin = end;
  auto digit_or_sep = [&](size_t i) {
    char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) return true;
    return (c == '.' || c == ',') && i > 0 && std::isdigit(static_cast<unsigned char>(text[i - 1]));
  };
  while (begin > 0 && digit_or_sep(begin - 1)) --begin;
  std::string out;
  if (begin > 0 && text[begin - 1] == '-') out += '-';
  for (size_t i = begin; i < end; ++i) {
    if (text[i] != ',') out += text[i];
  }
  return out;
}

}  // namespace

std::string LastBoxed(std::string_view text) {
  size_t name_len = 0;
  size_t at = LastBoxCommand(text, &name_len);
  if (at == std::string_view::npos) return "";
  size_t i = at + name_len;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i >= text.size()) return "";
  if (text[i] != '{') {
    // "\boxed 5": the reference reads up to the next dollar sign.
    if (i == at + name_len) return "";
    std::string_view rest = text.substr(i);
    rest = rest.substr(0, std::min(rest.find('$'), rest.find('\n')));
    return std::string(Trim(rest));
  }
  int depth = 0;
  for (size_t j = i; j < text.size(); ++j) {
    if (text[j] == '\\' && j + 1 < text.size() && (text[j + 1] == '{' || text[j + 1] == '}')) {
      ++j;  // an escaped brace does not open or close a group
      continue;
    }
    if (text[j] == '{') ++depth;
    if (text[j] == '}' && --depth == 0) return std::string(text.substr(i + 1, j - i - 1));
  }
  return "";
}

std::string ExtractAnswer(std::string_view response) {
  if (size_t think = response.rfind("</think>"); think != std::string_view::npos) {
    response = response.substr(think + 8);
  }
  if (std::string boxed = LastBoxed(response); !boxed.empty()) return boxed;
  size_t minerva = response.find("final answer is $");
  if (minerva != std::string_view::npos) {
    size_t begin = minerva + 17;
    size_t end = response.find("$. I hope", begin);
    if (end != std::string_view::npos)
      return std::string(Trim(response.substr(begin, end - begin)));
  }
  for (std::string_view phrase :
       {std::string_view("he answer is"), std::string_view("final answer is")}) {
    size_t at = response.rfind(phrase);
    if (at == std::string_view::npos) continue;
    std::string answer = AfterPhrase(response, at + phrase.size());
    if (!answer.empty()) return answer;
  }
  return LastNumber(response);
}

}  // namespace rvec::eval::math
