#include "entrosum/io/npz.hpp"

#include <array>
#include <cstring>
#include <fstream>
#include <limits>

#include "entrosum/core/errors.hpp"

namespace entrosum::npz {

namespace {

// Zip record signatures (APPNOTE.TXT 4.3).
constexpr std::uint32_t kLocalHeader = 0x04034b50;
constexpr std::uint32_t kCentralHeader = 0x02014b50;
constexpr std::uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr std::uint32_t kZip64EndOfCentralDirectory = 0x06064b50;
constexpr std::uint32_t kZip64Locator = 0x07064b50;
constexpr std::uint16_t kZip64ExtraField = 0x0001;
constexpr std::size_t kEndRecordSize = 22;
constexpr std::size_t kLocatorSize = 20;
constexpr std::size_t kCentralHeaderSize = 46;
constexpr std::size_t kLocalHeaderSize = 30;

/// Little-endian reads at an offset checked against the end of the buffer.
class Reader {
 public:
  Reader(std::string_view bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  std::uint64_t read(std::uint64_t offset, int width) const {
    require(offset, static_cast<std::uint64_t>(width));
    std::uint64_t value = 0;
    for (int i = width - 1; i >= 0; --i)
      value = (value << 8) | static_cast<unsigned char>(bytes_[static_cast<std::size_t>(offset) + i]);
    return value;
  }
  std::uint16_t u16(std::uint64_t offset) const { return static_cast<std::uint16_t>(read(offset, 2)); }
  std::uint32_t u32(std::uint64_t offset) const { return static_cast<std::uint32_t>(read(offset, 4)); }
  std::uint64_t u64(std::uint64_t offset) const { return read(offset, 8); }
  std::string_view slice(std::uint64_t offset, std::uint64_t size) const {
    require(offset, size);
    return bytes_.substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(size));
  }
  void require(std::uint64_t offset, std::uint64_t size) const {
    if (offset > bytes_.size() || size > bytes_.size() - offset)
      throw FormatError(path_ + ": a zip record points past the end of the file (truncated or corrupt)");
  }

 private:
  std::string_view bytes_;
  const std::string& path_;
};

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) throw FormatError(path + ": cannot open the file");
  const std::streamoff size = file.tellg();
  if (size < 0) throw FormatError(path + ": cannot read the file");
  std::string contents(static_cast<std::size_t>(size), '\0');
  file.seekg(0);
  file.read(contents.data(), size);
  if (!file) throw FormatError(path + ": cannot read the file");
  return contents;
}

/// Offset of the end-of-central-directory record: the last signature that leaves room for its comment.
std::uint64_t find_end_record(const Reader& reader, std::size_t size, const std::string& path) {
  if (size >= kEndRecordSize) {
    const std::size_t lowest = size > kEndRecordSize + 0xFFFF ? size - kEndRecordSize - 0xFFFF : 0;
    for (std::size_t offset = size - kEndRecordSize + 1; offset-- > lowest;) {
      if (reader.u32(offset) == kEndOfCentralDirectory && offset + kEndRecordSize + reader.u16(offset + 20) == size)
        return offset;
    }
  }
  throw FormatError(path + ": no zip end-of-central-directory record; the file is not an .npz archive or is truncated");
}

// ---- .npy headers -----------------------------------------------------------------------------------

/// The value of `key` in the header's Python dict literal, e.g. "'<f8'", "False", "(3, 4)".
std::string header_value(const std::string& header, const std::string& key, const std::string& what) {
  const std::string quoted = "'" + key + "'";
  std::size_t at = header.find(quoted);
  if (at == std::string::npos) throw FormatError(what + ": the .npy header has no " + quoted);
  at = header.find(':', at + quoted.size());
  if (at == std::string::npos) throw FormatError(what + ": malformed .npy header");
  ++at;
  while (at < header.size() && header[at] == ' ') ++at;
  std::size_t end = at;
  if (at < header.size() && header[at] == '(') {
    end = header.find(')', at);
    if (end == std::string::npos) throw FormatError(what + ": malformed shape in the .npy header");
    ++end;
  } else if (at < header.size() && header[at] == '\'') {
    end = header.find('\'', at + 1);
    if (end == std::string::npos) throw FormatError(what + ": malformed dtype in the .npy header");
    ++end;
  } else {
    while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  }
  return header.substr(at, end - at);
}

std::vector<std::int64_t> parse_shape(const std::string& text, const std::string& what) {
  // "(3, 4)", "(3,)" or "()"
  std::vector<std::int64_t> shape;
  std::size_t at = 1;
  while (at + 1 < text.size()) {
    while (at < text.size() && (text[at] == ' ' || text[at] == ',')) ++at;
    if (at + 1 >= text.size()) break;
    std::size_t end = at;
    std::int64_t extent = 0;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') {
      if (extent > (std::numeric_limits<std::int64_t>::max() - 9) / 10)
        throw FormatError(what + ": an extent in the .npy shape is too large");
      extent = extent * 10 + (text[end] - '0');
      ++end;
    }
    if (end == at) throw FormatError(what + ": malformed shape " + text + " in the .npy header");
    shape.push_back(extent);
    at = end;
  }
  return shape;
}

/// One element of `width` bytes at `data`, in the given byte order, as raw bits.
std::uint64_t element_bits(const char* data, int width, bool big_endian) {
  std::uint64_t value = 0;
  for (int i = 0; i < width; ++i) {
    const int source = big_endian ? i : width - 1 - i;
    value = (value << 8) | static_cast<unsigned char>(data[source]);
  }
  return value;
}

/// The element at `data` converted to double, for the dtype kind ('f', 'i', 'u', 'b') and width.
double element_value(const char* data, char kind, int width, bool big_endian) {
  const std::uint64_t bits = element_bits(data, width, big_endian);
  switch (kind) {
    case 'f':
      if (width == 8) {
        double value;
        std::memcpy(&value, &bits, 8);
        return value;
      } else {
        const auto narrow = static_cast<std::uint32_t>(bits);
        float value;
        std::memcpy(&value, &narrow, 4);
        return value;
      }
    case 'i': {
      const int shift = 64 - 8 * width;  // sign-extend
      return static_cast<double>(static_cast<std::int64_t>(bits << shift) >> shift);
    }
    default:  // 'u', 'b'
      return static_cast<double>(bits);
  }
}

}  // namespace

std::uint32_t crc32(std::string_view bytes) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> entries{};
    for (std::uint32_t n = 0; n < 256; ++n) {
      std::uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      entries[n] = c;
    }
    return entries;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (const char byte : bytes) c = table[(c ^ static_cast<unsigned char>(byte)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

Archive::Archive(const std::string& path) : path_(path), contents_(read_file(path)) {
  const Reader reader(contents_, path_);
  const std::uint64_t end = find_end_record(reader, contents_.size(), path_);
  std::uint64_t n_entries = reader.u16(end + 10);
  std::uint64_t directory_size = reader.u32(end + 12);
  std::uint64_t directory_offset = reader.u32(end + 16);
  if (n_entries == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF) {
    // zip64: the locator just before the end record gives the zip64 end record.
    if (end < kLocatorSize || reader.u32(end - kLocatorSize) != kZip64Locator)
      throw FormatError(path_ + ": the zip64 end-of-central-directory locator is missing (corrupt file)");
    const std::uint64_t record = reader.u64(end - kLocatorSize + 8);
    if (reader.u32(record) != kZip64EndOfCentralDirectory)
      throw FormatError(path_ + ": the zip64 end-of-central-directory record is missing (corrupt file)");
    n_entries = reader.u64(record + 32);
    directory_size = reader.u64(record + 40);
    directory_offset = reader.u64(record + 48);
  }
  reader.require(directory_offset, directory_size);

  std::uint64_t at = directory_offset;
  for (std::uint64_t entry = 0; entry < n_entries; ++entry) {
    if (reader.u32(at) != kCentralHeader)
      throw FormatError(path_ + ": a zip central-directory entry is damaged (corrupt file)");
    const std::uint16_t flags = reader.u16(at + 8);
    const std::uint16_t method = reader.u16(at + 10);
    const std::uint32_t crc = reader.u32(at + 16);
    std::uint64_t compressed = reader.u32(at + 20);
    std::uint64_t size = reader.u32(at + 24);
    const std::uint16_t name_length = reader.u16(at + 28);
    const std::uint16_t extra_length = reader.u16(at + 30);
    const std::uint16_t comment_length = reader.u16(at + 32);
    std::uint64_t local = reader.u32(at + 42);
    const std::string name(reader.slice(at + kCentralHeaderSize, name_length));
    // zip64 extra field: the 64-bit values of the fields saturated above, in this order.
    std::uint64_t extra = at + kCentralHeaderSize + name_length;
    const std::uint64_t extra_end = extra + extra_length;
    while (extra + 4 <= extra_end) {
      const std::uint16_t id = reader.u16(extra);
      const std::uint16_t length = reader.u16(extra + 2);
      if (id == kZip64ExtraField) {
        std::uint64_t field = extra + 4;
        if (size == 0xFFFFFFFF) size = reader.u64(field), field += 8;
        if (compressed == 0xFFFFFFFF) compressed = reader.u64(field), field += 8;
        if (local == 0xFFFFFFFF) local = reader.u64(field);
      }
      extra += 4 + length;
    }
    if (flags & 0x41) throw FormatError(path_ + ": the member '" + name + "' is encrypted");
    if (flags & 0x20) throw FormatError(path_ + ": the member '" + name + "' holds compressed patched data");
    if (method != 0)
      throw FormatError(path_ + ": the member '" + name + "' is compressed (zip method " + std::to_string(method) +
                        "); entrosum model files hold uncompressed members (np.savez, not np.savez_compressed)");
    if (compressed != size) throw FormatError(path_ + ": the member '" + name + "' has inconsistent sizes");
    if (reader.u32(local) != kLocalHeader)
      throw FormatError(path_ + ": the local header of the member '" + name + "' is damaged (corrupt file)");
    const std::uint64_t data = local + kLocalHeaderSize + reader.u16(local + 26) + reader.u16(local + 28);
    reader.require(data, size);
    members_[name] = Member{data, size, crc};
    at += kCentralHeaderSize + name_length + extra_length + comment_length;
  }
}

bool Archive::contains(const std::string& name) const { return members_.count(name + ".npy") > 0; }

std::vector<std::string> Archive::names() const {
  std::vector<std::string> names;
  for (const auto& [member, info] : members_)
    if (member.size() > 4 && member.compare(member.size() - 4, 4, ".npy") == 0)
      names.push_back(member.substr(0, member.size() - 4));
  return names;
}

std::string_view Archive::checked_member(const std::string& name) const {
  const auto found = members_.find(name + ".npy");
  if (found == members_.end()) throw FormatError(path_ + ": the array '" + name + "' is missing");
  const Member& member = found->second;
  const std::string_view image = std::string_view(contents_).substr(static_cast<std::size_t>(member.data_offset),
                                                                    static_cast<std::size_t>(member.size));
  if (crc32(image) != member.crc32)
    throw FormatError(path_ + ": the array '" + name + "' fails its CRC-32 check (corrupt file)");
  return image;
}

Array Archive::array(const std::string& name) const {
  return parse_npy(checked_member(name), path_ + ": array '" + name + "'");
}

std::string Archive::bytes(const std::string& name) const {
  const Array raw = parse_npy(checked_member(name), path_ + ": array '" + name + "'");
  if (raw.dtype != "|u1" || raw.ndim() != 1)
    throw FormatError(path_ + ": array '" + name + "' must be a 1-D uint8 array, got dtype " + raw.dtype);
  std::string text(raw.values.size(), '\0');
  for (std::size_t i = 0; i < raw.values.size(); ++i)
    text[i] = static_cast<char>(static_cast<unsigned char>(raw.values[i]));
  return text;
}

Array parse_npy(std::string_view image, const std::string& what) {
  // Magic "\x93NUMPY", major and minor version, header length (2 bytes in v1, 4 in v2/v3), header.
  if (image.size() < 10 || image.substr(0, 6) != std::string_view("\x93NUMPY", 6))
    throw FormatError(what + " is not a .npy image");
  const int major = static_cast<unsigned char>(image[6]);
  std::size_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length =
        static_cast<unsigned char>(image[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(image[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (image.size() < 12) throw FormatError(what + " is truncated");
    for (int i = 3; i >= 0; --i) header_length = (header_length << 8) | static_cast<unsigned char>(image[8 + i]);
    header_start = 12;
  } else {
    throw FormatError(what + " has the unsupported .npy version " + std::to_string(major));
  }
  if (header_start + header_length > image.size()) throw FormatError(what + " is truncated");
  const std::string header(image.substr(header_start, header_length));

  Array array;
  const std::string descr = header_value(header, "descr", what);
  if (descr.size() < 4 || descr.front() != '\'' || descr.back() != '\'')
    throw FormatError(what + ": unsupported dtype " + descr + " (only numeric dtypes are read)");
  array.dtype = descr.substr(1, descr.size() - 2);
  const char order = array.dtype[0], kind = array.dtype[1];
  const int width = std::atoi(array.dtype.c_str() + 2);
  const bool valid_kind = kind == 'f'                    ? (width == 4 || width == 8)
                          : (kind == 'i' || kind == 'u') ? (width == 1 || width == 2 || width == 4 || width == 8)
                                                         : kind == 'b' && width == 1;
  if (!valid_kind || !(order == '<' || order == '>' || order == '|' || order == '='))
    throw FormatError(what + ": unsupported dtype '" + array.dtype + "' (only numeric dtypes are read)");
  const bool big_endian = order == '>';  // '=' and '|' are native, little-endian on the platforms numpy writes for
  const bool fortran = header_value(header, "fortran_order", what) == "True";
  array.shape = parse_shape(header_value(header, "shape", what), what);

  std::uint64_t count = 1;
  for (const std::int64_t extent : array.shape) {
    if (extent != 0 && count > std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(extent))
      throw FormatError(what + ": the shape is too large");
    count *= static_cast<std::uint64_t>(extent);
  }
  const std::string_view data = image.substr(header_start + header_length);
  if (count > data.size() / static_cast<std::uint64_t>(width) ||
      data.size() != count * static_cast<std::uint64_t>(width))
    throw FormatError(what + " holds " + std::to_string(data.size()) + " bytes of data, not the " +
                      std::to_string(count * static_cast<std::uint64_t>(width)) +
                      " its shape needs (truncated or corrupt)");
  array.values.resize(static_cast<std::size_t>(count));
  // Row-major position of each stored element: in Fortran order the first index runs fastest.
  const std::size_t ndim = array.shape.size();
  std::vector<std::int64_t> index(ndim, 0);
  for (std::uint64_t stored = 0; stored < count; ++stored) {
    std::uint64_t target = stored;
    if (fortran && ndim > 1) {
      target = 0;
      for (std::size_t d = 0; d < ndim; ++d)
        target = target * static_cast<std::uint64_t>(array.shape[d]) + static_cast<std::uint64_t>(index[d]);
      for (std::size_t d = 0; d < ndim && ++index[d] == array.shape[d]; ++d) index[d] = 0;
    }
    array.values[static_cast<std::size_t>(target)] =
        element_value(data.data() + stored * static_cast<std::uint64_t>(width), kind, width, big_endian);
  }
  return array;
}

}  // namespace entrosum::npz
