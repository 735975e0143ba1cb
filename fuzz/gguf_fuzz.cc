// libFuzzer target for the GGUF reader: any byte string must give a header or a labelled error,
// never a crash; an accepted header must survive serialise -> parse unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = rvec::ParseGgufBuffer(data, size, "fuzz");
  if (!parsed.ok()) {
    if (parsed.status().message().rfind("fuzz: ", 0) != 0) {
      std::fprintf(stderr, "error without label: %s\n", parsed.status().message().c_str());
      std::abort();
    }
    return 0;
  }
  const rvec::GgufHeader& h = *parsed;
  if (h.data_offset % rvec::kGgufAlignment != 0 || h.data_offset > size) std::abort();
  // Re-serialise (as version 3) and parse the header again, with the original data appended so
  // that every tensor still fits.
  auto again = rvec::SerializeGgufHeader(h.kvs, h.tensors);
  if (!again.ok()) {
    std::fprintf(stderr, "accepted header not serialisable: %s\n",
                 again.status().message().c_str());
    std::abort();
  }
  std::string image = *again;
  image.resize(
      (image.size() + rvec::kGgufAlignment - 1) / rvec::kGgufAlignment * rvec::kGgufAlignment,
      '\0');
  image.append(reinterpret_cast<const char*>(data) + h.data_offset, size - h.data_offset);
  auto reparsed = rvec::ParseGgufBuffer(reinterpret_cast<const uint8_t*>(image.data()),
                                        image.size(), "fuzz-reserialised");
  if (!reparsed.ok()) {
    std::fprintf(stderr, "re-serialised header rejected: %s\n",
                 reparsed.status().message().c_str());
    std::abort();
  }
  if (reparsed->kvs.size() != h.kvs.size() || reparsed->tensors.size() != h.tensors.size()) {
    std::abort();
  }
  for (size_t i = 0; i < h.kvs.size(); ++i) {
    // NaN floats compare unequal to themselves; compare their keys and types only.
    if (reparsed->kvs[i].first != h.kvs[i].first ||
        reparsed->kvs[i].second.type != h.kvs[i].second.type) {
      std::abort();
    }
  }
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const rvec::GgufTensorInfo& a = h.tensors[i];
    const rvec::GgufTensorInfo& b = reparsed->tensors[i];
    if (a.name != b.name || a.dims != b.dims || a.type != b.type || a.offset != b.offset) {
      std::abort();
    }
  }
  return 0;
}
