// Compatibility of checkpoints combined tensor by tensor: architecture, names, shapes, padded
// vocabularies and dtypes, all checked before any output is created.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/checkpoint.h"

namespace rvec::merge {

// What to do when embedding/lm_head row counts differ (Qwen2.5 ships 151,936 or 152,064 rows).
enum class VocabMode { kError, kCommon };
StatusOr<VocabMode> ParseVocabMode(std::string_view text);

struct CompatOptions {
  VocabMode vocab = VocabMode::kError;
  // Tensors of `ref` absent from `other` are allowed (reported in `missing`), e.g. a filtered
  // vector; otherwise they are an error.
  bool allow_missing = false;
  // Names of `other` that are allowed to be absent from `ref` (e.g. lm_head.weight for a tied
  // target); they are reported in `extra` instead of failing.
  std::vector<std::string> tolerated_extra;
};

struct CompatResult {
  // For vocabulary tensors whose rows differ (only with VocabMode::kCommon): the number of flat
  // elements in the shared leading rows.
  std::map<std::string, uint64_t, std::less<>> common_elements;
  std::vector<std::string> missing;  // in ref, not in other
  std::vector<std::string> extra;    // in other, not in ref (only tolerated ones)
  std::vector<std::string> warnings;
};

// Checks `other` against `ref`. Errors are FailedPrecondition and list every problem (names
// abbreviated after ten), naming both inputs by role and path.
StatusOr<CompatResult> CheckCompatible(const Checkpoint& ref, std::string_view ref_role,
                                       const Checkpoint& other, std::string_view other_role,
                                       const CompatOptions& options);

// A warning when the two inputs of a difference store some tensor in different dtypes (the
// difference then carries the rounding residual of the wider one as dense noise); empty if none.
std::string MixedDTypeWarning(const Checkpoint& base, const Checkpoint& tuned);

// "a, b, c and 7 more"
std::string AbbreviatedList(const std::vector<std::string>& names, size_t max_items = 10);
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace rvec::merge
