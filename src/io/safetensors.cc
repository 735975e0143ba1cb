// safetensors header parsing and validation (mirroring huggingface/safetensors), header
// serialisation, and the memory-mapped file reader.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/utf8.h"
#include "io/strict_json.h"

namespace rvec {

namespace {

using nlohmann::json;

// Dtypes the reference knows but rvec does not compute with: a clear "unsupported" rather than
// "unknown" error.
bool IsKnownUnsupportedDType(std::string_view name) {
  static constexpr std::string_view kOthers[] = {"U16", "U32",     "U64",     "F8_E8M0",
                                                 "F4",  "F6_E2M3", "F6_E3M2", "C64"};
  return std::find(std::begin(kOthers), std::end(kOthers), name) != std::end(kOthers);
}

// A JSON number that is a non-negative integer (what serde's usize accepts), else nullopt.
std::optional<uint64_t> AsUnsigned(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v >= 0) return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Status ParseTensorEntry(const std::string& name, const json& entry, std::string_view label,
                        TensorInfo* info) {
  auto fail = [&](std::string why) {
    return Status(StatusCode::kDataLoss,
                  fmt::format("{}: tensor \"{}\": {}", label, name, std::move(why)));
  };
  if (!entry.is_object()) {
    return fail(fmt::format("expected an object with dtype, shape and data_offsets, found {}",
                            JsonTypeName(entry)));
  }
  info->name = name;
  // dtype
  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end()) return fail("missing field \"dtype\"");
  if (!dtype_it->is_string()) {
    return fail(fmt::format("\"dtype\" must be a string, found {}", JsonTypeName(*dtype_it)));
  }
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  const std::optional<DType> dtype = ParseDType(dtype_name);
  if (!dtype) {
    if (IsKnownUnsupportedDType(dtype_name)) {
      return Status(StatusCode::kUnimplemented,
                    fmt::format("{}: tensor \"{}\": dtype {} is valid safetensors but not "
                                "supported by rvec",
                                label, name, dtype_name));
    }
    return fail(fmt::format("unknown dtype \"{}\"", dtype_name));
  }
  info->dtype = *dtype;
  // shape
  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end()) return fail("missing field \"shape\"");
  if (!shape_it->is_array()) {
    return fail(fmt::format("\"shape\" must be an array of non-negative integers, found {}",
                            JsonTypeName(*shape_it)));
  }
  info->shape.clear();
  info->shape.reserve(shape_it->size());
  for (size_t d = 0; d < shape_it->size(); ++d) {
    const json& dim = (*shape_it)[d];
    const std::optional<uint64_t> v = AsUnsigned(dim);
    if (!v) {
      return fail(fmt::format("shape dimension {} is {} ({}), expected a non-negative integer", d,
                              JsonTypeName(dim), dim.dump()));
    }
    // The reference keeps dimensions as usize; we keep int64_t, which no real tensor exceeds.
    if (*v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fail(fmt::format("shape dimension {} ({}) is too large", d, *v));
    }
    info->shape.push_back(static_cast<int64_t>(*v));
  }
  // data_offsets
  const auto off_it = entry.find("data_offsets");
  if (off_it == entry.end()) return fail("missing field \"data_offsets\"");
  if (!off_it->is_array() || off_it->size() != 2) {
    return fail(fmt::format("\"data_offsets\" must be [begin, end], found {}", off_it->dump()));
  }
  const std::optional<uint64_t> begin = AsUnsigned((*off_it)[0]);
  const std::optional<uint64_t> end = AsUnsigned((*off_it)[1]);
  if (!begin || !end) {
    return fail(fmt::format("\"data_offsets\" must be two non-negative integers, found {}",
                            off_it->dump()));
  }
  info->begin = *begin;
  info->end = *end;
  return OkStatus();
}

}  // namespace

uint64_t TensorInfo::NumElements() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view header_json, uint64_t data_size,
                                                   std::string_view label) {
  if (const size_t bad = FindInvalidUtf8(header_json); bad != std::string_view::npos) {
    return DataLoss("{}: header is not valid UTF-8 (byte {} of the header)", label, bad);
  }
  // nlohmann skips a UTF-8 byte order mark; serde_json (the reference) does not.
  if (header_json.substr(0, 3) == "\xEF\xBB\xBF") {
    return DataLoss("{}: header starts with a UTF-8 byte order mark, which safetensors rejects",
                    label);
  }
  // nlohmann stops at a NUL as if the input ended; serde_json (and JSON) reject it anywhere.
  if (const size_t nul = header_json.find('\0'); nul != std::string_view::npos) {
    return DataLoss(
        "{}: header is not valid JSON: NUL byte at offset {} of the header (safetensors pads "
        "headers with spaces, not NULs)",
        label, nul);
  }
  ASSIGN_OR_RETURN(json root, ParseStrictJson(header_json, label, "header"));
  if (!root.is_object()) {
    return DataLoss("{}: header must be a JSON object, found {}", label, JsonTypeName(root));
  }
  SafetensorsHeader header;
  header.header_size = header_json.size();
  header.tensors.reserve(root.size());
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    if (key == "__metadata__") {
      if (value.is_null()) continue;  // serde reads null as "no metadata"
      if (!value.is_object()) {
        return DataLoss("{}: __metadata__ must be an object of string values, found {}", label,
                        JsonTypeName(value));
      }
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) {
          return DataLoss(
              "{}: __metadata__ entry \"{}\" is {} ({}); safetensors metadata values must be "
              "strings",
              label, m.key(), JsonTypeName(m.value()), m.value().dump());
        }
        header.metadata.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    TensorInfo info;
    RETURN_IF_ERROR(ParseTensorEntry(key, value, label, &info));
    header.tensors.push_back(std::move(info));
  }
  // The reference sorts by (begin, end) and then requires the ranges to tile [0, data_size).
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) {
              if (a.begin != b.begin) return a.begin < b.begin;
              if (a.end != b.end) return a.end < b.end;
              return a.name < b.name;
            });
  uint64_t start = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : header.tensors) {
    if (t.end < t.begin) {
      return DataLoss("{}: tensor \"{}\": data_offsets [{}, {}] end before they begin", label,
                      t.name, t.begin, t.end);
    }
    if (t.begin != start) {
      if (t.begin < start) {
        return DataLoss(
            "{}: tensor \"{}\": data_offsets [{}, {}] overlap tensor \"{}\", which ends at {}",
            label, t.name, t.begin, t.end, previous ? previous->name : "", start);
      }
      if (previous == nullptr) {
        return DataLoss(
            "{}: tensor \"{}\": data_offsets [{}, {}] leave a hole of {} bytes at the start of "
            "the data (the first tensor must begin at 0)",
            label, t.name, t.begin, t.end, t.begin - start);
      }
      return DataLoss(
          "{}: tensor \"{}\": data_offsets [{}, {}] leave a hole of {} bytes after tensor "
          "\"{}\", which ends at {}",
          label, t.name, t.begin, t.end, t.begin - start, previous->name, start);
    }
    start = t.end;
    uint64_t elements = 1;
    for (int64_t d : t.shape) {
      if (d != 0 && elements > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
        return DataLoss("{}: tensor \"{}\": shape {} has more elements than fit in 64 bits", label,
                        t.name, ShapeString(t.shape));
      }
      elements *= static_cast<uint64_t>(d);
    }
    const uint64_t elem = DTypeSize(t.dtype);
    if (elements > std::numeric_limits<uint64_t>::max() / elem) {
      return DataLoss("{}: tensor \"{}\": shape {} of {} overflows 64 bits in bytes", label, t.name,
                      ShapeString(t.shape), DTypeName(t.dtype));
    }
    const uint64_t nbytes = elements * elem;
    if (t.end - t.begin != nbytes) {
      return DataLoss(
          "{}: tensor \"{}\": shape {} of {} needs {} bytes but data_offsets [{}, {}] span {}",
          label, t.name, ShapeString(t.shape), DTypeName(t.dtype), nbytes, t.begin, t.end,
          t.end - t.begin);
    }
    previous = &t;
  }
  if (start != data_size) {
    if (start < data_size) {
      return DataLoss(
          "{}: the tensors cover {} bytes of data but {} bytes follow the header ({} unexplained "
          "trailing bytes)",
          label, start, data_size, data_size - start);
    }
    return DataLoss(
        "{}: the tensors need {} bytes of data but only {} bytes follow the header (file "
        "truncated?)",
        label, start, data_size);
  }
  return header;
}

StatusOr<SafetensorsHeader> ParseSafetensorsBuffer(const uint8_t* bytes, uint64_t size,
                                                   std::string_view label) {
  if (size < 8) {
    return DataLoss(
        "{}: file is {} bytes, too short for the 8-byte header length of a safetensors file", label,
        size);
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxSafetensorsHeaderSize) {
    if (bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4) {
      return DataLoss(
          "{}: this is a zip archive (a PyTorch .bin/.pt checkpoint?), not a safetensors file",
          label);
    }
    return DataLoss(
        "{}: header length {} exceeds the safetensors limit of {} bytes (corrupt, or not a "
        "safetensors file)",
        label, n, kMaxSafetensorsHeaderSize);
  }
  if (n > size - 8) {
    return DataLoss(
        "{}: header length {} runs past the end of the file ({} bytes after the length "
        "prefix; truncated?)",
        label, n, size - 8);
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes + 8), n);
  return ParseSafetensorsHeader(header, size - 8 - n, label);
}

std::string SerializeSafetensorsHeader(const std::vector<TensorInfo>& tensors,
                                       const std::map<std::string, std::string>& metadata) {
  // Strings go through nlohmann's dump, which escapes exactly what serde_json escapes (quote,
  // backslash, control characters) and leaves other UTF-8 as is.
  auto quote = [](const std::string& s) { return json(s).dump(); };
  std::string out = "{";
  bool first = true;
  if (!metadata.empty()) {
    out += "\"__metadata__\":{";
    bool first_meta = true;
    for (const auto& [k, v] : metadata) {
      if (!first_meta) out += ',';
      first_meta = false;
      out += quote(k);
      out += ':';
      out += quote(v);
    }
    out += '}';
    first = false;
  }
  for (const TensorInfo& t : tensors) {
    if (!first) out += ',';
    first = false;
    out += quote(t.name);
    out += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                       DTypeName(t.dtype), fmt::join(t.shape, ","), t.begin, t.end);
  }
  out += '}';
  out.append((8 - out.size() % 8) % 8, ' ');
  return out;
}

StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::filesystem::path& path) {
  SafetensorsFile file;
  ASSIGN_OR_RETURN(file.file_, MappedFile::Open(path));
  if (file.file_.size() == 0) {
    return DataLoss("{}: file is empty (0 bytes), not a safetensors file", path.string());
  }
  ASSIGN_OR_RETURN(file.header_,
                   ParseSafetensorsBuffer(file.file_.data(), file.file_.size(), path.string()));
  for (size_t i = 0; i < file.header_.tensors.size(); ++i) {
    file.by_name_.emplace(file.header_.tensors[i].name, i);
  }
  return file;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView SafetensorsFile::View(const TensorInfo& info) const {
  return TensorView{&info, file_.data() + data_offset() + info.begin};
}

std::string_view SafetensorsFile::RawHeader() const {
  return std::string_view(reinterpret_cast<const char*>(file_.data()) + 8, header_.header_size);
}

void SafetensorsFile::Release(const TensorInfo& info) const {
  file_.Release(data_offset() + info.begin, info.NumBytes());
}

void SafetensorsFile::Prefetch(const TensorInfo& info) const {
  file_.Prefetch(data_offset() + info.begin, info.NumBytes());
}

}  // namespace rvec
