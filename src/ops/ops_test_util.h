// Test helper: runs a check once per Highway target compiled into rvec_ops that this CPU supports.
#pragma once

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstdint>
#include <string>

#include "ops/convert.h"

namespace rvec::testing {

// Calls fn() with dispatch forced to each target in turn (scoped trace names the target) and
// restores normal dispatch afterwards. Fails if forcing a target does not change the dispatch.
template <class Fn>
void ForEachOpsTarget(const Fn& fn) {
  const auto targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (const int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(std::string("Highway target ") + hwy::TargetName(target));
    ASSERT_STREQ(OpsTargetName(), hwy::TargetName(target));
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace rvec::testing
