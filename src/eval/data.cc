// The pinned data manifest and `rvec data pull`: downloads with hash checks, ZIP extraction, atomic
// writes.
#include "eval/data.h"

#include <fmt/format.h>
#include <httplib.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <string_view>

#include "base/fs.h"
#include "base/sha256.h"

namespace rvec::eval {

namespace fs = std::filesystem;

std::filesystem::path BundledDataDir() {
  std::vector<fs::path> candidates;
  if (const fs::path exe = ExecutableDir(); !exe.empty()) {
    candidates.push_back(exe / RVEC_INSTALL_DATA_REL);
  }
  candidates.emplace_back(RVEC_SOURCE_TESTDATA);
  for (const fs::path& dir : candidates) {
    std::error_code ec;
    // A data directory holds at least the GSM8K test set (every bundled tree does).
    if (DataFileExists(dir / "gsm8k" / "test.jsonl")) return fs::weakly_canonical(dir, ec);
  }
  return {};
}

namespace {

// The manifest is generated from the full upstream files (byte copies of the sources named in
// testdata/*/SOURCE.md). Each data set's files come from one source at a pinned commit, so a file
// is its name under both the data set's directory and that source's URL prefix, its SHA-256 and
// its size.
struct PinnedFile {
  std::string_view name;
  std::string_view sha256;
  uint64_t size;
};

// BBH pins two files per task; one row per task keeps the pair together.
struct BbhTaskFiles {
  std::string_view task;
  struct {
    std::string_view sha256;
    uint64_t size;
  } docs, cot_prompt;
};

// GSM8K: the test and train splits of the official repository.
constexpr std::string_view kGsm8kSource =
    "https://raw.githubusercontent.com/openai/grade-school-math/"
    "3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/";
constexpr PinnedFile kGsm8kFiles[] = {
    {"test.jsonl", "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14", 749738},
    {"train.jsonl", "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465", 4166206},
};

// SciQ: members of the official SciQ.zip (see DataArchives()).
constexpr std::string_view kSciqSource = "zip:SciQ dataset-2 3/";
constexpr PinnedFile kSciqFiles[] = {
    {"test.json", "7340983c427dc2ffd3dccf1adb758b6cdc9455bd22bf3db0ddf6ffcae0452006", 879642},
    {"valid.json", "b201bc1c002b31cabc8581d05f8a5ce9d115b9ad4f7b4a428c00c3935d67a6ec", 869776},
    {"train.json", "488c26303a8d9a5819430db554006c35560e3e195e1d67d1b35fb8fac5e00c41", 10233008},
    {"license.txt", "6f2f301537b1f94b025af00467a9c3412bc249a40b4075a6d31b1c21ad7359e3", 262},
    {"readme.txt", "67c00d15da00e2ba4045930f81b051bbfab38c956dad0bb3d0c697a47efb69ec", 1894},
};

// HumanEval: the official problems file, kept gzip-compressed as upstream ships it.
constexpr std::string_view kHumanEvalSource =
    "https://raw.githubusercontent.com/openai/human-eval/"
    "6d43fb980f9fee3c892a914eda09951f772ad10d/data/";
constexpr PinnedFile kHumanEvalFiles[] = {
    {"HumanEval.jsonl.gz", "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
     44877},
};

// GSM-Plus: the testmini split.
constexpr std::string_view kGsmPlusSource =
    "https://raw.githubusercontent.com/qtli/GSM-Plus/"
    "3474129ec12fcd3e8ac08cb037aca1928efca98c/dataset/";
constexpr PinnedFile kGsmPlusFiles[] = {
    {"gsmplus_testmini.jsonl", "6653b4b941956da12ba0af2eae660800db13a901123553b163b77be2d20eb7d5",
     3128556},
};

// GSM-Symbolic: the P2 variant.
constexpr std::string_view kGsmSymbolicSource =
    "https://raw.githubusercontent.com/apple/ml-gsm-symbolic/"
    "b6a1625025fc857300203bac9f617e5d8ec99f65/generated_data/";
constexpr PinnedFile kGsmSymbolicFiles[] = {
    {"GSM_p2.jsonl", "f7d6701619f824f4fedd0a914b1cfbc0fd31f61617887aa7fe318d018dda3f29", 3995468},
};

// MATH-500, AIME 2024, AMC 2023, Minerva Math and OlympiadBench, as math-evaluation-harness ships
// them.
constexpr std::string_view kMathSource =
    "https://raw.githubusercontent.com/Zhuofeng-Li/math-evaluation-harness/"
    "1b9885d817962a8494728376625ce6605772edbd/data/";
constexpr PinnedFile kMathFiles[] = {
    {"math500/test.jsonl", "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
     446564},
    {"aime24/test.jsonl", "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac",
     156944},
    {"amc23/test.jsonl", "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4", 27631},
    {"minerva_math/test.jsonl", "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2",
     247267},
    {"olympiadbench/test.jsonl", "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416",
     1493870},
};

// BIG-Bench Hard: per task, its documents (bbh/TASK.json) and its chain-of-thought few-shot prompt
// (cot-prompts/TASK.txt).
constexpr std::string_view kBbhSource =
    "https://raw.githubusercontent.com/suzgunmirac/BIG-Bench-Hard/"
    "9ee07bd481feebf959a6b59d61ea57bdcf30964d/";
constexpr BbhTaskFiles kBbhTasks[] = {
    {"boolean_expressions",
     {"ea6c754ec005e2d3f2d085d349a740f593b5764f32ea4638ffed4cfc0061b12a", 17172},
     {"685affba97425cdf3549d5d313ba876caed2fa7c8a4cf1ea7549faf22179609d", 1891}},
    {"causal_judgement",
     {"6e8bca44dd402008ed41c07a3d0a1d5e7b03db7001a7e002fcdf4c60985ea081", 202943},
     {"14377e36cccb084b7d0fe73988d08696f7675d712b02d3ae1f5f7f12c77028ea", 3763}},
    {"date_understanding",
     {"0148d4ac5fca05b2f82373e5fef7208e15363b9c6079493034d77b3dab496bf5", 61760},
     {"a0a13c392f689a1828f5f6ffb9dee3d44483794490da5d92f0e2a723787b1cfb", 1277}},
    {"disambiguation_qa",
     {"cf06df9ebf911b883671cb1b35d3fbd1a1c306b19b9e9a012407e596c85fe8c6", 85255},
     {"794fd259297972a4c963a5d13a84dc221edde460de27fa5d8fd64299a2001597", 3678}},
    {"dyck_languages",
     {"3f9badedf15c2be1ce53d94fdf016299bb30ba231ef087ab9f51a7ed6d0bdc25", 43814},
     {"b0836603007ec659ed685458647fb6d7543543304e7aca909b995d0c3aff22b2", 2515}},
    {"formal_fallacies",
     {"4c1adb664821157faade1d4153685403afcc02648f3c180a608a18f17f589629", 145562},
     {"10c06cc362520e9b8dddfc4861e263ff668d228a52d958dcc69f09f1d224935a", 4587}},
    {"geometric_shapes",
     {"07be68a124420caa2ebc0b2c858ad79fc55c5c8806170e496e1e17ebfb11f31c", 77242},
     {"f36d9893507eb518d84f388fb677dc0226c74a98873700de0b556548d65d3f76", 4941}},
    {"hyperbaton",
     {"b6d7f55c75f5d02f2987a4f3123802dfa093872089a56a334144aae8a7264fdc", 44706},
     {"19898af91c35cb26bbdf5fdb6f6fb17e138677250332e2994005625ffb50b261", 3224}},
    {"logical_deduction_five_objects",
     {"d2df31394b903b7f0e085d42a69572a092987856eac076799017d70ef266fa8f", 155477},
     {"4ed65246c0c1c4b0b4053d784181892b842bce19cf4358c976f34b1a434ef034", 2615}},
    {"logical_deduction_seven_objects",
     {"2896c7e3482eea318dd37bcc370d24ec3cc91e8374c1784287b5dbd38a529e33", 198404},
     {"4ed65246c0c1c4b0b4053d784181892b842bce19cf4358c976f34b1a434ef034", 2615}},
    {"logical_deduction_three_objects",
     {"e590fae72e3a6041fbd23bd8ff6b74baf44ca563f6ba40a041c55e7b867c1681", 112213},
     {"4ed65246c0c1c4b0b4053d784181892b842bce19cf4358c976f34b1a434ef034", 2615}},
    {"movie_recommendation",
     {"a8b53a87ee21a865b7248e694f388a9b8f7cf6b839b11d44796a2dd3fc088983", 57684},
     {"cdf765634713b057091d541b4773dd2c998f81447b0bd8564ae70be4cdf3f5d0", 2231}},
    {"multistep_arithmetic_two",
     {"c9d5a6433c9b78256422a15c78463949c8bec8d85607aa28b52d7234ad4a8595", 18325},
     {"a546e0b7cde09037bc144ae5c32c9cf78dafdfac929ae76e2051b2dd8f3671ce", 2496}},
    {"navigate",
     {"b7944dfd3c81da5c4815bd75b00d6fa3c64140823498e78ed496f4c3d36f7f0d", 55163},
     {"dc2fd733f1867b8c79685f15b83746064534a94bf73468341c2a9dd335be22fc", 2257}},
    {"object_counting",
     {"8acef14dbbdd40d2326ef7755750b6b5fe919fef06276af1bab3f1c297f022ff", 35890},
     {"e51ffc03fd713a13a379a6c938a523dfc1c2f384f2a8447bd7a12d4458f18833", 1528}},
    {"penguins_in_a_table",
     {"bb87ee449698eee51215e025a453b1bcb2f5e6589c2063b2c79e68b8f0655228", 74516},
     {"33be137e76c2a6af0bbacd17a8e7a92801886c0202a45e35ea9c2a88c1f26d51", 2496}},
    {"reasoning_about_colored_objects",
     {"0a8850cf95166020fce7a78244026ceedd7ea839302471512b4f8744e85a6a49", 98694},
     {"e4ea02d05b13e8ed9ccc3b0d878bc4df4c5a6fb76c65d39d48d6244f7ff0b9d5", 2405}},
    {"ruin_names",
     {"b6f723aef2bafdd4c7bfc3c7e0329c7e8a8279391a609969c8ed76c9319f5f7f", 53178},
     {"731446c6c66bb5258677af1417b599a6a5539be6d74a5afc02cf7a716444ea54", 3591}},
    {"salient_translation_error_detection",
     {"becf3eb8dd53c821a555ecd5c1334ecd93eb25f980e63be963c518e7138de5da", 286443},
     {"2c8367f75092202cc507fdbfaaf037b1c1eed38e91289084439738367f0785f7", 6251}},
    {"snarks",
     {"54a0661fe2de06167645a4965e6bcf963c4ba307e76262a7c750998b0e3d0d0e", 42646},
     {"35084a2a0b86bc4008ab206b838c0b97dd425897dd72198137c3cefc499c0960", 3224}},
    {"sports_understanding",
     {"63ca262858f6176864515cd8cf53cdaa40839ebecc155b726d77930855d167bf", 28617},
     {"2058a9bed717a6edb8ca2f815e88851436a4ee14c8b0d504ccf464865c6d0295", 931}},
    {"temporal_sequences",
     {"92a1189faaa84aacc4c405aaa13f13f48c2992eb884772eedb622505252baef5", 148176},
     {"3e7ebf1e20abe3e219dc6514dcb7474d82db1b2c66acc733cd30af2e9e0b64b0", 3133}},
    {"tracking_shuffled_objects_five_objects",
     {"2063a46a4fb484236ed4310523606543a3e1dd4a4dc34eda65d407910ece25a5", 169722},
     {"2ef54cb2a72052adc3484a76209cb6a6535f194d677e79bcec2e2e71cf3768af", 2714}},
    {"tracking_shuffled_objects_seven_objects",
     {"b59fd05b850c37cf57cb514ae1e6975c00b1638ade2291722056b2af3c54084d", 214906},
     {"2ef54cb2a72052adc3484a76209cb6a6535f194d677e79bcec2e2e71cf3768af", 2714}},
    {"tracking_shuffled_objects_three_objects",
     {"546cc7bf10c6a01a6a4c17ae28a4966485f21f29fd5d111f37858ec78e354f6b", 128736},
     {"2ef54cb2a72052adc3484a76209cb6a6535f194d677e79bcec2e2e71cf3768af", 2714}},
    {"web_of_lies",
     {"3e60323f8514a107fdb4edf35f8832a9171c5a09c0eaa47823559de905e8ab8b", 52964},
     {"c8025ca65ab7f0897c243504c863bda043d04b6e873777536743e94023c929d0", 3055}},
    {"word_sorting",
     {"2a6132d2c99f00d0d2eb1113ac6b4a918bd969d863c48749210d969713db8d43", 66300},
     {"a2cdbcfe23abaa97b9787f7c03dbf49b1cfd0ff9e63197b7884bb5cd5a096ca6", 2274}},
};

DataFile MakeDataFile(std::string_view dataset, std::string_view source, std::string_view name,
                      std::string_view sha256, uint64_t size) {
  return {std::string(dataset), fmt::format("{}/{}", dataset, name),
          fmt::format("{}{}", source, name), std::string(sha256), size};
}

void AddFiles(std::string_view dataset, std::string_view source, std::span<const PinnedFile> files,
              std::vector<DataFile>* out) {
  for (const PinnedFile& f : files) {
    out->push_back(MakeDataFile(dataset, source, f.name, f.sha256, f.size));
  }
}

// All task documents first, then all prompts: the order `rvec data pull` has always fetched them.
void AddBbhFiles(std::vector<DataFile>* out) {
  for (const BbhTaskFiles& t : kBbhTasks) {
    out->push_back(MakeDataFile("bbh", kBbhSource, fmt::format("bbh/{}.json", t.task),
                                t.docs.sha256, t.docs.size));
  }
  for (const BbhTaskFiles& t : kBbhTasks) {
    out->push_back(MakeDataFile("bbh", kBbhSource, fmt::format("cot-prompts/{}.txt", t.task),
                                t.cot_prompt.sha256, t.cot_prompt.size));
  }
}

}  // namespace

const std::vector<DataFile>& DataManifest() {
  static const std::vector<DataFile> kFiles = [] {
    std::vector<DataFile> files;
    AddFiles("gsm8k", kGsm8kSource, kGsm8kFiles, &files);
    AddBbhFiles(&files);
    AddFiles("sciq", kSciqSource, kSciqFiles, &files);
    AddFiles("humaneval", kHumanEvalSource, kHumanEvalFiles, &files);
    AddFiles("gsm_plus", kGsmPlusSource, kGsmPlusFiles, &files);
    AddFiles("gsm_symbolic", kGsmSymbolicSource, kGsmSymbolicFiles, &files);
    AddFiles("math", kMathSource, kMathFiles, &files);
    return files;
  }();
  return kFiles;
}

const std::vector<DataArchive>& DataArchives() {
  static const std::vector<DataArchive> kArchives = {
      {"sciq",
       {"https://ai2-public-datasets.s3.amazonaws.com/sciq/SciQ.zip",
        "https://raw.githubusercontent.com/EleutherAI/gpt-neox/"
        "49e7b2c7ac5ab67b89400dff7cc9d1cc40bc9422/data/sciq/SciQ.zip"},
       "7f3312f6ac6b09970b32942d106a8c44ec0dad46a0369f17d635aff8e348a87c",
       2821345},
  };
  return kArchives;
}

std::vector<std::string> DataSetNames() {
  std::vector<std::string> names;
  for (const auto& f : DataManifest()) {
    if (std::find(names.begin(), names.end(), f.dataset) == names.end()) names.push_back(f.dataset);
  }
  return names;
}

StatusOr<std::vector<std::string>> DataSetsFor(const std::vector<std::string>& names) {
  const auto all = DataSetNames();
  if (names.empty()) return all;
  std::vector<std::string> out;
  for (const auto& n : names) {
    std::string ds;
    for (const auto& d : all) {
      // Exact data set name, or a task named after it ("gsm8k_cot" -> gsm8k, "bbh_zeroshot" ->
      // bbh).
      if (n == d || (n.rfind(d + "_", 0) == 0 && ds.size() < d.size())) ds = d;
    }
    if (n == "humaneval_instruct" || n.rfind("humaneval", 0) == 0) ds = "humaneval";
    // The competition-math tasks share one data set, `math`.
    for (const char* m : {"math500", "aime24", "amc23", "minerva_math", "olympiadbench"}) {
      if (n == m) ds = "math";
    }
    if (ds.empty()) {
      std::string known;
      for (const auto& d : all) known += (known.empty() ? "" : ", ") + d;
      return InvalidArgument("unknown data set or task '{}'; data sets: {}", n, known);
    }
    if (std::find(out.begin(), out.end(), ds) == out.end()) out.push_back(ds);
  }
  return out;
}

StatusOr<std::string> HttpGet(const std::string& url, double timeout_s, Progress* progress) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return InvalidArgument("bad URL '{}'", url);
  const size_t slash = url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, slash);
  const std::string path = slash == std::string::npos ? "/" : url.substr(slash);
  httplib::Client client(origin);
  client.set_follow_location(true);
  const auto t = std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
  client.set_connection_timeout(t);
  client.set_read_timeout(t);
  std::string body;
  bool sized = false;
  auto res = client.Get(
      path,
      [&](const httplib::Response& r) {
        if (progress && !sized && r.has_header("Content-Length")) {
          progress->SetTotal(std::stoull(r.get_header_value("Content-Length")));
          sized = true;
        }
        return true;
      },
      [&](const char* data, size_t len) {
        body.append(data, len);
        if (progress) progress->Advance(len);
        return true;
      });
  if (!res) return IoError("GET {}: {}", url, httplib::to_string(res.error()));
  if (res->status != 200) return IoError("GET {}: HTTP {}", url, res->status);
  return body;
}

namespace {

uint32_t Le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
uint16_t Le16(const std::string& s, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) |
                               (static_cast<unsigned char>(s[at + 1]) << 8));
}

Status CheckFile(const std::string& contents, const DataFile& f, const std::string& source) {
  const std::string sha = Sha256Hex(contents);
  if (sha != f.sha256) {
    return DataLoss("{} from {}: SHA-256 {} does not match the pinned {} (refusing to install it)",
                    f.path, source, sha, f.sha256);
  }
  return OkStatus();
}

// A failed download, in one line: what was tried, why it failed, that nothing was written, and
// how to go on without a network.
Status DownloadFailed(const Status& cause, const fs::path& data_dir) {
  if (cause.code() != StatusCode::kIo) return cause;
  std::string bundled;
  if (const fs::path b = BundledDataDir(); !b.empty()) {
    bundled = fmt::format(" (the test sets that ship with rvec are in {})", b.string());
  }
  return IoError(
      "{} — no network? Nothing was written to {}. Offline, pass --data-dir DIR (or set "
      "RVEC_DATA) to a directory that holds the data{}",
      cause.message(), data_dir.string(), bundled);
}

}  // namespace

StatusOr<std::string> ExtractZipMember(const std::string& zip, const std::string& member) {
  if (zip.size() < 22) return DataLoss("zip: too small");
  size_t eocd = std::string::npos;
  for (size_t i = zip.size() - 22 + 1; i-- > 0 && zip.size() - i <= 22 + 65535;) {
    if (Le32(zip, i) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) return DataLoss("zip: no end of central directory");
  const size_t entries = Le16(zip, eocd + 10);
  size_t p = Le32(zip, eocd + 16);
  for (size_t e = 0; e < entries; ++e) {
    if (p + 46 > zip.size() || Le32(zip, p) != 0x02014b50)
      return DataLoss("zip: bad central entry");
    const uint16_t method = Le16(zip, p + 10);
    const uint32_t csize = Le32(zip, p + 20), usize = Le32(zip, p + 24);
    const uint16_t nlen = Le16(zip, p + 28), xlen = Le16(zip, p + 30), clen = Le16(zip, p + 32);
    const uint32_t local = Le32(zip, p + 42);
    const std::string name = zip.substr(p + 46, nlen);
    p += 46 + nlen + xlen + clen;
    if (name != member) continue;
    if (local + 30 > zip.size() || Le32(zip, local) != 0x04034b50) {
      return DataLoss("zip: bad local header for {}", member);
    }
    const size_t data = local + 30 + Le16(zip, local + 26) + Le16(zip, local + 28);
    if (data + csize > zip.size()) return DataLoss("zip: {} is truncated", member);
    if (method == 0) return zip.substr(data, csize);
    if (method != 8) return Unimplemented("zip: {} uses compression method {}", member, method);
    std::string out(usize, '\0');
    z_stream zs;
    std::memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return Internal("zlib init failed");
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zip.data() + data));
    zs.avail_in = csize;
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = usize;
    const int rc = inflate(&zs, Z_FINISH);
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || zs.total_out != usize) {
      return DataLoss("zip: {} does not inflate to its recorded size", member);
    }
    return out;
  }
  return NotFound("zip: no member '{}'", member);
}

StatusOr<PullReport> PullData(const std::vector<std::string>& datasets,
                              const PullOptions& options) {
  ASSIGN_OR_RETURN(std::vector<std::string> wanted, DataSetsFor(datasets));
  PullReport report;
  std::map<std::string, std::string> archives;  // dataset -> zip bytes, fetched once
  for (const DataFile& f : DataManifest()) {
    if (std::find(wanted.begin(), wanted.end(), f.dataset) == wanted.end()) continue;
    const fs::path dest = options.data_dir / f.path;
    if (!options.force && fs::exists(dest)) {
      auto have = ReadFileToString(dest);
      if (have.ok() && Sha256Hex(*have) == f.sha256) {
        report.already_present.push_back(f.path);
        continue;
      }
    }
    std::string contents, source;
    if (!options.mirror.empty()) {
      source = options.mirror + "/" + f.path;
      Progress progress(f.path, f.size, options.show_progress, "B");
      auto got = HttpGet(source, options.timeout_s, &progress);
      progress.Finish();
      if (!got.ok()) return DownloadFailed(got.status(), options.data_dir);
      contents = std::move(got).value();
    } else if (f.url.rfind("zip:", 0) == 0) {
      if (!archives.count(f.dataset)) {
        const DataArchive* archive = nullptr;
        for (const auto& a : DataArchives()) {
          if (a.dataset == f.dataset) archive = &a;
        }
        if (!archive) return Internal("no archive for {}", f.dataset);
        Status last;
        std::string failures;
        for (const auto& url : archive->urls) {
          Progress progress(f.dataset + " archive", archive->size, options.show_progress, "B");
          auto zip = HttpGet(url, options.timeout_s, &progress);
          progress.Finish();
          if (!zip.ok()) {
            failures += (failures.empty() ? "" : "; ") + zip.status().message();
            last = IoError("{}", failures);  // every URL tried, in one line
            continue;
          }
          if (Sha256Hex(*zip) != archive->sha256) {
            last = DataLoss("{}: SHA-256 does not match the pinned {}", url, archive->sha256);
            continue;
          }
          archives[f.dataset] = std::move(zip).value();
          break;
        }
        if (!archives.count(f.dataset)) return DownloadFailed(last, options.data_dir);
      }
      source = "archive member " + f.url.substr(4);
      ASSIGN_OR_RETURN(contents, ExtractZipMember(archives[f.dataset], f.url.substr(4)));
    } else {
      source = f.url;
      Progress progress(f.path, f.size, options.show_progress, "B");
      auto got = HttpGet(source, options.timeout_s, &progress);
      progress.Finish();
      if (!got.ok()) return DownloadFailed(got.status(), options.data_dir);
      contents = std::move(got).value();
    }
    RETURN_IF_ERROR(CheckFile(contents, f, source));
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
    if (ec) return IoError("{}: cannot create: {}", dest.parent_path().string(), ec.message());
    RETURN_IF_ERROR(WriteFileAtomic(dest, contents));
    report.downloaded.push_back(f.path);
  }
  return report;
}

StatusOr<std::vector<std::string>> VerifyData(const std::vector<std::string>& datasets,
                                              const fs::path& data_dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> wanted, DataSetsFor(datasets));
  std::vector<std::string> problems;
  for (const DataFile& f : DataManifest()) {
    if (std::find(wanted.begin(), wanted.end(), f.dataset) == wanted.end()) continue;
    const fs::path p = data_dir / f.path;
    if (!DataFileExists(p)) {
      problems.push_back(p.string() + ": missing");
      continue;
    }
    ASSIGN_OR_RETURN(std::string contents, ReadDataFile(p));
    if (Sha256Hex(contents) != f.sha256) problems.push_back(p.string() + ": SHA-256 mismatch");
  }
  return problems;
}

}  // namespace rvec::eval
