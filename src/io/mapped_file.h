// Read-only memory mapping of a whole file, with hints to prefetch and to drop pages once used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "base/status.h"

namespace rvec {

class MappedFile {
 public:
  static StatusOr<MappedFile> Open(const std::filesystem::path& path);
  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // MADV_WILLNEED on a byte range (rounded to pages); harmless if it fails.
  void Prefetch(uint64_t offset, uint64_t length) const;
  // MADV_DONTNEED on a byte range, so streaming over a large model keeps resident memory small.
  void Release(uint64_t offset, uint64_t length) const;

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace rvec
