// Replays tests/data/malformed: every case must fail to open with a message that names the case's
// file and says what is wrong (EXPECTED.tsv), and the valid seed must open.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "io/checkpoint.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The corpus lives in the source tree: src/io/ -> tests/data/.
fs::path DataDir() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "tests" / "data";
}

std::map<std::string, std::string> ExpectedMessages() {
  std::map<std::string, std::string> expected;
  std::ifstream in(DataDir() / "malformed" / "EXPECTED.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    expected[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return expected;
}

TEST(MalformedCorpusTest, EveryCaseFailsWithAClearMessage) {
  const fs::path dir = DataDir() / "malformed";
  ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing";
  const auto expected = ExpectedMessages();
  ASSERT_GE(expected.size(), 25u) << "EXPECTED.tsv lists too few cases";
  size_t seen = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name == "EXPECTED.tsv" || name == "make_corpus.py") continue;
    ++seen;
    const auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << name << " has no line in EXPECTED.tsv";
    auto ckpt = Checkpoint::Open(entry.path());
    ASSERT_FALSE(ckpt.ok()) << name << " opened but must be rejected";
    const std::string& message = ckpt.status().message();
    EXPECT_THAT(message, HasSubstr(name)) << "message must name the file: " << message;
    EXPECT_THAT(message, HasSubstr(it->second)) << name;
  }
  EXPECT_EQ(seen, expected.size()) << "EXPECTED.tsv lists cases that are not in the corpus";
}

TEST(MalformedCorpusTest, ValidSeedOpens) {
  auto ckpt = Checkpoint::Open(DataDir() / "valid" / "tiny.safetensors");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->TensorNames().size(), 12u);
}

}  // namespace
}  // namespace rvec
