// Compatibility checks between a reference checkpoint and another input.
#include "merge/compat.h"

#include <fmt/format.h>

#include "merge/provenance.h"
#include "merge/schedule.h"

namespace rvec::merge {

StatusOr<VocabMode> ParseVocabMode(std::string_view text) {
  if (text == "error") return VocabMode::kError;
  if (text == "common") return VocabMode::kCommon;
  return InvalidArgument("--vocab-mismatch '{}': expected 'error' or 'common'", text);
}

std::string AbbreviatedList(const std::vector<std::string>& names, size_t max_items) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max_items; ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  if (names.size() > max_items) out += fmt::format(" and {} more", names.size() - max_items);
  return out;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return out + "]";
}

StatusOr<CompatResult> CheckCompatible(const Checkpoint& ref, std::string_view ref_role,
                                       const Checkpoint& other, std::string_view other_role,
                                       const CompatOptions& options) {
  CompatResult result;
  std::vector<std::string> problems;
  const std::string ref_label = fmt::format("{} ({})", ref_role, ref.path().string());
  const std::string other_label = fmt::format("{} ({})", other_role, other.path().string());

  const std::string ref_arch = ArchitectureOf(ref);
  const std::string other_arch = ArchitectureOf(other);
  if (!ref_arch.empty() && !other_arch.empty() && ref_arch != other_arch) {
    problems.push_back(fmt::format("architectures differ: {} is {}, {} is {}", ref_role, ref_arch,
                                   other_role, other_arch));
  }

  std::vector<std::string> missing, extra, shape_problems;
  for (const std::string& name : ref.TensorNames()) {
    if (!other.Has(name)) missing.push_back(name);
  }
  for (const std::string& name : other.TensorNames()) {
    if (ref.Has(name)) continue;
    bool tolerated = false;
    for (const auto& t : options.tolerated_extra) tolerated |= t == name;
    if (tolerated) {
      result.extra.push_back(name);
    } else {
      extra.push_back(name);
    }
  }
  for (const std::string& name : ref.TensorNames()) {
    const TensorInfo* a = ref.Info(name);
    const TensorInfo* b = other.Info(name);
    if (!a || !b || a->shape == b->shape) continue;
    const bool row_mismatch = IsVocabTensor(name) && a->shape.size() == 2 && b->shape.size() == 2 &&
                              a->shape[1] == b->shape[1];
    if (row_mismatch && options.vocab == VocabMode::kCommon) {
      const int64_t rows = std::min(a->shape[0], b->shape[0]);
      result.common_elements[name] = static_cast<uint64_t>(rows * a->shape[1]);
      result.warnings.push_back(fmt::format(
          "{}: {} has {} rows, {} has {}; combining the {} shared rows and keeping the other "
          "rows of {} unchanged (--vocab-mismatch=common)",
          name, ref_role, a->shape[0], other_role, b->shape[0], rows, ref_role));
      continue;
    }
    std::string problem = fmt::format("{}: shape {} in {} vs {} in {}", name, ShapeString(a->shape),
                                      ref_role, ShapeString(b->shape), other_role);
    if (row_mismatch) {
      problem +=
          " (vocabulary rows differ; pass --vocab-mismatch=common to combine the shared "
          "rows and keep the rest)";
    }
    shape_problems.push_back(problem);
  }
  if (!missing.empty()) {
    if (options.allow_missing) {
      result.missing = missing;
    } else {
      problems.push_back(fmt::format("{} tensor(s) of {} are missing from {}: {}", missing.size(),
                                     ref_role, other_role, AbbreviatedList(missing)));
    }
  }
  if (!extra.empty()) {
    problems.push_back(fmt::format("{} tensor(s) of {} do not exist in {}: {}", extra.size(),
                                   other_role, ref_role, AbbreviatedList(extra)));
  }
  if (!shape_problems.empty()) {
    problems.push_back(fmt::format("{} shape mismatch(es): {}", shape_problems.size(),
                                   AbbreviatedList(shape_problems, 5)));
  }
  if (!problems.empty()) {
    std::string msg = fmt::format("{} and {} are not compatible:", ref_label, other_label);
    for (const auto& p : problems) msg += "\n  - " + p;
    return FailedPrecondition("{}", msg);
  }
  return result;
}

std::string MixedDTypeWarning(const Checkpoint& base, const Checkpoint& tuned) {
  std::vector<std::string> differing;
  std::string example;
  for (const std::string& name : base.TensorNames()) {
    const TensorInfo* a = base.Info(name);
    const TensorInfo* b = tuned.Info(name);
    if (!a || !b || a->dtype == b->dtype) continue;
    if (differing.empty()) {
      example = fmt::format("{} is {} in the base and {} in the tuned model", name,
                            DTypeName(a->dtype), DTypeName(b->dtype));
    }
    differing.push_back(name);
  }
  if (differing.empty()) return "";
  return fmt::format(
      "mixed input dtypes in {} tensor(s) (e.g. {}): the difference then contains the rounding "
      "residual of the wider copy as dense noise, not only the fine-tuning update",
      differing.size(), example);
}

}  // namespace rvec::merge
