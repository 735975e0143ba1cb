// JSON parsing for untrusted checkpoint files: duplicate keys and runaway nesting are errors, and
// failures come back as Status values naming the file and the position.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "base/status.h"

namespace rvec {

// Parses `text` as one JSON document. Unlike nlohmann's default (the last duplicate wins), an
// object naming the same key twice is a DataLoss error, because a checkpoint header or index that
// lists a tensor twice is ambiguous. `label` (usually the path) starts every message and `what`
// names the document ("header", "index").
// `allow_duplicate_keys` keeps nlohmann's (and Python's) last-one-wins rule, for files such as
// config.json that transformers reads with json.load.
StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view label,
                                         std::string_view what, bool allow_duplicate_keys = false);

// "an object", "a string", ... for messages about unexpected JSON types.
const char* JsonTypeName(const nlohmann::json& j);

}  // namespace rvec
