// The evaluation-backend flags that `rvec eval` and `rvec transfer` share, defined once so that
// their names, defaults and help text cannot drift apart.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <string>

namespace rvec::cli {

struct BackendFlags {
  std::string kind = "local";     // --backend: local, openai or replay (checked by the command)
  std::string endpoint;           // openai
  size_t concurrency = 4;         // openai
  bool bf16_activations = false;  // local
};

// Adds --backend, --endpoint, --concurrency and --bf16-activations to `app`, in that order.
void AddBackendFlags(CLI::App* app, BackendFlags* flags);

}  // namespace rvec::cli
