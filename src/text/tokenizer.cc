// Byte-level BPE tokenizer from tokenizer.json: added-token splitting, NFC, the split regex,
// byte-level BPE with a per-thread word cache, post-processing and lossy byte-level decoding.
#include "text/tokenizer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <deque>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>
#include <utility>

#include "base/fs.h"
#include "text/split_regex.h"
#include "text/unicode.h"

namespace rvec {

namespace {

using json = nlohmann::json;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 on.
std::array<uint32_t, 256> BytesToUnicode() {
  std::array<uint32_t, 256> table{};
  std::array<bool, 256> direct{};
  for (int b = '!'; b <= '~'; ++b) direct[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = direct[b] ? b : next++;
  return table;
}

const std::array<uint32_t, 256>& ByteToChar() {
  static const std::array<uint32_t, 256> table = BytesToUnicode();
  return table;
}

// Inverse of ByteToChar over U+0000..U+0143; -1 where a code point is not a byte-level char.
const std::array<int16_t, 324>& CharToByte() {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t;
    t.fill(-1);
    const auto& fwd = ByteToChar();
    for (int b = 0; b < 256; ++b) t[fwd[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return table;
}

// The ByteLevel decoder's view of one token: its byte-level chars as bytes, or (when any char
// is not byte-level) the token's own UTF-8, as Hugging Face does per token.
std::string TokenBytes(std::string_view token, bool* all_byte_level) {
  std::string out;
  out.reserve(token.size());
  const auto& inv = CharToByte();
  for (size_t i = 0; i < token.size();) {
    size_t len = 0;
    const uint32_t cp = unicode::DecodeUtf8(token, i, &len);
    if (cp >= inv.size() || inv[cp] < 0) {
      *all_byte_level = false;
      return std::string(token);
    }
    out.push_back(static_cast<char>(inv[cp]));
    i += len;
  }
  *all_byte_level = true;
  return out;
}

std::atomic<uint64_t> g_next_instance{1};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreStep {
  std::unique_ptr<SplitRegex> regex;  // null: no split
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;
};

struct MergeInfo {
  int32_t rank;
  int32_t new_id;
};

// Leftmost-longest search over a set of literal strings, bucketed by first byte.
class LiteralMatcher {
 public:
  void Add(std::string text, size_t index) {
    if (text.empty()) return;
    const auto b = static_cast<unsigned char>(text[0]);
    buckets_[b].push_back({std::move(text), index});
    first_[b] = true;
    any_ = true;
  }
  void Finish() {
    for (auto& bucket : buckets_) {
      std::stable_sort(bucket.begin(), bucket.end(), [](const Entry& a, const Entry& b) {
        return a.text.size() > b.text.size();
      });
    }
  }
  bool empty() const { return !any_; }
  // First match at or after `from`: sets *begin, *end, *index.
  bool Find(std::string_view s, size_t from, size_t* begin, size_t* end, size_t* index) const {
    for (size_t i = from; i < s.size(); ++i) {
      const auto b = static_cast<unsigned char>(s[i]);
      if (!first_[b]) continue;
      for (const Entry& e : buckets_[b]) {
        if (s.size() - i >= e.text.size() && s.compare(i, e.text.size(), e.text) == 0) {
          *begin = i;
          *end = i + e.text.size();
          *index = e.index;
          return true;
        }
      }
    }
    return false;
  }

 private:
  struct Entry {
    std::string text;
    size_t index;
  };
  std::array<std::vector<Entry>, 256> buckets_;
  std::array<bool, 256> first_{};
  bool any_ = false;
};

bool IsWordChar(uint32_t cp) {
  // Rust's char::is_alphanumeric (Alphabetic or Numeric), approximated by \p{L} and \p{N}.
  return cp == '_' ? false : (unicode::IsLetter(cp) || unicode::IsNumber(cp));
}

// Last code point of a valid UTF-8 string (s non-empty).
uint32_t LastChar(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  size_t len = 0;
  return unicode::DecodeUtf8(s, i, &len);
}

std::string CleanUpTokenizationSpaces(std::string s) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    std::string out;
    size_t pos = 0;
    while (true) {
      const size_t hit = s.find(from, pos);
      if (hit == std::string::npos) break;
      out.append(s, pos, hit - pos).append(to);
      pos = hit + from.size();
    }
    out.append(s, pos);
    s = std::move(out);
  }
  return s;
}

}  // namespace

struct Tokenizer::Impl {
  uint64_t instance = g_next_instance.fetch_add(1);
  std::string label;

  // Model.
  StringMap<int32_t> vocab;           // vocabulary string ("Ġthe") → id
  StringMap<int32_t> bytes_to_id;     // raw bytes (" the") → id, for byte-level entries
  std::vector<std::string> id_token;  // id → vocabulary string ("" for gaps)
  std::vector<std::string> id_bytes;  // id → decoded bytes
  std::vector<bool> id_present;
  std::array<int32_t, 256> byte_id{};
  std::unordered_map<uint64_t, MergeInfo> merges;
  bool ignore_merges = false;
  int32_t unk_id = -1;

  // Added tokens.
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;
  StringMap<size_t> added_by_content;
  LiteralMatcher raw_matcher;
  LiteralMatcher normalized_matcher;

  bool nfc = false;
  std::vector<PreStep> steps;
  std::vector<int32_t> prefix_ids, suffix_ids;
  bool cleanup_spaces = false;
  size_t vocab_size = 0;
  std::string bos, eos, pad;

  Status Load(const json& root);
  Status LoadModel(const json& model);
  Status LoadAddedTokens(const json& list);
  Status LoadNormalizer(const json& node);
  Status LoadPreTokenizer(const json& node, int* byte_level_count);
  Status LoadPostProcessor(const json& node);
  Status LoadDecoder(const json& node);

  void SplitAdded(std::string_view text, const LiteralMatcher& matcher,
                  std::vector<std::pair<std::string_view, int32_t>>* out) const;
  void EncodeSegment(std::string_view text, std::vector<int32_t>* ids) const;
  void PreTokenize(std::string_view text, std::vector<std::string_view>* pieces,
                   std::deque<std::string>* arena) const;
  void Bpe(std::string_view piece, std::vector<int32_t>* ids) const;
  void BpeUncached(std::string_view piece, std::vector<int32_t>* ids) const;
  const MergeInfo* FindMerge(int32_t a, int32_t b) const {
    auto it = merges.find((static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
                          static_cast<uint32_t>(b));
    return it == merges.end() ? nullptr : &it->second;
  }
};

namespace {

std::string StringField(const json& node, const char* key) {
  auto it = node.find(key);
  if (it == node.end() || !it->is_string()) return "";
  return it->get<std::string>();
}
bool BoolField(const json& node, const char* key, bool fallback) {
  auto it = node.find(key);
  if (it == node.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}
std::string TypeOf(const json& node) { return node.is_object() ? StringField(node, "type") : ""; }

}  // namespace

Status Tokenizer::Impl::LoadModel(const json& model) {
  if (!model.is_object()) return DataLoss("{}: 'model' is missing or not an object", label);
  const std::string type = StringField(model, "type");
  if (!type.empty() && type != "BPE") {
    return Unimplemented("{}: model type '{}' is not supported (only byte-level BPE)", label, type);
  }
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0) {
      return Unimplemented("{}: BPE dropout is not supported (it makes encoding random)", label);
    }
  }
  if (!StringField(model, "continuing_subword_prefix").empty() ||
      !StringField(model, "end_of_word_suffix").empty()) {
    return Unimplemented("{}: BPE continuing_subword_prefix/end_of_word_suffix are not supported",
                         label);
  }
  if (BoolField(model, "byte_fallback", false)) {
    return Unimplemented("{}: BPE byte_fallback is not supported", label);
  }
  ignore_merges = BoolField(model, "ignore_merges", false);
  const auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) {
    return DataLoss("{}: model.vocab is missing or not an object", label);
  }
  vocab.reserve(vocab_it->size());
  int32_t max_id = -1;
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      return DataLoss("{}: model.vocab entry '{}' has no valid id", label, it.key());
    }
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    vocab.emplace(it.key(), id);
    max_id = std::max(max_id, id);
  }
  id_token.assign(max_id + 1, "");
  id_bytes.assign(max_id + 1, "");
  id_present.assign(max_id + 1, false);
  bytes_to_id.reserve(vocab.size());
  for (const auto& [token, id] : vocab) {
    bool byte_level = false;
    std::string bytes = TokenBytes(token, &byte_level);
    if (byte_level) bytes_to_id.emplace(bytes, id);
    id_token[id] = token;
    id_bytes[id] = std::move(bytes);
    id_present[id] = true;
  }
  const auto& fwd = ByteToChar();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    unicode::AppendUtf8(fwd[b], &ch);
    auto it = vocab.find(ch);
    byte_id[b] = it == vocab.end() ? -1 : it->second;
  }
  if (auto it = model.find("unk_token"); it != model.end() && it->is_string()) {
    auto u = vocab.find(it->get<std::string>());
    if (u == vocab.end()) {
      return DataLoss("{}: unk_token '{}' is not in the vocabulary", label, it->get<std::string>());
    }
    unk_id = u->second;
  }
  const auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) {
    return DataLoss("{}: model.merges is missing or not an array", label);
  }
  merges.reserve(merges_it->size());
  int32_t rank = 0;
  for (const json& m : *merges_it) {
    std::string left, right;
    if (m.is_string()) {
      // Legacy "a b" form: merge tokens never contain a space.
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return DataLoss("{}: merge {} '{}' is not two tokens separated by one space", label, rank,
                        s);
      }
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return DataLoss("{}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", label, rank);
    }
    const auto l = vocab.find(left), r = vocab.find(right), n = vocab.find(left + right);
    if (l == vocab.end() || r == vocab.end() || n == vocab.end()) {
      return DataLoss("{}: merge {} ('{}' + '{}') uses a token missing from the vocabulary", label,
                      rank, left, right);
    }
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) |
                         static_cast<uint32_t>(r->second);
    merges.emplace(key, MergeInfo{rank, n->second});  // the first (lowest) rank wins
    ++rank;
  }
  vocab_size = static_cast<size_t>(max_id + 1);
  return OkStatus();
}

Status Tokenizer::Impl::LoadAddedTokens(const json& list) {
  if (list.is_null()) return OkStatus();
  if (!list.is_array()) return DataLoss("{}: added_tokens is not an array", label);
  for (const json& t : list) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        !t.contains("content") || !t["content"].is_string()) {
      return DataLoss("{}: an added_tokens entry lacks an integer id or a string content", label);
    }
    AddedToken a;
    a.id = static_cast<int32_t>(t["id"].get<int64_t>());
    a.content = t["content"].get<std::string>();
    a.special = BoolField(t, "special", false);
    a.lstrip = BoolField(t, "lstrip", false);
    a.rstrip = BoolField(t, "rstrip", false);
    a.normalized = BoolField(t, "normalized", !a.special);
    a.single_word = BoolField(t, "single_word", false);
    if (a.id < 0) return DataLoss("{}: added token '{}' has a negative id", label, a.content);
    added_by_id[a.id] = added.size();
    added_by_content[a.content] = added.size();
    vocab_size = std::max(vocab_size, static_cast<size_t>(a.id) + 1);
    added.push_back(std::move(a));
  }
  return OkStatus();
}

Status Tokenizer::Impl::LoadNormalizer(const json& node) {
  if (node.is_null()) return OkStatus();
  const std::string type = TypeOf(node);
  if (type == "NFC") {
    nfc = true;
    return OkStatus();
  }
  if (type == "Sequence") {
    const auto it = node.find("normalizers");
    if (it == node.end() || !it->is_array()) {
      return DataLoss("{}: normalizer Sequence has no 'normalizers' list", label);
    }
    for (const json& n : *it) RETURN_IF_ERROR(LoadNormalizer(n));
    return OkStatus();
  }
  return Unimplemented("{}: normalizer '{}' is not supported (supported: NFC, Sequence)", label,
                       type.empty() ? node.dump() : type);
}

Status Tokenizer::Impl::LoadPreTokenizer(const json& node, int* byte_level_count) {
  if (node.is_null()) return OkStatus();
  const std::string type = TypeOf(node);
  if (type == "Sequence") {
    const auto it = node.find("pretokenizers");
    if (it == node.end() || !it->is_array()) {
      return DataLoss("{}: pre_tokenizer Sequence has no 'pretokenizers' list", label);
    }
    for (const json& p : *it) RETURN_IF_ERROR(LoadPreTokenizer(p, byte_level_count));
    return OkStatus();
  }
  if (type == "ByteLevel") {
    ++*byte_level_count;
    PreStep step;
    step.add_prefix_space = BoolField(node, "add_prefix_space", true);
    if (BoolField(node, "use_regex", true)) {
      ASSIGN_OR_RETURN(SplitRegex re, SplitRegex::Compile(kGpt2SplitPattern));
      step.regex = std::make_unique<SplitRegex>(std::move(re));
    }
    if (step.regex || step.add_prefix_space) steps.push_back(std::move(step));
    return OkStatus();
  }
  if (type == "Split") {
    if (*byte_level_count > 0) {
      return Unimplemented("{}: a Split pre-tokenizer after ByteLevel is not supported", label);
    }
    PreStep step;
    const auto pattern = node.find("pattern");
    if (pattern == node.end() || !pattern->is_object()) {
      return DataLoss("{}: Split pre-tokenizer has no pattern", label);
    }
    if (pattern->contains("Regex") && (*pattern)["Regex"].is_string()) {
      auto re = SplitRegex::Compile((*pattern)["Regex"].get<std::string>());
      if (!re.ok()) return re.status().WithContext(label);
      step.regex = std::make_unique<SplitRegex>(std::move(re).value());
    } else if (pattern->contains("String") && (*pattern)["String"].is_string()) {
      auto re = SplitRegex::Literal((*pattern)["String"].get<std::string>());
      if (!re.ok()) return re.status().WithContext(label);
      step.regex = std::make_unique<SplitRegex>(std::move(re).value());
    } else {
      return DataLoss("{}: Split pattern is neither Regex nor String", label);
    }
    const std::string behavior = StringField(node, "behavior");
    if (behavior == "Isolated") {
      step.behavior = SplitBehavior::kIsolated;
    } else if (behavior == "Removed") {
      step.behavior = SplitBehavior::kRemoved;
    } else if (behavior == "MergedWithPrevious") {
      step.behavior = SplitBehavior::kMergedWithPrevious;
    } else if (behavior == "MergedWithNext") {
      step.behavior = SplitBehavior::kMergedWithNext;
    } else if (behavior == "Contiguous") {
      step.behavior = SplitBehavior::kContiguous;
    } else {
      return Unimplemented("{}: Split behavior '{}' is not supported", label, behavior);
    }
    step.invert = BoolField(node, "invert", false);
    steps.push_back(std::move(step));
    return OkStatus();
  }
  return Unimplemented(
      "{}: pre_tokenizer '{}' is not supported (supported: Split, ByteLevel, Sequence)", label,
      type.empty() ? node.dump() : type);
}

Status Tokenizer::Impl::LoadPostProcessor(const json& node) {
  if (node.is_null()) return OkStatus();
  const std::string type = TypeOf(node);
  if (type == "ByteLevel") return OkStatus();  // only adjusts offsets
  if (type == "Sequence") {
    const auto it = node.find("processors");
    if (it == node.end() || !it->is_array()) {
      return DataLoss("{}: post_processor Sequence has no 'processors' list", label);
    }
    for (const json& p : *it) RETURN_IF_ERROR(LoadPostProcessor(p));
    return OkStatus();
  }
  if (type == "TemplateProcessing") {
    const auto single = node.find("single");
    const auto specials = node.find("special_tokens");
    if (single == node.end() || !single->is_array()) {
      return DataLoss("{}: TemplateProcessing has no 'single' template", label);
    }
    bool seen_sequence = false;
    for (const json& item : *single) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id")) {
        return DataLoss("{}: TemplateProcessing item {} is not understood", label, item.dump());
      }
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      if (specials == node.end() || !specials->contains(name) ||
          !(*specials)[name].contains("ids") || !(*specials)[name]["ids"].is_array()) {
        return DataLoss("{}: TemplateProcessing special token '{}' has no ids", label, name);
      }
      auto& target = seen_sequence ? suffix_ids : prefix_ids;
      for (const json& id : (*specials)[name]["ids"]) target.push_back(id.get<int32_t>());
    }
    if (!seen_sequence) return DataLoss("{}: TemplateProcessing 'single' lacks $A", label);
    return OkStatus();
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const auto cls = node.find("cls"), sep = node.find("sep");
    if (cls == node.end() || sep == node.end() || !cls->is_array() || !sep->is_array() ||
        cls->size() != 2 || sep->size() != 2) {
      return DataLoss("{}: {} lacks cls/sep", label, type);
    }
    prefix_ids.push_back((*cls)[1].get<int32_t>());
    suffix_ids.push_back((*sep)[1].get<int32_t>());
    return OkStatus();
  }
  return Unimplemented(
      "{}: post_processor '{}' is not supported (supported: ByteLevel, TemplateProcessing, "
      "RobertaProcessing, BertProcessing, Sequence)",
      label, type.empty() ? node.dump() : type);
}

Status Tokenizer::Impl::LoadDecoder(const json& node) {
  const std::string type = TypeOf(node);
  if (type == "ByteLevel") return OkStatus();
  if (type == "Sequence") {
    const auto it = node.find("decoders");
    if (it == node.end() || !it->is_array()) {
      return DataLoss("{}: decoder Sequence has no 'decoders' list", label);
    }
    for (const json& d : *it) RETURN_IF_ERROR(LoadDecoder(d));
    return OkStatus();
  }
  return Unimplemented("{}: decoder '{}' is not supported (supported: ByteLevel)", label,
                       type.empty() ? node.dump() : type);
}

Status Tokenizer::Impl::Load(const json& root) {
  if (!root.is_object()) return DataLoss("{}: not a JSON object", label);
  static const json kNull;
  auto get = [&](const char* key) -> const json& {
    auto it = root.find(key);
    return it == root.end() ? kNull : *it;
  };
  RETURN_IF_ERROR(LoadModel(get("model")));
  RETURN_IF_ERROR(LoadAddedTokens(get("added_tokens")));
  RETURN_IF_ERROR(LoadNormalizer(get("normalizer")));
  int byte_level = 0;
  RETURN_IF_ERROR(LoadPreTokenizer(get("pre_tokenizer"), &byte_level));
  if (byte_level != 1) {
    return Unimplemented(
        "{}: the pre_tokenizer must contain exactly one ByteLevel step (found {}); "
        "only byte-level BPE is supported",
        label, byte_level);
  }
  RETURN_IF_ERROR(LoadPostProcessor(get("post_processor")));
  RETURN_IF_ERROR(LoadDecoder(get("decoder")));
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& a = added[i];
    if (a.normalized && nfc) {
      normalized_matcher.Add(unicode::Nfc(a.content), i);
    } else if (a.normalized) {
      normalized_matcher.Add(a.content, i);
    } else {
      raw_matcher.Add(a.content, i);
    }
  }
  raw_matcher.Finish();
  normalized_matcher.Finish();
  return OkStatus();
}

// Splits `text` around added-token matches as AddedVocabulary::find_matches does, honouring
// single_word, lstrip and rstrip; token pieces carry their id, text pieces -1.
void Tokenizer::Impl::SplitAdded(std::string_view text, const LiteralMatcher& matcher,
                                 std::vector<std::pair<std::string_view, int32_t>>* out) const {
  if (matcher.empty()) {
    out->emplace_back(text, -1);
    return;
  }
  size_t start_offset = 0, search = 0, mb = 0, me = 0, index = 0;
  while (search < text.size() && matcher.Find(text, search, &mb, &me, &index)) {
    search = me;
    const AddedToken& a = added[index];
    size_t start = mb, stop = me;
    if (a.single_word) {
      const bool start_ok = start == 0 || !IsWordChar(LastChar(text.substr(0, start)));
      size_t len = 0;
      const bool stop_ok =
          stop == text.size() || !IsWordChar(unicode::DecodeUtf8(text, stop, &len));
      if (!start_ok || !stop_ok) continue;
    }
    if (a.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t p = s - 1;
        while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
        size_t len = 0;
        if (!unicode::IsWhiteSpace(unicode::DecodeUtf8(text, p, &len))) break;
        s = p;
      }
      start = std::max(s, start_offset);
    }
    if (a.rstrip) {
      while (stop < text.size()) {
        size_t len = 0;
        if (!unicode::IsWhiteSpace(unicode::DecodeUtf8(text, stop, &len))) break;
        stop += len;
      }
    }
    if (start_offset < start) {
      out->emplace_back(text.substr(start_offset, start - start_offset), -1);
    }
    out->emplace_back(text.substr(start, stop - start), a.id);
    start_offset = stop;
  }
  if (start_offset < text.size()) out->emplace_back(text.substr(start_offset), -1);
}

void Tokenizer::Impl::PreTokenize(std::string_view text, std::vector<std::string_view>* pieces,
                                  std::deque<std::string>* arena) const {
  pieces->clear();
  pieces->push_back(text);
  std::vector<std::string_view> next;
  std::vector<SplitRegex::Span> spans;
  std::vector<std::pair<std::string_view, bool>> parts;
  for (const PreStep& step : steps) {
    next.clear();
    for (std::string_view piece : *pieces) {
      if (step.add_prefix_space && (piece.empty() || piece[0] != ' ')) {
        std::string prefixed(1, ' ');
        prefixed.append(piece);
        arena->push_back(std::move(prefixed));
        piece = arena->back();
      }
      if (!step.regex) {
        next.push_back(piece);
        continue;
      }
      spans.clear();
      step.regex->FindAll(piece, &spans);
      parts.clear();
      size_t prev = 0;
      for (const auto& [b, e] : spans) {
        if (prev != b) parts.emplace_back(piece.substr(prev, b - prev), step.invert);
        parts.emplace_back(piece.substr(b, e - b), !step.invert);
        prev = e;
      }
      if (prev != piece.size()) parts.emplace_back(piece.substr(prev), step.invert);
      const size_t first = next.size();
      auto extend_last = [&](std::string_view part) {
        std::string_view& last = next.back();
        last = std::string_view(last.data(), part.data() + part.size() - last.data());
      };
      switch (step.behavior) {
        case SplitBehavior::kIsolated:
          for (const auto& [p, m] : parts) next.push_back(p);
          break;
        case SplitBehavior::kRemoved:
          for (const auto& [p, m] : parts) {
            if (!m) next.push_back(p);
          }
          break;
        case SplitBehavior::kMergedWithPrevious: {
          bool previous_match = false;
          for (const auto& [p, m] : parts) {
            if (m && !previous_match && next.size() > first) {
              extend_last(p);
            } else {
              next.push_back(p);
            }
            previous_match = m;
          }
          break;
        }
        case SplitBehavior::kMergedWithNext: {
          bool previous_match = false;
          std::vector<std::string_view> rev;
          for (size_t i = parts.size(); i-- > 0;) {
            const auto& [p, m] = parts[i];
            if (m && !previous_match && !rev.empty()) {
              rev.back() =
                  std::string_view(p.data(), rev.back().data() + rev.back().size() - p.data());
            } else {
              rev.push_back(p);
            }
            previous_match = m;
          }
          next.insert(next.end(), rev.rbegin(), rev.rend());
          break;
        }
        case SplitBehavior::kContiguous: {
          bool previous_match = false;
          bool have = false;
          for (const auto& [p, m] : parts) {
            if (have && m == previous_match) {
              extend_last(p);
            } else {
              next.push_back(p);
            }
            have = true;
            previous_match = m;
          }
          break;
        }
      }
    }
    pieces->clear();
    for (std::string_view p : next) {
      if (!p.empty()) pieces->push_back(p);
    }
  }
}

void Tokenizer::Impl::BpeUncached(std::string_view piece, std::vector<int32_t>* ids) const {
  if (ignore_merges) {
    auto it = bytes_to_id.find(piece);
    if (it != bytes_to_id.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> sym;
  sym.reserve(piece.size());
  for (const char ch : piece) {
    const int32_t id = byte_id[static_cast<unsigned char>(ch)];
    if (id >= 0) {
      sym.push_back(id);
    } else if (unk_id >= 0) {
      sym.push_back(unk_id);
    }
  }
  const size_t n = sym.size();
  if (n <= 1) {
    ids->insert(ids->end(), sym.begin(), sym.end());
    return;
  }
  if (n <= 256) {
    // Small words: keep each adjacent pair's rank and merge the lowest (leftmost on ties).
    std::vector<int32_t> rank(n - 1), merged(n - 1);
    for (size_t i = 0; i + 1 < n; ++i) {
      const MergeInfo* m = FindMerge(sym[i], sym[i + 1]);
      rank[i] = m ? m->rank : INT32_MAX;
      merged[i] = m ? m->new_id : -1;
    }
    while (!rank.empty()) {
      size_t best = 0;
      for (size_t i = 1; i < rank.size(); ++i) {
        if (rank[i] < rank[best]) best = i;
      }
      if (rank[best] == INT32_MAX) break;
      sym[best] = merged[best];
      sym.erase(sym.begin() + best + 1);
      rank.erase(rank.begin() + best);
      merged.erase(merged.begin() + best);
      auto refresh = [&](size_t i) {
        const MergeInfo* m = FindMerge(sym[i], sym[i + 1]);
        rank[i] = m ? m->rank : INT32_MAX;
        merged[i] = m ? m->new_id : -1;
      };
      if (best > 0) refresh(best - 1);
      if (best < rank.size()) refresh(best);
    }
    ids->insert(ids->end(), sym.begin(), sym.end());
    return;
  }
  // Long words: a priority queue over (rank, position) with lazy invalidation, as Hugging Face.
  struct Node {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<Node> nodes(n);
  for (size_t i = 0; i < n; ++i) {
    nodes[i] = {sym[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1,
                true};
  }
  struct Entry {
    int32_t rank, pos, new_id;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const MergeInfo* m = FindMerge(sym[i], sym[i + 1])) {
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Entry top = queue.top();
    queue.pop();
    Node& left = nodes[top.pos];
    if (!left.alive || left.next < 0) continue;
    Node& right = nodes[left.next];
    const MergeInfo* m = FindMerge(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) nodes[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const MergeInfo* p = FindMerge(nodes[left.prev].id, left.id)) {
        queue.push({p->rank, left.prev, p->new_id});
      }
    }
    if (left.next >= 0) {
      if (const MergeInfo* p = FindMerge(left.id, nodes[left.next].id)) {
        queue.push({p->rank, top.pos, p->new_id});
      }
    }
  }
  for (int32_t i = 0; i >= 0; i = nodes[i].next) ids->push_back(nodes[i].id);
}

namespace {

// Per-thread cache of word → ids, so that Encode stays lock-free and thread-safe. Keyed by the
// tokenizer instance; a thread switching tokenizers starts a fresh cache.
struct WordCache {
  uint64_t owner = 0;
  StringMap<std::pair<uint32_t, uint32_t>> map;  // piece → (offset, count) in ids
  std::vector<int32_t> ids;
  void Reset(uint64_t new_owner) {
    owner = new_owner;
    map.clear();
    ids.clear();
  }
};
constexpr size_t kMaxCachedPiece = 64;
constexpr size_t kMaxCacheEntries = 1 << 18;

WordCache& ThreadCache() {
  thread_local WordCache cache;
  return cache;
}

}  // namespace

void Tokenizer::Impl::Bpe(std::string_view piece, std::vector<int32_t>* ids) const {
  if (piece.size() > kMaxCachedPiece) {
    BpeUncached(piece, ids);
    return;
  }
  WordCache& cache = ThreadCache();
  if (cache.owner != instance) cache.Reset(instance);
  auto it = cache.map.find(piece);
  if (it != cache.map.end()) {
    const int32_t* p = cache.ids.data() + it->second.first;
    ids->insert(ids->end(), p, p + it->second.second);
    return;
  }
  const size_t before = ids->size();
  BpeUncached(piece, ids);
  if (cache.map.size() >= kMaxCacheEntries) cache.Reset(instance);
  const auto offset = static_cast<uint32_t>(cache.ids.size());
  cache.ids.insert(cache.ids.end(), ids->begin() + before, ids->end());
  cache.map.emplace(std::string(piece),
                    std::make_pair(offset, static_cast<uint32_t>(ids->size() - before)));
}

void Tokenizer::Impl::EncodeSegment(std::string_view text, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  // The common case (one Split step, isolated, not inverted) runs without building piece lists.
  if (steps.size() == 1 && steps[0].regex && !steps[0].invert && !steps[0].add_prefix_space &&
      steps[0].behavior == SplitBehavior::kIsolated) {
    thread_local std::vector<SplitRegex::Span> spans;
    spans.clear();
    steps[0].regex->FindAll(text, &spans);
    size_t prev = 0;
    for (const auto& [b, e] : spans) {
      if (prev != b) Bpe(text.substr(prev, b - prev), ids);
      Bpe(text.substr(b, e - b), ids);
      prev = e;
    }
    if (prev != text.size()) Bpe(text.substr(prev), ids);
    return;
  }
  std::vector<std::string_view> pieces;
  std::deque<std::string> arena;
  PreTokenize(text, &pieces, &arena);
  for (std::string_view p : pieces) Bpe(p, ids);
}

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

StatusOr<Tokenizer> Tokenizer::FromJson(std::string_view json_text, std::string_view label) {
  const json root = json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (root.is_discarded()) return DataLoss("{}: not valid JSON", label);
  Tokenizer tokenizer;
  tokenizer.impl_->label = std::string(label);
  RETURN_IF_ERROR(tokenizer.impl_->Load(root));
  return tokenizer;
}

StatusOr<Tokenizer> Tokenizer::FromFile(const std::filesystem::path& tokenizer_json) {
  // A gzip-compressed tokenizer.json.gz beside the named path is read transparently.
  ASSIGN_OR_RETURN(std::string text, ReadDataFile(tokenizer_json));
  return FromJson(text, tokenizer_json.string());
}

StatusOr<Tokenizer> Tokenizer::FromModelDir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // A tokenizer.json path (or one stored as tokenizer.json.gz) rather than a model directory.
  if (fs::is_regular_file(dir, ec) || (!fs::is_directory(dir, ec) && DataFileExists(dir))) {
    return FromFile(dir);
  }
  const fs::path file = dir / "tokenizer.json";
  if (!DataFileExists(file)) {
    return NotFound("{}: no tokenizer.json (only Hugging Face fast-tokenizer files are supported)",
                    dir.string());
  }
  ASSIGN_OR_RETURN(Tokenizer tokenizer, FromFile(file));
  const fs::path config_path = dir / "tokenizer_config.json";
  if (fs::exists(config_path, ec)) {
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path));
    const json config = json::parse(text, nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      return DataLoss("{}: not a valid JSON object", config_path.string());
    }
    auto token_field = [&](const char* key) -> std::string {
      auto it = config.find(key);
      if (it == config.end()) return "";
      if (it->is_string()) return it->get<std::string>();
      if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
        return (*it)["content"].get<std::string>();
      }
      return "";
    };
    tokenizer.impl_->bos = token_field("bos_token");
    tokenizer.impl_->eos = token_field("eos_token");
    tokenizer.impl_->pad = token_field("pad_token");
    // transformers' decode() applies this clean-up when the config asks for it (default true in
    // old configs; Qwen sets false).
    tokenizer.impl_->cleanup_spaces = BoolField(config, "clean_up_tokenization_spaces", false);
  }
  return tokenizer;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  const Impl& im = *impl_;
  std::string repaired;
  if (!unicode::IsValidUtf8(text)) {
    // Python strings are always valid Unicode; map stray bytes the way a lossy decode would.
    repaired = unicode::Utf8Lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), im.prefix_ids.begin(), im.prefix_ids.end());
  std::vector<std::pair<std::string_view, int32_t>> segments;
  im.SplitAdded(text, im.raw_matcher, &segments);
  std::vector<std::pair<std::string_view, int32_t>> inner;
  for (const auto& [seg, id] : segments) {
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    std::string normalized;
    std::string_view view = seg;
    if (im.nfc && !unicode::IsNfcQuick(seg)) {
      normalized = unicode::Nfc(seg);
      view = normalized;
    }
    if (im.normalized_matcher.empty()) {
      im.EncodeSegment(view, &ids);
      continue;
    }
    inner.clear();
    im.SplitAdded(view, im.normalized_matcher, &inner);
    for (const auto& [sub, sub_id] : inner) {
      if (sub_id >= 0) {
        ids.push_back(sub_id);
      } else {
        im.EncodeSegment(sub, &ids);
      }
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), im.suffix_ids.begin(), im.suffix_ids.end());
  return ids;
}

std::string Tokenizer::DecodeBytes(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::string out;
  for (const int32_t id : ids) {
    if (id < 0) continue;
    if (!im.added_by_id.empty()) {
      auto it = im.added_by_id.find(id);
      if (it != im.added_by_id.end()) {
        const AddedToken& a = im.added[it->second];
        if (!(skip_special_tokens && a.special)) out.append(a.content);
        continue;
      }
    }
    if (static_cast<size_t>(id) < im.id_bytes.size() && im.id_present[id]) {
      out.append(im.id_bytes[id]);
    }
  }
  return out;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string text = unicode::Utf8Lossy(DecodeBytes(ids, skip_special_tokens));
  if (impl_->cleanup_spaces) text = CleanUpTokenizationSpaces(std::move(text));
  return text;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) {
    return impl_->added[it->second].id;
  }
  if (auto it = impl_->vocab.find(token); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::IdToToken(int32_t id) const {
  if (id < 0) return "";
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
    return impl_->added[it->second].content;
  }
  if (static_cast<size_t>(id) < impl_->id_token.size()) return impl_->id_token[id];
  return "";
}

bool Tokenizer::IsSpecial(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

size_t Tokenizer::VocabSize() const { return impl_->vocab_size; }
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
const std::string& Tokenizer::bos_token() const { return impl_->bos; }
const std::string& Tokenizer::eos_token() const { return impl_->eos; }
const std::string& Tokenizer::pad_token() const { return impl_->pad; }

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

std::string StreamDecoder::Push(int32_t id) {
  pending_.push_back(id);
  const std::string bytes = tokenizer_.DecodeBytes(pending_, skip_special_);
  const size_t hold = unicode::IncompleteUtf8Suffix(bytes);
  const size_t final_end = bytes.size() - hold;
  std::string out;
  if (final_end > emitted_bytes_) {
    out = unicode::Utf8Lossy(
        std::string_view(bytes).substr(emitted_bytes_, final_end - emitted_bytes_));
  }
  if (hold == 0) {
    pending_.clear();
    emitted_bytes_ = 0;
  } else {
    emitted_bytes_ = final_end;
  }
  return out;
}

std::string StreamDecoder::Flush() {
  const std::string bytes = tokenizer_.DecodeBytes(pending_, skip_special_);
  std::string out;
  if (bytes.size() > emitted_bytes_) {
    out = unicode::Utf8Lossy(std::string_view(bytes).substr(emitted_bytes_));
  }
  pending_.clear();
  emitted_bytes_ = 0;
  return out;
}

}  // namespace rvec
