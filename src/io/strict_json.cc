// Strict JSON parsing for headers, indexes and configs read from disk.
#include "io/strict_json.h"

#include <exception>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace rvec {

namespace {

using nlohmann::json;

// serde_json (used by the reference) refuses nesting deeper than this; a real header needs 3.
constexpr int kMaxJsonDepth = 128;

// Thrown from inside the JSON parser callback only; caught in ParseJsonObject.
struct HeaderJsonError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

const char* JsonTypeName(const nlohmann::json& j) {
  using nlohmann::json;
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a floating-point number";
    default:
      return "an unsupported value";
  }
}

StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view label,
                                         std::string_view what, bool allow_duplicate_keys) {
  std::vector<std::set<std::string>> keys_stack;
  using nlohmann::json;
  // nlohmann treats a NUL byte as the end of input; JSON allows none outside (escaped) strings.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return DataLoss("{}: {} is not valid JSON: NUL byte at offset {}", label, what, nul);
  }
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
        if (depth >= kMaxJsonDepth) throw HeaderJsonError("JSON nested too deeply");
        keys_stack.emplace_back();
        break;
      case json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth) throw HeaderJsonError("JSON nested too deeply");
        break;
      case json::parse_event_t::object_end:
        if (!keys_stack.empty()) keys_stack.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!allow_duplicate_keys && !keys_stack.empty() && !keys_stack.back().insert(key).second) {
          throw HeaderJsonError(
              fmt::format("duplicate key \"{}\" (the JSON object names it twice)", key));
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    json j = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                         /*ignore_comments=*/false);
    return j;
  } catch (const HeaderJsonError& e) {
    return DataLoss("{}: {} is not valid: {}", label, what, e.what());
  } catch (const json::exception& e) {
    // nlohmann's message says where ("parse error at line 1, column 17: ...").
    std::string msg = e.what();
    if (const size_t pos = msg.find("] ");
        msg.rfind("[json.exception", 0) == 0 && pos != msg.npos) {
      msg = msg.substr(pos + 2);
    }
    return DataLoss("{}: {} is not valid JSON: {}", label, what, msg);
  } catch (const std::exception& e) {
    return DataLoss("{}: {} could not be parsed: {}", label, what, e.what());
  }
}

}  // namespace rvec
