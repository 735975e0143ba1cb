// Asks an OpenAI-compatible server which model names it serves (GET /v1/models).
#pragma once

#include <string>

namespace rvec::pipeline {

// True when `endpoint` ("http://HOST:PORT/v1") answers /models with an entry whose id is `name`.
bool EndpointServesModel(const std::string& endpoint, const std::string& name);

}  // namespace rvec::pipeline
