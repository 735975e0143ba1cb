// Tokenizer throughput on GSM8K train text (questions and answers), single thread, in MB/s; the
// Hugging Face Rust tokenizers do about 3.3 MB/s on this text and machine.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/fs.h"
#include "text/tokenizer.h"

namespace {

std::filesystem::path DataDir() { return rvec::TestDataDir(RVEC_TEST_DATA_DEFAULT); }

struct Corpus {
  std::vector<std::string> texts;
  size_t bytes = 0;
};

const Corpus& Gsm8k() {
  static const Corpus corpus = [] {
    Corpus c;
    const auto path = DataDir() / "gsm8k" / "train.jsonl";
    auto text = rvec::ReadDataFile(path);
    if (!text.ok()) {
      std::fprintf(stderr, "%s (set RVEC_TEST_DATA)\n", text.status().message().c_str());
      std::exit(1);
    }
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      const auto row = nlohmann::json::parse(line, nullptr, false);
      if (row.is_discarded()) continue;
      for (const char* key : {"question", "answer"}) {
        c.texts.push_back(row.value(key, ""));
        c.bytes += c.texts.back().size();
      }
    }
    return c;
  }();
  return corpus;
}

const rvec::Tokenizer& Load(int which) {
  static std::vector<rvec::Tokenizer>* tokenizers = [] {
    auto* v = new std::vector<rvec::Tokenizer>;
    for (int i = 0; i < 2; ++i) {
      auto t = rvec::Tokenizer::FromModelDir(DataDir() / "qwen-tokenizer" / "qwen2.5");
      if (!t.ok()) {
        std::fprintf(stderr, "%s\n", t.status().message().c_str());
        std::exit(1);
      }
      v->push_back(std::move(t).value());
    }
    return v;
  }();
  return (*tokenizers)[which];
}

// Steady state: the per-thread word cache is warm after the first pass.
void BM_EncodeGsm8k(benchmark::State& state) {
  const Corpus& corpus = Gsm8k();
  const rvec::Tokenizer& tok = Load(0);
  size_t tokens = 0;
  for (auto _ : state) {
    for (const std::string& text : corpus.texts) {
      auto ids = tok.Encode(text);
      tokens += ids.size();
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.bytes));
  state.counters["tokens"] = static_cast<double>(tokens) / state.iterations();
}
BENCHMARK(BM_EncodeGsm8k)->Unit(benchmark::kMillisecond)->MinTime(3.0);

// Every pass starts with an empty word cache (alternating between two tokenizer instances).
void BM_EncodeGsm8kColdCache(benchmark::State& state) {
  const Corpus& corpus = Gsm8k();
  int which = 0;
  for (auto _ : state) {
    const rvec::Tokenizer& tok = Load(which);
    which ^= 1;
    for (const std::string& text : corpus.texts) {
      auto ids = tok.Encode(text);
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.bytes));
}
BENCHMARK(BM_EncodeGsm8kColdCache)->Unit(benchmark::kMillisecond)->MinTime(3.0);

void BM_DecodeGsm8k(benchmark::State& state) {
  const Corpus& corpus = Gsm8k();
  const rvec::Tokenizer& tok = Load(0);
  std::vector<std::vector<int32_t>> all;
  for (const std::string& text : corpus.texts) all.push_back(tok.Encode(text));
  for (auto _ : state) {
    for (const auto& ids : all) {
      auto text = tok.Decode(ids);
      benchmark::DoNotOptimize(text.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.bytes));
}
BENCHMARK(BM_DecodeGsm8k)->Unit(benchmark::kMillisecond);

void BM_LoadTokenizerJson(benchmark::State& state) {
  for (auto _ : state) {
    auto t = rvec::Tokenizer::FromModelDir(DataDir() / "qwen-tokenizer" / "qwen3");
    benchmark::DoNotOptimize(t.ok());
  }
}
BENCHMARK(BM_LoadTokenizerJson)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
