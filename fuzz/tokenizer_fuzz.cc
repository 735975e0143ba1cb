// Fuzz target for the tokenizer: arbitrary bytes are encoded (never a crash, deterministic), NFC
// text round-trips through decode exactly, and streaming decode of arbitrary ids equals Decode.
// Uses the Qwen2.5 tokenizer.json[.gz] from RVEC_TEST_DATA when present, else a small built-in one.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/fs.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace {

// A byte-level vocabulary with a few merges and added tokens: enough to exercise every stage.
std::string BuiltinTokenizerJson() {
  std::string vocab;
  int id = 0;
  auto add = [&](const std::string& token) {
    if (!vocab.empty()) vocab += ",";
    std::string escaped;
    for (char c : token) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    vocab += "\"" + escaped + "\":" + std::to_string(id++);
  };
  auto byte_char = [](int b) {
    const bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    uint32_t cp = static_cast<uint32_t>(b);
    if (!direct) {
      int n = 0;
      for (int i = 0; i < b; ++i) {
        if (!((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE)) ++n;
      }
      cp = 256 + n;
    }
    std::string s;
    rvec::unicode::AppendUtf8(cp, &s);
    return s;
  };
  for (int b = 0; b < 256; ++b) add(byte_char(b));
  const std::string sp = byte_char(' ');
  for (const char* t : {"th", "the", "in", "an", "er"}) add(t);
  for (const char* t : {"t", "th", "the"}) add(sp + t);
  const std::string merges = "\"t h\",\"th e\",\"i n\",\"a n\",\"e r\",\"" + sp + " t\",\"" + sp +
                             "t h\",\"" + sp + "th e\"";
  return R"({"version":"1.0","added_tokens":[)"
         R"({"id":300,"content":"<|im_start|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},)"
         R"({"id":301,"content":"<tool_call>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":false}],)"
         R"("normalizer":{"type":"NFC"},"pre_tokenizer":{"type":"Sequence","pretokenizers":[)"
         R"({"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},)"
         R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}]},)"
         R"("post_processor":{"type":"ByteLevel"},"decoder":{"type":"ByteLevel"},)"
         R"("model":{"type":"BPE","ignore_merges":false,"vocab":{)" +
         vocab + "},\"merges\":[" + merges + "]}}";
}

const rvec::Tokenizer& Get() {
  static const rvec::Tokenizer* tokenizer = [] {
    const char* data = std::getenv("RVEC_TEST_DATA");
    if (data != nullptr) {
      const auto path =
          std::filesystem::path(data) / "qwen-tokenizer" / "qwen2.5" / "tokenizer.json";
      if (rvec::DataFileExists(path)) {
        auto t = rvec::Tokenizer::FromFile(path);
        if (!t.ok()) {
          std::fprintf(stderr, "%s\n", t.status().message().c_str());
          std::abort();
        }
        return new rvec::Tokenizer(std::move(t).value());
      }
    }
    auto t = rvec::Tokenizer::FromJson(BuiltinTokenizerJson(), "built-in fuzz tokenizer");
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", t.status().message().c_str());
      std::abort();
    }
    return new rvec::Tokenizer(std::move(t).value());
  }();
  return *tokenizer;
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const rvec::Tokenizer& tok = Get();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tok.Encode(text);
  Check(tok.Encode(text) == ids, "encode is not deterministic");
  const std::string decoded = tok.Decode(ids);
  Check(rvec::unicode::IsValidUtf8(decoded), "decode produced invalid UTF-8");
  if (rvec::unicode::IsValidUtf8(text) && rvec::unicode::IsNfcQuick(text)) {
    Check(decoded == text, "decode(encode(x)) != x for NFC text");
  }
  // The same bytes read as token ids: decoding never fails and streaming agrees with Decode.
  std::vector<int32_t> raw_ids;
  for (size_t i = 0; i + 3 <= size; i += 3) {
    const uint32_t v = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16);
    raw_ids.push_back(static_cast<int32_t>(v % (tok.VocabSize() + 8)));
  }
  for (bool skip : {false, true}) {
    rvec::StreamDecoder stream(tok, skip);
    std::string streamed;
    for (int32_t id : raw_ids) {
      const std::string chunk = stream.Push(id);
      Check(rvec::unicode::IsValidUtf8(chunk), "stream chunk is not valid UTF-8");
      streamed += chunk;
    }
    streamed += stream.Flush();
    Check(streamed == tok.Decode(raw_ids, skip), "streamed decode differs from Decode");
  }
  return 0;
}
