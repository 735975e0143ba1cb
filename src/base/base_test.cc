// Unit tests for base: Status, scalar dtype conversions, threads, SHA-256, pending outputs,
// transparent gzip data files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/dtype.h"
#include "base/fs.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/threading.h"

namespace rvec {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgument("{} is odd", x);
  return x / 2;
}

Status UseHalf(int x, int* out) {
  ASSIGN_OR_RETURN(*out, Half(x));
  return OkStatus();
}

TEST(Status, PropagatesErrors) {
  int v = 0;
  EXPECT_TRUE(UseHalf(4, &v).ok());
  EXPECT_EQ(v, 2);
  const Status s = UseHalf(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.WithContext("file.bin").message(), "file.bin: 3 is odd");
}

TEST(DType, NamesRoundTrip) {
  for (const char* n : {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL",
                        "F8_E4M3", "F8_E5M2"}) {
    auto d = ParseDType(n);
    ASSERT_TRUE(d.has_value()) << n;
    EXPECT_EQ(DTypeName(*d), n);
  }
  EXPECT_FALSE(ParseDType("F128").has_value());
  EXPECT_EQ(ParseUserDType("bfloat16"), DType::kBF16);
}

// Every bf16 and f16 bit pattern widens exactly and narrows back to itself.
TEST(DType, Bf16AndF16RoundTripAllPatterns) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const uint16_t h = static_cast<uint16_t>(b);
    const float fb = BF16ToF32(h);
    if (std::isnan(fb)) {
      EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(fb))));
    } else {
      EXPECT_EQ(F32ToBF16(fb), h);
    }
    const float fh = F16ToF32(h);
    if (std::isnan(fh)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(fh))));
    } else {
      EXPECT_EQ(F32ToF16(fh), h) << b;
    }
  }
}

// Narrowing rounds to nearest even: compare with a double-precision reference on midpoints.
TEST(DType, F16RoundsToNearestEven) {
  for (uint32_t b = 0; b < 0x7C00; ++b) {
    const double lo = F16ToF32(static_cast<uint16_t>(b));
    const double hi = F16ToF32(static_cast<uint16_t>(b + 1));
    const float mid = static_cast<float>((lo + hi) / 2);
    if (static_cast<double>(mid) != (lo + hi) / 2) continue;  // midpoint not representable
    const uint16_t expect = (b & 1) ? static_cast<uint16_t>(b + 1) : static_cast<uint16_t>(b);
    EXPECT_EQ(F32ToF16(mid), expect) << b;
  }
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);  // rounds up to infinity
  EXPECT_EQ(F32ToF16(65519.0f), 0x7BFF);
  EXPECT_EQ(F32ToF16(1e-8f), 0x0000);
  EXPECT_EQ(F32ToBF16(1.0f + 1.0f / 256), 0x3F80);  // tie to even
}

TEST(DType, F8AllPatterns) {
  for (uint32_t b = 0; b < 256; ++b) {
    const float e4 = F8E4M3ToF32(static_cast<uint8_t>(b));
    if (std::isnan(e4)) {
      EXPECT_TRUE((b & 0x7F) == 0x7F);
    } else {
      EXPECT_EQ(F32ToF8E4M3(e4), b);
    }
    const float e5 = F8E5M2ToF32(static_cast<uint8_t>(b));
    if (!std::isnan(e5)) {
      EXPECT_EQ(F32ToF8E5M2(e5), b);
    }
  }
  EXPECT_EQ(F8E4M3ToF32(0x7E), 448.0f);
  EXPECT_TRUE(std::isnan(F8E4M3ToF32(F32ToF8E4M3(1000.0f))));
  EXPECT_TRUE(std::isinf(F8E5M2ToF32(F32ToF8E5M2(1e6f))));
}

TEST(ThreadPool, RunsEveryTaskOnce) {
  for (size_t threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<int> hits(1000, 0);
    for (int rep = 0; rep < 5; ++rep) {
      pool.ParallelFor(hits.size(), [&](size_t t, size_t w) {
        EXPECT_LT(w, pool.NumWorkers());
        hits[t]++;
      });
    }
    for (int h : hits) EXPECT_EQ(h, 5);
  }
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string million(1000000, 'a');
  EXPECT_EQ(Sha256Hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(PendingOutput, AppearsOnlyOnCommit) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("rvec_pending_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path out = dir / "out";
  {
    auto p = PendingOutput::Create(out, false, true);
    ASSERT_TRUE(p.ok());
    std::ofstream(p->temp_path() / "x") << "partial";
  }  // dropped without commit
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 0);
  {
    auto p = PendingOutput::Create(out, false, true);
    ASSERT_TRUE(p.ok());
    std::ofstream(p->temp_path() / "x") << "done";
    ASSERT_TRUE(p->Commit().ok());
  }
  EXPECT_TRUE(fs::exists(out / "x"));
  EXPECT_EQ(PendingOutput::Create(out, false, true).status().code(), StatusCode::kAlreadyExists);
  fs::remove_all(dir);
}

TEST(PendingOutput, RemovesStaleSiblingsOfDeadProcessesOnly) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("rvec_stale_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // A child that exits at once: its pid is then (for a while) unused.
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(dead, &status, 0), dead);
  const fs::path stale = dir / (".out.rvec-tmp-" + std::to_string(dead) + "-0000abcd");
  const fs::path stale_old = dir / (".out.rvec-tmp-" + std::to_string(dead) + "-0000abcd.old");
  const fs::path live = dir / (".out.rvec-tmp-" + std::to_string(getppid()) + "-00001234");
  const fs::path other = dir / (".other.rvec-tmp-" + std::to_string(dead) + "-0000abcd");
  for (const fs::path& p : {stale, stale_old, live, other}) {
    fs::create_directories(p);
    std::ofstream(p / "model.safetensors") << "partial";
  }
  TakeCleanupNotes();
  auto p = PendingOutput::Create(dir / "out", false, true);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_FALSE(fs::exists(stale_old));
  EXPECT_TRUE(fs::exists(live)) << "a running process's temporary was removed";
  EXPECT_TRUE(fs::exists(other)) << "another output's temporary was removed";
  const auto notes = TakeCleanupNotes();
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("no longer runs"), std::string::npos) << notes[0];
  EXPECT_TRUE(TakeCleanupNotes().empty());
  fs::remove_all(dir);
}

// A gzip member made with zlib's own deflate (the reader must not depend on how it was made).
std::string Gzip(const std::string& data) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(DataFile, ReadsPlainOrGzipTransparently) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("rvec_datafile_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Incompressible enough to need several output-buffer growths.
  std::string text;
  uint32_t x = 12345;
  for (int i = 0; i < 400000; ++i) {
    x = x * 1103515245u + 12345u;
    text.push_back(static_cast<char>(x >> 24));
  }
  ASSERT_TRUE(WriteFileAtomic(dir / "a.jsonl.gz", Gzip(text)).ok());
  EXPECT_TRUE(DataFileExists(dir / "a.jsonl"));
  auto got = ReadDataFile(dir / "a.jsonl");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, text);

  // A plain file wins over its compressed sibling.
  ASSERT_TRUE(WriteFileAtomic(dir / "a.jsonl", "plain").ok());
  EXPECT_EQ(*ReadDataFile(dir / "a.jsonl"), "plain");

  // Concatenated members decompress to the concatenation, as gzip -d does.
  ASSERT_TRUE(WriteFileAtomic(dir / "c.txt.gz", Gzip("first ") + Gzip("second")).ok());
  EXPECT_EQ(*ReadDataFile(dir / "c.txt"), "first second");

  // An empty payload is still a valid file.
  ASSERT_TRUE(WriteFileAtomic(dir / "e.txt.gz", Gzip("")).ok());
  EXPECT_EQ(*ReadDataFile(dir / "e.txt"), "");

  // Truncated: a clear error naming the compressed file.
  const std::string gz = Gzip(text);
  ASSERT_TRUE(WriteFileAtomic(dir / "t.json.gz", gz.substr(0, gz.size() / 2)).ok());
  auto bad = ReadDataFile(dir / "t.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("t.json.gz"), std::string::npos);

  // Not gzip at all.
  ASSERT_TRUE(WriteFileAtomic(dir / "n.json.gz", "not gzip").ok());
  EXPECT_FALSE(ReadDataFile(dir / "n.json").ok());

  // Missing: both names in the message.
  EXPECT_FALSE(DataFileExists(dir / "missing.json"));
  auto missing = ReadDataFile(dir / "missing.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("missing.json.gz"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rvec
