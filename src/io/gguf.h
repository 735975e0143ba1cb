// GGUF v3 files (llama.cpp's format): a streaming writer that converts tensor data chunk by chunk,
// and a reader of the header, metadata and tensor table for checks and tests.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/progress.h"
#include "base/status.h"
#include "io/mapped_file.h"

namespace rvec {

inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint64_t kGgufAlignment = 32;  // llama.cpp's default (general.alignment absent)

// The metadata value types, numbered as the GGUF specification numbers them.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
std::string_view GgufTypeName(GgufType type);

// One metadata value. Integers of every width are held in `u` (unsigned) or `i` (signed), floats
// in `f`; an array holds its elements, all of `elem_type`.
struct GgufValue {
  GgufType type = GgufType::kUint32;
  GgufType elem_type = GgufType::kUint32;  // arrays only
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  std::vector<GgufValue> array;

  static GgufValue Uint(GgufType type, uint64_t v);
  static GgufValue Int(GgufType type, int64_t v);
  static GgufValue Float(GgufType type, double v);
  static GgufValue U32(uint32_t v) { return Uint(GgufType::kUint32, v); }
  static GgufValue I32(int32_t v) { return Int(GgufType::kInt32, v); }
  static GgufValue F32(float v) { return Float(GgufType::kFloat32, v); }
  static GgufValue Bool(bool v);
  static GgufValue String(std::string v);
  // An array of `elem_type`; the elements must all have that type (arrays of arrays allowed).
  static GgufValue Array(GgufType elem_type, std::vector<GgufValue> elems);
  static GgufValue StringArray(const std::vector<std::string>& v);
  static GgufValue I32Array(const std::vector<int32_t>& v);

  bool operator==(const GgufValue& other) const;
};

using GgufKv = std::pair<std::string, GgufValue>;

// ggml's tensor types that rvec writes and reads.
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kBF16 = 30 };
std::string_view GgmlTypeName(GgmlType type);
size_t GgmlTypeSize(GgmlType type);

// A tensor to write: `dims` in ggml order (dims[0] varies fastest, so a row-major [rows, cols]
// matrix has dims {cols, rows}). `fill(first, count, out)` writes elements first..first+count-1
// (flat, row-major) as f32 into `out`; the writer converts them to `type` as it streams.
struct GgufTensorSource {
  std::string name;
  std::vector<uint64_t> dims;
  GgmlType type = GgmlType::kF32;
  std::function<Status(uint64_t first, size_t count, float* out)> fill;

  uint64_t NumElements() const;
  uint64_t NumBytes() const { return NumElements() * GgmlTypeSize(type); }
};

// Writes a GGUF v3 file to `path` (the caller picks a temporary path and renames it): header,
// metadata, tensor table, padding, then each tensor's data streamed in fixed chunks of elements
// so that memory stays bounded whatever the tensor sizes. `progress` (may be null) advances by
// the data bytes written. Returns the file's size.
StatusOr<uint64_t> WriteGguf(const std::filesystem::path& path, const std::vector<GgufKv>& kvs,
                             const std::vector<GgufTensorSource>& tensors, Progress* progress);

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // relative to the data section

  uint64_t NumElements() const;
};

// Everything before the data section, as read.
struct GgufHeader {
  uint32_t version = 0;
  std::vector<GgufKv> kvs;
  std::vector<GgufTensorInfo> tensors;
  uint64_t data_offset = 0;  // from the start of the file
};

// The header bytes WriteGguf writes before the padding and the data section, with the tensors'
// offsets as given.
StatusOr<std::string> SerializeGgufHeader(const std::vector<GgufKv>& kvs,
                                          const std::vector<GgufTensorInfo>& tensors);

// Parses and validates a whole GGUF image (every tensor's data must lie inside `size` bytes);
// errors start with `label`. GgufFile::Open and the fuzz target use it.
StatusOr<GgufHeader> ParseGgufBuffer(const uint8_t* data, uint64_t size, std::string_view label);

// A GGUF file read through a memory map: every metadata value and the tensor table, validated
// (sizes, offsets and alignment inside the file; errors name the file and the field).
class GgufFile {
 public:
  static StatusOr<GgufFile> Open(const std::filesystem::path& path);

  uint32_t version() const { return version_; }
  const std::vector<GgufKv>& kvs() const { return kvs_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const GgufValue* Find(std::string_view key) const;
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  uint64_t data_offset() const { return data_offset_; }
  // The tensor's bytes inside the mapping.
  const uint8_t* TensorData(const GgufTensorInfo& info) const;
  // The tensor's elements as f32 (for tests and small checks).
  std::vector<float> TensorAsF32(const GgufTensorInfo& info) const;

 private:
  MappedFile file_;
  uint32_t version_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  uint64_t data_offset_ = 0;
};

}  // namespace rvec
