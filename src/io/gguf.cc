// GGUF v3 writer and reader: little-endian scalars, length-prefixed strings, typed arrays,
// a tensor table with aligned offsets, then the aligned data section.
#include "io/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "base/dtype.h"

namespace rvec {
namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
// Elements converted per write: 1 Mi floats keeps the buffers at a few MiB for any tensor.
constexpr size_t kChunkElements = size_t{1} << 20;
// Bounds that keep a corrupt header from asking for absurd allocations.
constexpr uint64_t kMaxDims = 4;
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;

uint64_t AlignUp(uint64_t v) { return (v + kGgufAlignment - 1) / kGgufAlignment * kGgufAlignment; }

// Appends little-endian scalars (the hosts rvec builds for are little-endian, as GGUF is).
template <typename T>
void Put(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

void PutString(std::string& out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out.append(s);
}

Status PutValue(std::string& out, const GgufValue& v, const std::string& key) {
  switch (v.type) {
    case GgufType::kUint8:
      Put<uint8_t>(out, static_cast<uint8_t>(v.u));
      break;
    case GgufType::kInt8:
      Put<int8_t>(out, static_cast<int8_t>(v.i));
      break;
    case GgufType::kUint16:
      Put<uint16_t>(out, static_cast<uint16_t>(v.u));
      break;
    case GgufType::kInt16:
      Put<int16_t>(out, static_cast<int16_t>(v.i));
      break;
    case GgufType::kUint32:
      Put<uint32_t>(out, static_cast<uint32_t>(v.u));
      break;
    case GgufType::kInt32:
      Put<int32_t>(out, static_cast<int32_t>(v.i));
      break;
    case GgufType::kUint64:
      Put<uint64_t>(out, v.u);
      break;
    case GgufType::kInt64:
      Put<int64_t>(out, v.i);
      break;
    case GgufType::kFloat32:
      Put<float>(out, static_cast<float>(v.f));
      break;
    case GgufType::kFloat64:
      Put<double>(out, v.f);
      break;
    case GgufType::kBool:
      Put<uint8_t>(out, v.b ? 1 : 0);
      break;
    case GgufType::kString:
      PutString(out, v.s);
      break;
    case GgufType::kArray:
      Put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      Put<uint64_t>(out, v.array.size());
      for (const GgufValue& e : v.array) {
        if (e.type != v.elem_type) {
          return InvalidArgument("GGUF key {}: array of {} holds a {}", key,
                                 GgufTypeName(v.elem_type), GgufTypeName(e.type));
        }
        RETURN_IF_ERROR(PutValue(out, e, key));
      }
      break;
  }
  return OkStatus();
}

void StoreChunk(GgmlType type, const float* in, size_t n, uint8_t* out) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(out, in, n * sizeof(float));
      break;
    case GgmlType::kF16:
      for (size_t k = 0; k < n; ++k) {
        const uint16_t h = F32ToF16(in[k]);
        std::memcpy(out + 2 * k, &h, 2);
      }
      break;
    case GgmlType::kBF16:
      for (size_t k = 0; k < n; ++k) {
        const uint16_t h = F32ToBF16(in[k]);
        std::memcpy(out + 2 * k, &h, 2);
      }
      break;
  }
}

// A file descriptor that writes everything or reports the path, and closes itself.
class OutFile {
 public:
  explicit OutFile(std::filesystem::path path) : path_(std::move(path)) {}
  ~OutFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Open() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return IoError("{}: cannot create: {}", path_.string(), std::strerror(errno));
    return OkStatus();
  }
  Status Write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return IoError("{}: write failed: {}", path_.string(), std::strerror(errno));
      p += w;
      n -= static_cast<size_t>(w);
      written_ += static_cast<uint64_t>(w);
    }
    return OkStatus();
  }
  Status Pad() {
    static const char kZeros[kGgufAlignment] = {};
    return Write(kZeros, AlignUp(written_) - written_);
  }
  Status Close() {
    const int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      return IoError("{}: cannot finish writing: {}", path_.string(), std::strerror(errno));
    }
    return OkStatus();
  }
  uint64_t written() const { return written_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

// Header, metadata and tensor table, with each tensor's offset in the aligned data section.
Status WriteTensorData(OutFile& file, const GgufTensorSource& t, Progress* progress) {
  const uint64_t n = t.NumElements();
  const size_t esize = GgmlTypeSize(t.type);
  std::vector<float> f32(std::min<uint64_t>(n, kChunkElements));
  std::vector<uint8_t> bytes(f32.size() * esize);
  for (uint64_t first = 0; first < n; first += kChunkElements) {
    const size_t count = static_cast<size_t>(std::min<uint64_t>(kChunkElements, n - first));
    RETURN_IF_ERROR(t.fill(first, count, f32.data()));
    StoreChunk(t.type, f32.data(), count, bytes.data());
    RETURN_IF_ERROR(file.Write(bytes.data(), count * esize));
    if (progress != nullptr) progress->Advance(count * esize);
  }
  return file.Pad();
}

// Bounds-checked little-endian reads over the mapped file; errors name the file and the field.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, std::string label)
      : data_(data), size_(size), label_(std::move(label)) {}

  template <typename T>
  StatusOr<T> Get(std::string_view what) {
    if (size_ - pos_ < sizeof(T)) return Truncated(what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  StatusOr<std::string> GetString(std::string_view what) {
    ASSIGN_OR_RETURN(uint64_t n, Get<uint64_t>(what));
    if (n > kMaxStringBytes || size_ - pos_ < n) return Truncated(what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  Status Truncated(std::string_view what) const {
    return DataLoss("{}: GGUF file ends inside {} (byte {})", label_, what, pos_);
  }
  uint64_t pos() const { return pos_; }
  uint64_t size() const { return size_; }
  const std::string& label() const { return label_; }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string label_;
};

template <typename T, typename Dst>
Status ReadInto(Cursor& in, const std::string& key, Dst& dst) {
  ASSIGN_OR_RETURN(T x, in.Get<T>(key));
  dst = static_cast<Dst>(x);
  return OkStatus();
}

bool KnownType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

StatusOr<GgufValue> GetValue(Cursor& in, GgufType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  Status st;
  switch (type) {
    case GgufType::kUint8:
      st = ReadInto<uint8_t>(in, key, v.u);
      break;
    case GgufType::kInt8:
      st = ReadInto<int8_t>(in, key, v.i);
      break;
    case GgufType::kUint16:
      st = ReadInto<uint16_t>(in, key, v.u);
      break;
    case GgufType::kInt16:
      st = ReadInto<int16_t>(in, key, v.i);
      break;
    case GgufType::kUint32:
      st = ReadInto<uint32_t>(in, key, v.u);
      break;
    case GgufType::kInt32:
      st = ReadInto<int32_t>(in, key, v.i);
      break;
    case GgufType::kUint64:
      st = ReadInto<uint64_t>(in, key, v.u);
      break;
    case GgufType::kInt64:
      st = ReadInto<int64_t>(in, key, v.i);
      break;
    case GgufType::kFloat32:
      st = ReadInto<float>(in, key, v.f);
      break;
    case GgufType::kFloat64:
      st = ReadInto<double>(in, key, v.f);
      break;
    case GgufType::kBool: {
      uint64_t b = 0;
      st = ReadInto<uint8_t>(in, key, b);
      if (st.ok() && b > 1) return DataLoss("{}: GGUF key {}: bool byte is {}", in.label(), key, b);
      v.b = b == 1;
      break;
    }
    case GgufType::kString: {
      StatusOr<std::string> s = in.GetString(key);
      if (!s.ok()) return s.status();
      v.s = std::move(s).value();
      break;
    }
    case GgufType::kArray: {
      ASSIGN_OR_RETURN(uint32_t et, in.Get<uint32_t>(key));
      if (!KnownType(et) || (et == static_cast<uint32_t>(GgufType::kArray) && depth > 2)) {
        return DataLoss("{}: GGUF key {}: unknown array element type {}", in.label(), key, et);
      }
      v.elem_type = static_cast<GgufType>(et);
      ASSIGN_OR_RETURN(uint64_t n, in.Get<uint64_t>(key));
      // Every element takes at least one byte, so a count beyond the file is corrupt.
      if (n > in.size() - in.pos()) return in.Truncated(key);
      v.array.reserve(n);
      for (uint64_t k = 0; k < n; ++k) {
        ASSIGN_OR_RETURN(GgufValue e, GetValue(in, v.elem_type, key, depth + 1));
        v.array.push_back(std::move(e));
      }
      break;
    }
  }
  if (!st.ok()) return st;
  return v;
}

StatusOr<GgufTensorInfo> GetTensorInfo(Cursor& in) {
  GgufTensorInfo t;
  ASSIGN_OR_RETURN(t.name, in.GetString("a tensor name"));
  ASSIGN_OR_RETURN(uint32_t n_dims, in.Get<uint32_t>(t.name));
  if (n_dims == 0 || n_dims > kMaxDims) {
    return DataLoss("{}: GGUF tensor {}: {} dimensions", in.label(), t.name, n_dims);
  }
  for (uint32_t d = 0; d < n_dims; ++d) {
    ASSIGN_OR_RETURN(uint64_t dim, in.Get<uint64_t>(t.name));
    t.dims.push_back(dim);
  }
  ASSIGN_OR_RETURN(uint32_t type, in.Get<uint32_t>(t.name));
  if (type != 0 && type != 1 && type != 30) {
    return DataLoss("{}: GGUF tensor {}: ggml type {} is not f32, f16 or bf16", in.label(), t.name,
                    type);
  }
  t.type = static_cast<GgmlType>(type);
  ASSIGN_OR_RETURN(t.offset, in.Get<uint64_t>(t.name));
  if (t.offset % kGgufAlignment != 0) {
    return DataLoss("{}: GGUF tensor {}: offset {} is not {}-byte aligned", in.label(), t.name,
                    t.offset, kGgufAlignment);
  }
  return t;
}

}  // namespace

std::string_view GgufTypeName(GgufType type) {
  static constexpr std::string_view kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                "int32",  "float32", "bool",   "string", "array",
                                                "uint64", "int64",   "float64"};
  const auto i = static_cast<uint32_t>(type);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

GgufValue GgufValue::Uint(GgufType type, uint64_t v) {
  GgufValue g;
  g.type = type;
  g.u = v;
  return g;
}
GgufValue GgufValue::Int(GgufType type, int64_t v) {
  GgufValue g;
  g.type = type;
  g.i = v;
  return g;
}
GgufValue GgufValue::Float(GgufType type, double v) {
  GgufValue g;
  g.type = type;
  // A float32 value is held as the float it will be written as, so a read-back compares equal.
  g.f = type == GgufType::kFloat32 ? static_cast<double>(static_cast<float>(v)) : v;
  return g;
}
GgufValue GgufValue::Bool(bool v) {
  GgufValue g;
  g.type = GgufType::kBool;
  g.b = v;
  return g;
}
GgufValue GgufValue::String(std::string v) {
  GgufValue g;
  g.type = GgufType::kString;
  g.s = std::move(v);
  return g;
}
GgufValue GgufValue::Array(GgufType elem_type, std::vector<GgufValue> elems) {
  GgufValue g;
  g.type = GgufType::kArray;
  g.elem_type = elem_type;
  g.array = std::move(elems);
  return g;
}
GgufValue GgufValue::StringArray(const std::vector<std::string>& v) {
  std::vector<GgufValue> elems;
  elems.reserve(v.size());
  for (const std::string& s : v) elems.push_back(String(s));
  return Array(GgufType::kString, std::move(elems));
}
GgufValue GgufValue::I32Array(const std::vector<int32_t>& v) {
  std::vector<GgufValue> elems;
  elems.reserve(v.size());
  for (int32_t x : v) elems.push_back(I32(x));
  return Array(GgufType::kInt32, std::move(elems));
}

bool GgufValue::operator==(const GgufValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case GgufType::kBool:
      return b == o.b;
    case GgufType::kString:
      return s == o.s;
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      return f == o.f;
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      return i == o.i;
    case GgufType::kArray:
      return elem_type == o.elem_type && array == o.array;
    default:
      return u == o.u;
  }
}

std::string_view GgmlTypeName(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return "f32";
    case GgmlType::kF16:
      return "f16";
    case GgmlType::kBF16:
      return "bf16";
  }
  return "unknown";
}

size_t GgmlTypeSize(GgmlType type) { return type == GgmlType::kF32 ? 4 : 2; }

uint64_t GgufTensorSource::NumElements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

uint64_t GgufTensorInfo::NumElements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

StatusOr<uint64_t> WriteGguf(const std::filesystem::path& path, const std::vector<GgufKv>& kvs,
                             const std::vector<GgufTensorSource>& tensors, Progress* progress) {
  std::vector<GgufTensorInfo> infos;
  uint64_t offset = 0;
  for (const GgufTensorSource& t : tensors) {
    infos.push_back({t.name, t.dims, t.type, offset});
    offset = AlignUp(offset + t.NumBytes());
  }
  ASSIGN_OR_RETURN(std::string head, SerializeGgufHeader(kvs, infos));
  if (progress != nullptr) {
    uint64_t total = 0;
    for (const GgufTensorSource& t : tensors) total += t.NumBytes();
    progress->SetTotal(total);
  }
  OutFile file(path);
  RETURN_IF_ERROR(file.Open());
  RETURN_IF_ERROR(file.Write(head.data(), head.size()));
  RETURN_IF_ERROR(file.Pad());
  for (const GgufTensorSource& t : tensors) RETURN_IF_ERROR(WriteTensorData(file, t, progress));
  const uint64_t size = file.written();
  RETURN_IF_ERROR(file.Close());
  return size;
}

StatusOr<std::string> SerializeGgufHeader(const std::vector<GgufKv>& kvs,
                                          const std::vector<GgufTensorInfo>& tensors) {
  std::string head(kMagic, 4);
  Put<uint32_t>(head, kGgufVersion);
  Put<uint64_t>(head, tensors.size());
  Put<uint64_t>(head, kvs.size());
  for (const auto& [key, value] : kvs) {
    PutString(head, key);
    Put<uint32_t>(head, static_cast<uint32_t>(value.type));
    RETURN_IF_ERROR(PutValue(head, value, key));
  }
  for (const GgufTensorInfo& t : tensors) {
    if (t.dims.empty() || t.dims.size() > kMaxDims) {
      return InvalidArgument("GGUF tensor {}: {} dimensions (1 to {} allowed)", t.name,
                             t.dims.size(), kMaxDims);
    }
    PutString(head, t.name);
    Put<uint32_t>(head, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) Put<uint64_t>(head, d);
    Put<uint32_t>(head, static_cast<uint32_t>(t.type));
    Put<uint64_t>(head, t.offset);
  }
  return head;
}

StatusOr<GgufHeader> ParseGgufBuffer(const uint8_t* data, uint64_t size, std::string_view label) {
  const std::string name(label);
  GgufHeader h;
  Cursor in(data, size, name);
  if (size < 4 || std::memcmp(data, kMagic, 4) != 0) {
    return DataLoss("{}: not a GGUF file (no GGUF magic)", name);
  }
  RETURN_IF_ERROR(in.Get<uint32_t>("the magic").status());
  ASSIGN_OR_RETURN(h.version, in.Get<uint32_t>("the version"));
  if (h.version != 2 && h.version != 3) {
    return DataLoss("{}: GGUF version {} (rvec reads 2 and 3)", name, h.version);
  }
  ASSIGN_OR_RETURN(uint64_t n_tensors, in.Get<uint64_t>("the tensor count"));
  ASSIGN_OR_RETURN(uint64_t n_kv, in.Get<uint64_t>("the metadata count"));
  if (n_kv > size || n_tensors > size) return in.Truncated("the header");
  for (uint64_t k = 0; k < n_kv; ++k) {
    ASSIGN_OR_RETURN(std::string key, in.GetString("a metadata key"));
    ASSIGN_OR_RETURN(uint32_t type, in.Get<uint32_t>(key));
    if (!KnownType(type)) return DataLoss("{}: GGUF key {}: unknown type {}", name, key, type);
    ASSIGN_OR_RETURN(GgufValue value, GetValue(in, static_cast<GgufType>(type), key, 0));
    h.kvs.emplace_back(std::move(key), std::move(value));
  }
  for (uint64_t k = 0; k < n_tensors; ++k) {
    ASSIGN_OR_RETURN(GgufTensorInfo t, GetTensorInfo(in));
    h.tensors.push_back(std::move(t));
  }
  for (const auto& [key, value] : h.kvs) {
    if (key == "general.alignment" && value.u != kGgufAlignment) {
      return Unimplemented("{}: general.alignment {} (rvec reads {}-byte alignment)", name, value.u,
                           kGgufAlignment);
    }
  }
  h.data_offset = AlignUp(in.pos());
  for (const GgufTensorInfo& t : h.tensors) {
    // Checked arithmetic: corrupt dimensions must not wrap around into a small, "valid" size.
    uint64_t bytes = GgmlTypeSize(t.type), end = 0;
    bool overflow = false;
    for (uint64_t d : t.dims) overflow = overflow || __builtin_mul_overflow(bytes, d, &bytes);
    overflow = overflow || __builtin_add_overflow(h.data_offset, t.offset, &end) ||
               __builtin_add_overflow(end, bytes, &end);
    if (overflow || end > size) {
      return DataLoss("{}: GGUF tensor {} ends at byte {}, past the file's end ({})", name, t.name,
                      end, size);
    }
  }
  return h;
}

StatusOr<GgufFile> GgufFile::Open(const std::filesystem::path& path) {
  GgufFile g;
  ASSIGN_OR_RETURN(g.file_, MappedFile::Open(path));
  ASSIGN_OR_RETURN(GgufHeader h, ParseGgufBuffer(g.file_.data(), g.file_.size(), path.string()));
  g.version_ = h.version;
  g.kvs_ = std::move(h.kvs);
  g.tensors_ = std::move(h.tensors);
  g.data_offset_ = h.data_offset;
  return g;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  for (const auto& [k, v] : kvs_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const uint8_t* GgufFile::TensorData(const GgufTensorInfo& info) const {
  return file_.data() + data_offset_ + info.offset;
}

std::vector<float> GgufFile::TensorAsF32(const GgufTensorInfo& info) const {
  const uint8_t* p = TensorData(info);
  std::vector<float> out(info.NumElements());
  for (size_t k = 0; k < out.size(); ++k) {
    switch (info.type) {
      case GgmlType::kF32:
        std::memcpy(&out[k], p + 4 * k, 4);
        break;
      case GgmlType::kF16:
        out[k] = LoadAsF32(DType::kF16, p, k);
        break;
      case GgmlType::kBF16:
        out[k] = LoadAsF32(DType::kBF16, p, k);
        break;
    }
  }
  return out;
}

}  // namespace rvec
