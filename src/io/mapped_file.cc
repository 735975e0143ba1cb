// Read-only whole-file memory mapping with madvise hints.
#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace rvec {

namespace {

uint64_t PageSize() {
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

// Widens [offset, offset + length) to whole pages inside the mapping; false when it is empty.
bool PageRange(uint64_t size, uint64_t offset, uint64_t length, uint64_t* begin, uint64_t* len) {
  if (offset >= size || length == 0) return false;
  const uint64_t end = (length > size - offset) ? size : offset + length;
  const uint64_t page = PageSize();
  *begin = offset / page * page;
  *len = end - *begin;
  return true;
}

}  // namespace

StatusOr<MappedFile> MappedFile::Open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound("{}: no such file", path.string());
    return IoError("{}: cannot open: {}", path.string(), std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("{}: cannot stat: {}", path.string(), std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("{}: is a directory, expected a file", path.string());
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("{}: not a regular file", path.string());
  }
  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<uint64_t>(st.st_size);
  if (file.size_ > 0) {
    // MAP_PRIVATE + PROT_READ: a concurrent writer truncating the file is the only way to fault.
    void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return IoError("{}: cannot map {} bytes: {}", path.string(), file.size_, std::strerror(err));
    }
    file.data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::Prefetch(uint64_t offset, uint64_t length) const {
  uint64_t begin, len;
  if (data_ == nullptr || !PageRange(size_, offset, length, &begin, &len)) return;
  ::madvise(const_cast<uint8_t*>(data_) + begin, len, MADV_WILLNEED);
}

void MappedFile::Release(uint64_t offset, uint64_t length) const {
  uint64_t begin, len;
  if (data_ == nullptr || !PageRange(size_, offset, length, &begin, &len)) return;
  // The mapping is read-only and file-backed, so dropping pages (even ones shared with a
  // neighbouring tensor) never loses data: a later read faults them back in from the file.
  ::madvise(const_cast<uint8_t*>(data_) + begin, len, MADV_DONTNEED);
}

}  // namespace rvec
