// The rvec version string recorded in outputs' provenance.
#pragma once

namespace rvec {
inline constexpr const char kVersion[] = "0.1.0";
}  // namespace rvec
