// Evaluation data sets: the pinned manifest of public source files (URL + SHA-256), verification,
// and `rvec data pull` downloads (HTTPS via cpp-httplib, progress bar, atomic writes).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/progress.h"
#include "base/status.h"

namespace rvec::eval {

struct DataFile {
  std::string dataset;  // "gsm8k", "sciq", "bbh", ...
  std::string path;     // relative to the data directory ("gsm8k/test.jsonl")
  std::string url;      // public source at a pinned commit; "zip:MEMBER" = inside the archive
  std::string sha256;
  uint64_t size = 0;
};

struct DataArchive {
  std::string dataset;
  std::vector<std::string> urls;  // tried in order
  std::string sha256;
  uint64_t size = 0;
};

// The evaluation data that ship with rvec (whole test sets, gzip-compressed where it pays; see
// testdata/README.md): <executable dir>/RVEC_INSTALL_DATA_REL in an installed tree, else the source
// tree's testdata/ for a build tree. Empty when neither holds any data set.
std::filesystem::path BundledDataDir();

// Every file rvec's tasks read, with its pinned source and hash.
const std::vector<DataFile>& DataManifest();
// Archives that some data sets ship in (SciQ's official SciQ.zip).
const std::vector<DataArchive>& DataArchives();
// All data set names in the manifest.
std::vector<std::string> DataSetNames();
// Maps task or data set names ("gsm8k_cot", "bbh_zeroshot", "sciq") to data set names.
StatusOr<std::vector<std::string>> DataSetsFor(const std::vector<std::string>& names);

struct PullOptions {
  std::filesystem::path data_dir;
  // When set, files are fetched from MIRROR/<path in the data directory> instead of their public
  // sources (an internal mirror, or a local server in tests); hashes are still checked.
  std::string mirror;
  bool force = false;  // re-download files that are present and valid
  double timeout_s = 120.0;
  bool show_progress = false;
};

struct PullReport {
  std::vector<std::string> downloaded;
  std::vector<std::string> already_present;
};

// Downloads the data sets (all when `datasets` is empty), verifying every SHA-256 before a file is
// renamed into place.
StatusOr<PullReport> PullData(const std::vector<std::string>& datasets, const PullOptions& options);

// Checks the present files of the data sets; returns the problems found (missing / bad hash).
// A file stored as FILE.gz is checked by the SHA-256 of its decompressed contents.
StatusOr<std::vector<std::string>> VerifyData(const std::vector<std::string>& datasets,
                                              const std::filesystem::path& data_dir);

// Extracts one member of a ZIP archive held in memory (stored or deflated entries).
StatusOr<std::string> ExtractZipMember(const std::string& zip, const std::string& member);

// GET of a URL into memory with a progress bar in bytes; http(s) only.
StatusOr<std::string> HttpGet(const std::string& url, double timeout_s, Progress* progress);

}  // namespace rvec::eval
