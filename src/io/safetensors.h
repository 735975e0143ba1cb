// safetensors files: header parsing with the reference implementation's validation, and
// zero-copy tensor views into a memory-mapped file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "io/mapped_file.h"

namespace rvec {

// The largest header the reference implementation accepts.
inline constexpr uint64_t kMaxSafetensorsHeaderSize = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;

  uint64_t NumElements() const;  // 1 for a scalar (empty shape)
  uint64_t NumBytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by data offset
  std::map<std::string, std::string> metadata;
  uint64_t header_size = 0;  // the JSON header's byte length (the 8-byte prefix's value)
};

// Parses and validates a header JSON (the bytes after the 8-byte length) as
// huggingface/safetensors `Metadata::validate` does. `data_size` is the number of bytes after the
// header; the tensors must cover them exactly. `label` (usually the path) starts every message.
StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view header_json, uint64_t data_size,
                                                   std::string_view label);

// Parses a whole file image (8-byte length, header, data). Used by the file reader and fuzzers.
StatusOr<SafetensorsHeader> ParseSafetensorsBuffer(const uint8_t* bytes, uint64_t size,
                                                   std::string_view label);

// Serialises a header the way huggingface/safetensors `serialize` does: compact JSON with
// `__metadata__` first (omitted when empty), then the tensors in the given order, padded with
// spaces so that its length (and so the data section) is a multiple of 8. The 8-byte length
// prefix is not included. `tensors` must already carry contiguous offsets.
std::string SerializeSafetensorsHeader(const std::vector<TensorInfo>& tensors,
                                       const std::map<std::string, std::string>& metadata);

// A non-owning view of one tensor's bytes inside a mapping.
struct TensorView {
  const TensorInfo* info = nullptr;
  const uint8_t* data = nullptr;

  const std::string& name() const { return info->name; }
  DType dtype() const { return info->dtype; }
  const std::vector<int64_t>& shape() const { return info->shape; }
  uint64_t NumElements() const { return info->NumElements(); }
  uint64_t NumBytes() const { return info->NumBytes(); }
};

class SafetensorsFile {
 public:
  static StatusOr<SafetensorsFile> Open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // nullptr if absent.
  const TensorInfo* Find(std::string_view name) const;
  TensorView View(const TensorInfo& info) const;
  // The raw header bytes (for hashing provenance without reading the data).
  std::string_view RawHeader() const;
  uint64_t data_offset() const { return 8 + header_.header_size; }
  const MappedFile& file() const { return file_; }
  // Drops the mapped pages of a tensor once it has been consumed.
  void Release(const TensorInfo& info) const;
  void Prefetch(const TensorInfo& info) const;

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

}  // namespace rvec
