// Compact reasoning vectors on disk — low-rank (a PEFT LoRA adapter), sparse (indices + values) and
// sign (1 bit per element + a scale per row) — read back as ranges of the dense f32 vector they
// stand for, so apply and stats treat every form exactly like a dense vector.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/checkpoint.h"

namespace rvec::merge {

enum class CompactKind { kLowRank, kSparse, kSign };
std::string_view CompactKindName(CompactKind kind);  // "lowrank", "sparse", "sign"

// Layout names (docs/compact.md documents them for other tools).
inline constexpr char kAdapterConfig[] = "adapter_config.json";
inline constexpr char kAdapterWeights[] = "adapter_model.safetensors";
inline constexpr char kRestDir[] = "rest";  // dense remainder beside an adapter (--keep-rest)
inline constexpr char kSparseIndices[] = ".sparse_indices";  // I32/I64 [k], ascending flat index
inline constexpr char kSparseValues[] = ".sparse_values";    // F32/BF16 [k]
inline constexpr char kSignBits[] = ".sign_bits";    // U8 [rows, ceil(cols/8)], bit set = +scale
inline constexpr char kSignScale[] = ".sign_scale";  // F32 [rows] (per row) or [1] (per tensor)
// Metadata of sparse and sign files: rvec.kind and the dense shapes as a JSON object.
inline constexpr char kKindKey[] = "rvec.kind";
inline constexpr char kShapesKey[] = "rvec.compact.shapes";
inline constexpr char kSparseKind[] = "sparse_vector";
inline constexpr char kSignKind[] = "sign_vector";

// PEFT module name for a dense tensor name: "model.layers.0.mlp.up_proj.weight" ->
// "model.layers.0.mlp.up_proj"; the adapter stores base_model.model.<module>.lora_{A,B}.weight.
std::string LoraModuleOf(const std::string& tensor_name);

// True when `path` is a compact vector: a directory with adapter_config.json, or a checkpoint whose
// metadata rvec.kind is sparse_vector or sign_vector.
bool IsCompactVector(const std::filesystem::path& path);

class CompactVector {
 public:
  static StatusOr<std::unique_ptr<CompactVector>> Open(const std::filesystem::path& path);
  ~CompactVector();

  CompactKind kind() const { return kind_; }
  const std::filesystem::path& path() const { return path_; }
  // The dense tensors this vector stands for (adapter modules, then the dense remainder).
  const std::vector<std::string>& TensorNames() const { return names_; }
  bool Has(std::string_view name) const;
  // Dense shape; empty when absent.
  const std::vector<int64_t>& Shape(std::string_view name) const;
  uint64_t NumElements(std::string_view name) const;
  // Decodes elements [begin, begin + n) of tensor `name` (row-major flat order) into dst, in f32.
  // Low-rank: s·(B·A) with each dot product summed in f32 in rank order; sparse: stored values,
  // zero elsewhere; sign: ±scale. Thread-safe; holds no decoded tensor between calls.
  Status Decode(std::string_view name, uint64_t begin, uint64_t n, float* dst) const;
  // Provenance recorded by `rvec compress` (method, parameters, source vector hash, retention).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Bytes of every file that makes up this vector.
  uint64_t BytesOnDisk() const { return bytes_on_disk_; }
  // The checkpoint that holds the stored tensors (the adapter file for low-rank).
  const Checkpoint& storage() const { return *storage_; }

 private:
  struct Entry;
  CompactVector() = default;
  // Open's layouts: a PEFT adapter directory (and its dense rest/, if written), or one
  // safetensors file of sparse or sign tensors.
  Status OpenAdapter();
  Status OpenRest();
  Status OpenPacked();
  // Reads stored tensor `stored` of a sparse or sign file into `e` and returns the dense name it
  // stands for; "" for the second half of a pair (values, scales).
  StatusOr<std::string> ReadPacked(const std::string& stored, Entry& e) const;
  // Sizes, and for sparse the index order, of a packed entry against its dense shape.
  Status CheckPacked(const std::string& stored, const Entry& e) const;
  CompactKind kind_ = CompactKind::kSparse;
  std::filesystem::path path_;
  std::unique_ptr<Checkpoint> storage_;
  std::unique_ptr<Checkpoint> rest_;  // low-rank: dense remainder, if written
  std::vector<std::string> names_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::map<std::string, std::string> metadata_;
  uint64_t bytes_on_disk_ = 0;
};

// Any vector — a dense checkpoint or a compact form — read as f32 ranges by tensor name: what
// `stats` and `similarity` consume, so they take every form `rvec compress` writes.
class VectorReader {
 public:
  static StatusOr<std::unique_ptr<VectorReader>> Open(const std::filesystem::path& path);
  // Float tensors, in storage order.
  const std::vector<std::string>& TensorNames() const { return names_; }
  bool Has(std::string_view name) const;
  const std::vector<int64_t>& Shape(std::string_view name) const;
  uint64_t NumElements(std::string_view name) const;
  // The stored dtype name ("BF16"; "lowrank"/"sparse"/"sign" for compact forms).
  std::string StorageName(std::string_view name) const;
  Status Read(std::string_view name, uint64_t begin, uint64_t n, float* dst) const;
  // Drops mapped pages of a dense tensor once consumed (no-op for compact forms).
  void Release(std::string_view name, uint64_t begin, uint64_t end) const;
  const Checkpoint* dense() const { return dense_.get(); }
  const CompactVector* compact() const { return compact_.get(); }

 private:
  VectorReader() = default;
  std::unique_ptr<Checkpoint> dense_;
  std::unique_ptr<CompactVector> compact_;
  std::vector<std::string> names_;
  std::map<std::string, TensorView, std::less<>> views_;  // dense only
};

}  // namespace rvec::merge
