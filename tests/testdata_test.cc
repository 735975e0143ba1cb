// The vendored data in testdata/ are byte-identical to their upstream files: every file listed in
// testdata/SHA256SUMS reads back (plain or gzip-compressed) with the upstream SHA-256, every
// data file in the folder is listed, and each folder carries its SOURCE.md.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include "base/fs.h"
#include "base/sha256.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;

// Always the repository's own folder: this test is about what the repository ships.
fs::path Vendored() { return fs::path(RVEC_SOURCE_DIR) / "testdata"; }

TEST(Testdata, EveryVendoredFileHasItsUpstreamHash) {
  auto sums = ReadFileToString(Vendored() / "SHA256SUMS");
  ASSERT_TRUE(sums.ok()) << sums.status().message();
  std::istringstream in(*sums);
  std::string line;
  std::set<std::string> listed;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ASSERT_GT(line.size(), 66u) << "bad SHA256SUMS line: " << line;
    const std::string sha = line.substr(0, 64), path = line.substr(66);
    listed.insert(path);
    auto contents = ReadDataFile(Vendored() / path);
    ASSERT_TRUE(contents.ok()) << contents.status().message();
    EXPECT_EQ(Sha256Hex(*contents), sha) << path << " differs from its upstream file";
  }
  EXPECT_GE(listed.size(), 80u);
  // Nothing vendored goes unchecked.
  for (const auto& e : fs::recursive_directory_iterator(Vendored())) {
    if (!e.is_regular_file()) continue;
    std::string rel = fs::relative(e.path(), Vendored()).string();
    const std::string name = e.path().filename().string();
    if (name == "SOURCE.md" || name == "README.md" || name == "SHA256SUMS") continue;
    if (rel.size() > 3 && rel.ends_with(".gz") && !listed.count(rel)) rel.resize(rel.size() - 3);
    EXPECT_TRUE(listed.count(rel)) << rel << " is in testdata/ but not in testdata/SHA256SUMS";
  }
  for (const auto& e : fs::directory_iterator(Vendored())) {
    if (e.is_directory()) {
      EXPECT_TRUE(fs::exists(e.path() / "SOURCE.md")) << e.path() << " has no SOURCE.md";
    }
  }
}

}  // namespace
}  // namespace rvec
