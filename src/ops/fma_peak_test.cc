// The FMA probe reports a positive rate, its thread count and the dispatched vector width.
#include "ops/fma_peak.h"

#include <gtest/gtest.h>

namespace rvec {
namespace {

TEST(FmaPeak, ReportsAPositiveRateAndTheTarget) {
  ThreadPool one(1), two(2);
  const FmaPeakResult a = MeasureFmaPeak(&one, 0.02, 2);
  const FmaPeakResult b = MeasureFmaPeak(&two, 0.02, 2);
  EXPECT_GT(a.gflops, 0.1);
  EXPECT_GE(a.lanes, 4u);
  EXPECT_EQ(a.threads, 1u);
  EXPECT_EQ(b.threads, 2u);
  EXPECT_GT(b.gflops, 0.1 * a.gflops);
  EXPECT_GT(MeasureFmaPeak(nullptr, 0.01, 1).gflops, 0.1);
}

}  // namespace
}  // namespace rvec
