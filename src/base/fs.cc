// File helpers implementation.
#include "base/fs.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

namespace rvec {

namespace fs = std::filesystem;

StatusOr<std::string> ReadFileToString(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open: {}", path.string(), std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError("{}: read failed", path.string());
  return ss.str();
}

StatusOr<std::string> GunzipString(const std::string& gz, const std::string& label) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  // 15 + 32: zlib or gzip header detected automatically.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Internal("zlib: inflateInit2 failed");
  std::string out(std::max<size_t>(gz.size() * 4, 1 << 16), '\0');
  size_t produced = 0;  // zlib's own total_out restarts at every member
  size_t consumed = 0;
  int rc = Z_OK;
  for (;;) {
    if (zs.avail_in == 0 && consumed < gz.size()) {
      const size_t chunk = std::min<size_t>(gz.size() - consumed, 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data() + consumed));
      zs.avail_in = static_cast<uInt>(chunk);
      consumed += chunk;
    }
    if (produced == out.size()) out.resize(out.size() * 2);
    const size_t room = std::min<size_t>(out.size() - produced, 1u << 30);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(room);
    rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members (as `cat a.gz b.gz` makes) decompress to the concatenation.
      if (zs.avail_in == 0 && consumed == gz.size()) break;
      if (inflateReset(&zs) != Z_OK) break;
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && consumed == gz.size()) break;  // truncated
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
  }
  const std::string message = zs.msg ? zs.msg : "";
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    return DataLoss("{}: corrupt or truncated gzip data{}", label,
                    message.empty() ? std::string() : " (" + message + ")");
  }
  out.resize(produced);
  return out;
}

StatusOr<std::string> ReadDataFile(const fs::path& path) {
  std::error_code ec;
  if (fs::exists(path, ec)) return ReadFileToString(path);
  fs::path gz = path;
  gz += ".gz";
  if (!fs::exists(gz, ec)) {
    return NotFound("{}: no such file (nor {})", path.string(), gz.filename().string());
  }
  ASSIGN_OR_RETURN(std::string compressed, ReadFileToString(gz));
  return GunzipString(compressed, gz.string());
}

bool DataFileExists(const fs::path& path) {
  std::error_code ec;
  if (fs::exists(path, ec)) return true;
  fs::path gz = path;
  gz += ".gz";
  return fs::exists(gz, ec);
}

fs::path ExecutableDir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path();
}

namespace {
fs::path TempSibling(const fs::path& final_path) {
  std::random_device rd;
  const fs::path parent =
      final_path.parent_path().empty() ? fs::path(".") : final_path.parent_path();
  return parent / fmt::format(".{}.rvec-tmp-{}-{:08x}", final_path.filename().string(),
                              static_cast<long>(getpid()), rd());
}
}  // namespace

Status WriteFileAtomic(const fs::path& path, const std::string& contents) {
  const fs::path tmp = TempSibling(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("{}: cannot create: {}", tmp.string(), std::strerror(errno));
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return IoError("{}: write failed: {}", path.string(), std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return IoError("{}: flush failed: {}", path.string(), std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return IoError("{}: rename failed: {}", path.string(), std::strerror(err));
  }
  return OkStatus();
}

namespace {
std::mutex cleanup_mutex;
std::vector<std::string>& CleanupNotes() {
  static std::vector<std::string> notes;
  return notes;
}
}  // namespace

std::vector<std::string> RemoveStaleTempSiblings(const fs::path& final_path) {
  std::vector<std::string> removed;
  const fs::path parent =
      final_path.parent_path().empty() ? fs::path(".") : final_path.parent_path();
  // Built with append: GCC 12 reports a false -Wrestrict on chained operator+ here.
  std::string prefix(1, '.');
  prefix.append(final_path.filename().string()).append(".rvec-tmp-");
  std::error_code ec;
  if (final_path.filename().empty() || !fs::is_directory(parent, ec)) return removed;
  std::vector<std::pair<fs::path, long>> stale;
  for (auto it = fs::directory_iterator(parent, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos) continue;
    char* end = nullptr;
    const long pid = std::strtol(rest.c_str(), &end, 10);
    if (end != rest.c_str() + dash || pid <= 0 || pid == static_cast<long>(getpid())) continue;
    // Only when the owner is gone: a live process (or one we may not signal) keeps its files.
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    stale.emplace_back(it->path(), pid);
  }
  for (const auto& [path, pid] : stale) {
    uint64_t bytes = 0;
    if (fs::is_directory(path, ec)) {
      for (auto f = fs::recursive_directory_iterator(path, ec);
           !ec && f != fs::recursive_directory_iterator(); f.increment(ec)) {
        if (f->is_regular_file(ec)) bytes += f->file_size(ec);
      }
    } else {
      bytes = fs::file_size(path, ec);
    }
    ec.clear();
    fs::remove_all(path, ec);
    if (ec) continue;
    removed.push_back(fmt::format(
        "removed {} ({} bytes), the partial output of an rvec process ({}) that no longer runs",
        path.string(), bytes, pid));
  }
  if (!removed.empty()) {
    std::lock_guard<std::mutex> lock(cleanup_mutex);
    for (const auto& r : removed) CleanupNotes().push_back(r);
  }
  return removed;
}

std::vector<std::string> TakeCleanupNotes() {
  std::lock_guard<std::mutex> lock(cleanup_mutex);
  std::vector<std::string> out;
  out.swap(CleanupNotes());
  return out;
}

StatusOr<PendingOutput> PendingOutput::Create(const fs::path& final_path, bool force,
                                              bool is_directory) {
  std::error_code ec;
  RemoveStaleTempSiblings(final_path);
  if (fs::exists(final_path, ec) && !force) {
    return AlreadyExists("{}: output already exists (pass --force to replace it)",
                         final_path.string());
  }
  const fs::path parent =
      final_path.parent_path().empty() ? fs::path(".") : final_path.parent_path();
  if (!fs::is_directory(parent, ec)) {
    fs::create_directories(parent, ec);
    if (ec) return IoError("{}: cannot create directory: {}", parent.string(), ec.message());
  }
  PendingOutput out;
  out.final_path_ = final_path;
  out.temp_path_ = TempSibling(final_path);
  out.force_ = force;
  if (is_directory) {
    fs::create_directory(out.temp_path_, ec);
    if (ec) return IoError("{}: cannot create: {}", out.temp_path_.string(), ec.message());
  }
  out.committed_ = false;
  return out;
}

PendingOutput::PendingOutput(PendingOutput&& other) noexcept { *this = std::move(other); }

PendingOutput& PendingOutput::operator=(PendingOutput&& other) noexcept {
  if (this != &other) {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(temp_path_, ec);
    }
    final_path_ = std::move(other.final_path_);
    temp_path_ = std::move(other.temp_path_);
    force_ = other.force_;
    committed_ = other.committed_;
    other.committed_ = true;
  }
  return *this;
}

PendingOutput::~PendingOutput() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(temp_path_, ec);
  }
}

Status PendingOutput::Commit() {
  if (committed_) return Internal("{}: output committed twice", final_path_.string());
  std::error_code ec;
  fs::path old_backup;
  if (fs::exists(final_path_, ec)) {
    if (!force_) {
      return AlreadyExists("{}: output already exists (pass --force to replace it)",
                           final_path_.string());
    }
    // Move the old output aside first so that a crash between the two renames loses nothing.
    old_backup = temp_path_;
    old_backup += ".old";
    fs::rename(final_path_, old_backup, ec);
    if (ec) return IoError("{}: cannot replace: {}", final_path_.string(), ec.message());
  }
  fs::rename(temp_path_, final_path_, ec);
  if (ec) {
    if (!old_backup.empty()) fs::rename(old_backup, final_path_, ec);
    return IoError("{}: cannot rename into place: {}", final_path_.string(), ec.message());
  }
  committed_ = true;
  if (!old_backup.empty()) fs::remove_all(old_backup, ec);
  return OkStatus();
}

fs::path TestDataDir(const std::string& fallback) {
  if (const char* env = std::getenv("RVEC_TEST_DATA"); env && *env) return fs::path(env);
  return fs::path(fallback);
}

}  // namespace rvec
