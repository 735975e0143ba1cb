// File helpers: whole-file reads, and outputs that appear only when complete (temp sibling +
// rename).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/status.h"

namespace rvec {

StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

// Reads a data file that may be stored gzip-compressed: `path` itself if it exists, else
// `path` + ".gz" decompressed (the vendored data keep large files compressed). The error names
// both candidates when neither exists, and the file when the gzip stream is corrupt.
StatusOr<std::string> ReadDataFile(const std::filesystem::path& path);
// True when ReadDataFile(path) would find a file (plain or ".gz").
bool DataFileExists(const std::filesystem::path& path);
// Decompresses a gzip stream held in memory; `label` names it in errors.
StatusOr<std::string> GunzipString(const std::string& gz, const std::string& label);

// Writes `contents` to a temporary sibling, fsyncs, and renames over `path`.
Status WriteFileAtomic(const std::filesystem::path& path, const std::string& contents);

// An output (file or directory) built under a hidden temporary sibling and renamed into place
// by Commit(). If the object is destroyed without Commit(), the temporary is removed, so a failed
// or interrupted run never leaves a half-written output that looks valid.
class PendingOutput {
 public:
  // Fails if `final_path` exists and `force` is false. `is_directory` creates the temp directory.
  static StatusOr<PendingOutput> Create(const std::filesystem::path& final_path, bool force,
                                        bool is_directory);
  PendingOutput(PendingOutput&& other) noexcept;
  PendingOutput& operator=(PendingOutput&& other) noexcept;
  ~PendingOutput();

  const std::filesystem::path& temp_path() const { return temp_path_; }
  const std::filesystem::path& final_path() const { return final_path_; }

  // Renames the temporary into place (replacing an existing output only when force was given).
  Status Commit();

 private:
  PendingOutput() = default;
  std::filesystem::path final_path_;
  std::filesystem::path temp_path_;
  bool force_ = false;
  bool committed_ = true;
};

// Removes the temporary siblings (".NAME.rvec-tmp-PID-*") of `final_path` that a killed rvec
// process left behind, when process PID no longer runs; PendingOutput::Create calls it, so a rerun
// cleans up after a crash. Returns one line per removal, also queued for TakeCleanupNotes().
std::vector<std::string> RemoveStaleTempSiblings(const std::filesystem::path& final_path);
// The removal lines queued since the last call (the CLI prints them as notes).
std::vector<std::string> TakeCleanupNotes();

// RVEC test data root: env RVEC_TEST_DATA, else `fallback` (the repository's testdata/).
std::filesystem::path TestDataDir(const std::string& fallback);

// The directory of the running executable (from /proc/self/exe); empty if it cannot be read.
std::filesystem::path ExecutableDir();

}  // namespace rvec
