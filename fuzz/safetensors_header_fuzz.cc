// libFuzzer target for the safetensors header parser: any byte string must give a value or an
// error, never a crash; an accepted header must survive serialise -> parse unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = rvec::ParseSafetensorsBuffer(data, size, "fuzz");
  if (!parsed.ok()) {
    // Every rejection must say something (and name the input).
    if (parsed.status().message().rfind("fuzz: ", 0) != 0) {
      std::fprintf(stderr, "error without label: %s\n", parsed.status().message().c_str());
      std::abort();
    }
    return 0;
  }
  const rvec::SafetensorsHeader& header = *parsed;
  // Offsets tile [0, data_size) and sizes match dtype x shape: recompute independently.
  uint64_t expect_begin = 0;
  for (const rvec::TensorInfo& t : header.tensors) {
    if (t.begin != expect_begin || t.NumElements() * rvec::DTypeSize(t.dtype) != t.NumBytes()) {
      std::abort();
    }
    expect_begin = t.end;
  }
  const uint64_t data_size = size - 8 - header.header_size;
  if (expect_begin != data_size) std::abort();
  // Round trip through our serialiser.
  const std::string again = rvec::SerializeSafetensorsHeader(header.tensors, header.metadata);
  auto reparsed = rvec::ParseSafetensorsHeader(again, data_size, "fuzz-reserialised");
  if (!reparsed.ok()) {
    std::fprintf(stderr, "re-serialised header rejected: %s\n",
                 reparsed.status().message().c_str());
    std::abort();
  }
  if (reparsed->tensors.size() != header.tensors.size() || reparsed->metadata != header.metadata) {
    std::abort();
  }
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    const rvec::TensorInfo& a = header.tensors[i];
    const rvec::TensorInfo& b = reparsed->tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.begin != b.begin ||
        a.end != b.end) {
      std::abort();
    }
  }
  return 0;
}
