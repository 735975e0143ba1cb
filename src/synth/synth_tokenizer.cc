// The built-in byte-level BPE tokenizer of synthetic models: Qwen2-style tokenizer.json with merges
// learned deterministically from a short built-in English text, and a ChatML tokenizer_config.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "synth/synth.h"

namespace rvec {
namespace {

// Training text for the merges (written for rvec): everyday English about numbers and reasoning,
// so that common words, spaces before words and digits get tokens of their own.
constexpr std::string_view kTrainingText =
    "A farmer has twelve apples and gives three of them to each of his two neighbours. How many "
    "apples does he have left? First, we find how many apples he gives away: two neighbours "
    "times three apples is six apples. Then we subtract: twelve minus six is six. The answer is "
    "6.\n"
    "Reasoning step by step helps a model solve problems that need more than one operation. "
    "When the question is about money, time or distance, we write down what we know, what we "
    "want to find, and the relation between them. Then we compute the result and check that it "
    "makes sense.\n"
    "The train leaves the station at 9 o'clock and travels at 60 miles per hour. After 3 hours "
    "it has travelled 180 miles. If the next town is 240 miles away, the train needs one more "
    "hour to reach it, so it arrives at 13 o'clock.\n"
    "Question: Sara reads 15 pages every day. How many pages does she read in a week? Answer: "
    "there are 7 days in a week, and 15 times 7 is 105, so she reads 105 pages.\n"
    "Good answers are short and clear. They state the final number at the end, and they show the "
    "work that leads to it, so that a reader can follow each step and find any mistake.\n"
    "The student wrote a function that returns the sum of the numbers in a list. The function "
    "starts with a total of zero, adds each number to the total, and returns the total at the "
    "end. For the list of 1, 2 and 3 it returns 6, which is the correct answer.\n"
    "In the morning the shop sold 24 cups of tea and 36 cups of coffee. In the afternoon it sold "
    "twice as many cups of tea and half as many cups of coffee. How many cups did it sell in the "
    "whole day? In the afternoon it sold 48 cups of tea and 18 cups of coffee, which is 66 cups. "
    "In the morning it sold 60 cups. The total for the day is 126 cups.\n"
    "We can also think about the problem in a different way: the number of cups of tea went up "
    "by 24 and the number of cups of coffee went down by 18, so the afternoon sold 6 more cups "
    "than the morning, and 60 and 66 make 126.\n";

constexpr int kTargetMerges = 248;

// GPT-2's reversible byte -> printable character map: printable Latin-1 bytes stand for
// themselves, the others are shifted above 255. Returns the UTF-8 string of each byte and the
// byte order of the first 256 vocabulary ids.
struct ByteLevel {
  std::string chars[256];
  std::vector<int> order;
  ByteLevel() {
    std::vector<bool> printable(256, false);
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    int extra = 0;
    std::vector<int> rest;
    for (int b = 0; b < 256; ++b) {
      int cp = b;
      if (printable[b]) {
        order.push_back(b);
      } else {
        cp = 256 + extra++;
        rest.push_back(b);
      }
      chars[b] = Utf8(cp);
    }
    order.insert(order.end(), rest.begin(), rest.end());
  }
  static std::string Utf8(int cp) {
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    return s;
  }
};

bool IsLetter(unsigned char c) { return std::isalpha(c) != 0; }
bool IsDigit(unsigned char c) { return std::isdigit(c) != 0; }
bool IsSpace(unsigned char c) { return std::isspace(c) != 0; }
bool IsNewline(unsigned char c) { return c == '\n' || c == '\r'; }

// An ASCII approximation of the Qwen2 split regex, good enough to decide which byte pairs
// are worth merging (the tokenizer itself always applies the real regex).
std::vector<std::string> PreTokenize(std::string_view s) {
  std::vector<std::string> pieces;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = s[i];
    size_t j = i + 1;
    if (IsLetter(c) ||
        (!IsDigit(c) && !IsNewline(c) && j < n && IsLetter(static_cast<unsigned char>(s[j])))) {
      while (j < n && IsLetter(static_cast<unsigned char>(s[j]))) ++j;
    } else if (IsDigit(c)) {
      // one digit per piece
    } else if (!IsSpace(c) || (c == ' ' && j < n && !IsSpace(static_cast<unsigned char>(s[j])) &&
                               !IsLetter(static_cast<unsigned char>(s[j])) &&
                               !IsDigit(static_cast<unsigned char>(s[j])))) {
      while (j < n && !IsSpace(static_cast<unsigned char>(s[j])) &&
             !IsLetter(static_cast<unsigned char>(s[j])) &&
             !IsDigit(static_cast<unsigned char>(s[j]))) {
        ++j;
      }
      while (j < n && IsNewline(static_cast<unsigned char>(s[j]))) ++j;
    } else {
      while (j < n && IsSpace(static_cast<unsigned char>(s[j]))) ++j;
      // A run of spaces before a word leaves its last space to the word.
      if (j < n && j - i > 1 && s[j - 1] == ' ') --j;
    }
    pieces.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return pieces;
}

// A byte-level BPE trained on kTrainingText: vocab (id -> byte-level string) and merges.
struct Bpe {
  std::vector<std::string> vocab;
  std::vector<std::pair<int, int>> merges;
};

Bpe TrainBpe() {
  const ByteLevel bl;
  std::vector<std::string> vocab;  // id -> byte-level string
  std::map<std::string, int> ids;
  for (int b : bl.order) {
    ids[bl.chars[b]] = static_cast<int>(vocab.size());
    vocab.push_back(bl.chars[b]);
  }

  // Word frequencies, each word as a sequence of token ids.
  std::map<std::string, int> counts;
  for (const std::string& piece : PreTokenize(kTrainingText)) ++counts[piece];
  std::vector<std::pair<std::vector<int>, int>> words;
  for (const auto& [piece, count] : counts) {
    std::vector<int> w;
    for (unsigned char c : piece) w.push_back(ids.at(bl.chars[c]));
    words.emplace_back(std::move(w), count);
  }

  std::vector<std::pair<int, int>> merges;
  while (static_cast<int>(merges.size()) < kTargetMerges) {
    std::map<std::pair<int, int>, int> pair_counts;
    for (const auto& [w, count] : words) {
      for (size_t k = 0; k + 1 < w.size(); ++k) pair_counts[{w[k], w[k + 1]}] += count;
    }
    // Most frequent pair; ties go to the lexicographically smallest pair of strings.
    const std::pair<int, int>* best = nullptr;
    int best_count = 1;
    for (const auto& [pair, count] : pair_counts) {
      if (count > best_count || (best != nullptr && count == best_count &&
                                 std::tie(vocab[pair.first], vocab[pair.second]) <
                                     std::tie(vocab[best->first], vocab[best->second]))) {
        best = &pair;
        best_count = count;
      }
    }
    if (best == nullptr) break;  // every remaining pair occurs once
    const std::pair<int, int> merge = *best;
    const int new_id = static_cast<int>(vocab.size());
    vocab.push_back(vocab[merge.first] + vocab[merge.second]);
    ids[vocab.back()] = new_id;
    merges.push_back(merge);
    for (auto& [w, count] : words) {
      std::vector<int> merged;
      for (size_t k = 0; k < w.size(); ++k) {
        if (k + 1 < w.size() && w[k] == merge.first && w[k + 1] == merge.second) {
          merged.push_back(new_id);
          ++k;
        } else {
          merged.push_back(w[k]);
        }
      }
      w = std::move(merged);
    }
  }
  return {std::move(vocab), std::move(merges)};
}

using AddedTokens = std::pair<const char*, int64_t>[3];

// tokenizer.json in the field order the Hugging Face tokenizers library writes.
std::string TokenizerJson(const Bpe& bpe, const AddedTokens& added) {
  const std::vector<std::string>& vocab = bpe.vocab;
  using ojson = nlohmann::ordered_json;
  ojson tok;
  tok["version"] = "1.0";
  tok["truncation"] = nullptr;
  tok["padding"] = nullptr;
  ojson added_tokens = ojson::array();
  for (const auto& [content, id] : added) {
    added_tokens.push_back({{"id", id},
                            {"content", content},
                            {"single_word", false},
                            {"lstrip", false},
                            {"rstrip", false},
                            {"normalized", false},
                            {"special", true}});
  }
  tok["added_tokens"] = added_tokens;
  tok["normalizer"] = {{"type", "NFC"}};
  const ojson byte_level = {{"type", "ByteLevel"},
                            {"add_prefix_space", false},
                            {"trim_offsets", false},
                            {"use_regex", false}};
  tok["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       ojson::array(
           {ojson{
                {"type", "Split"},
                {"pattern",
                 {{"Regex",
                   R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
                {"behavior", "Isolated"},
                {"invert", false}},
            byte_level})}};
  tok["post_processor"] = byte_level;
  tok["decoder"] = byte_level;
  ojson model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = "";
  model["end_of_word_suffix"] = "";
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = false;
  ojson vocab_json = ojson::object();
  for (size_t id = 0; id < vocab.size(); ++id) vocab_json[vocab[id]] = id;
  model["vocab"] = std::move(vocab_json);
  ojson merges_json = ojson::array();
  for (const auto& [a, b] : bpe.merges) merges_json.push_back(vocab[a] + " " + vocab[b]);
  model["merges"] = std::move(merges_json);
  tok["model"] = std::move(model);
  return tok.dump(2, ' ', /*ensure_ascii=*/false);
}

// tokenizer_config.json as transformers writes it: sorted keys.
std::string TokenizerConfigJson(const AddedTokens& added) {
  nlohmann::json config;
  config["add_bos_token"] = false;
  config["add_prefix_space"] = false;
  nlohmann::json decoder = nlohmann::json::object();
  for (const auto& [content, id] : added) {
    decoder[std::to_string(id)] = {{"content", content},   {"lstrip", false},
                                   {"normalized", false},  {"rstrip", false},
                                   {"single_word", false}, {"special", true}};
  }
  config["added_tokens_decoder"] = decoder;
  config["additional_special_tokens"] = {"<|im_start|>", "<|im_end|>"};
  config["bos_token"] = nullptr;
  // ChatML, as Qwen2 instruct models use: a default system turn when the conversation has none.
  config["chat_template"] =
      "{%- for message in messages %}\n"
      "    {%- if loop.first and message['role'] != 'system' %}\n"
      "        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}\n"
      "    {%- endif %}\n"
      "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n' }}\n"
      "{%- endfor %}\n"
      "{%- if add_generation_prompt %}\n"
      "    {{- '<|im_start|>assistant\\n' }}\n"
      "{%- endif %}\n";
  config["clean_up_tokenization_spaces"] = false;
  config["eos_token"] = "<|im_end|>";
  config["errors"] = "replace";
  config["model_max_length"] = 32768;
  config["pad_token"] = "<|endoftext|>";
  config["split_special_tokens"] = false;
  config["tokenizer_class"] = "Qwen2Tokenizer";
  config["unk_token"] = nullptr;
  return config.dump(2, ' ', /*ensure_ascii=*/false) + "\n";
}

SynthTokenizerFiles BuildTokenizer() {
  const Bpe bpe = TrainBpe();
  SynthTokenizerFiles files;
  const int64_t base = static_cast<int64_t>(bpe.vocab.size());
  files.endoftext_id = base;
  files.im_start_id = base + 1;
  files.im_end_id = base + 2;
  files.size = base + 3;
  const AddedTokens added = {{"<|endoftext|>", files.endoftext_id},
                             {"<|im_start|>", files.im_start_id},
                             {"<|im_end|>", files.im_end_id}};
  files.tokenizer_json = TokenizerJson(bpe, added);
  files.tokenizer_config_json = TokenizerConfigJson(added);
  return files;
}

}  // namespace

const SynthTokenizerFiles& SynthTokenizer() {
  static const SynthTokenizerFiles files = BuildTokenizer();
  return files;
}

}  // namespace rvec
