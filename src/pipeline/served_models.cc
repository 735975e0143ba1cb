// GET /v1/models with a short timeout; any failure means "not served (yet)".
#include "pipeline/served_models.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

namespace rvec::pipeline {

bool EndpointServesModel(const std::string& endpoint, const std::string& name) {
  // Split "http://host:port/base" into the client address and the path prefix.
  const std::string scheme = "http://";
  if (endpoint.rfind(scheme, 0) != 0) return false;
  const size_t slash = endpoint.find('/', scheme.size());
  const std::string host = endpoint.substr(0, slash);
  std::string base = slash == std::string::npos ? "" : endpoint.substr(slash);
  while (!base.empty() && base.back() == '/') base.pop_back();
  httplib::Client client(host);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  auto res = client.Get(base + "/models");
  if (!res || res->status != 200) return false;
  const auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) return false;
  for (const auto& m : j["data"]) {
    if (m.is_object() && m.contains("id") && m["id"].is_string() && m["id"] == name) return true;
  }
  return false;
}

}  // namespace rvec::pipeline
