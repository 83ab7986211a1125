// Reading NumPy's .npz archives, the container of saved models (docs/model_format.md): a zip archive
// whose members are .npy images. Only what np.savez writes is supported: stored (uncompressed) members,
// found through the zip central directory (zip64 records included), each checked against its CRC-32;
// .npy versions 1–3 with little- or big-endian numeric dtypes, in C or Fortran order.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace entrosum::npz {

/// One array, converted to double and laid out row-major (C order).
struct Array {
  /// NumPy's type descriptor, e.g. "<f8", "<f4", "|u1".
  std::string dtype;
  /// Empty for a 0-d array.
  std::vector<std::int64_t> shape;
  /// prod(shape) values, row-major.
  std::vector<double> values;

  /// Number of dimensions.
  std::size_t ndim() const { return shape.size(); }
};

/// A .npz file read into memory; members are parsed when asked for. Every failure is a FormatError
/// that names the file and what is wrong with it.
class Archive {
 public:
  /// Reads `path` and its central directory: a missing end record (not a zip archive, or truncated),
  /// an entry pointing outside the file, or a compressed or encrypted member is an error.
  explicit Archive(const std::string& path);

  /// Whether the archive has the array `name` (the member `name` + ".npy").
  bool contains(const std::string& name) const;
  /// Names of the arrays, without ".npy".
  std::vector<std::string> names() const;
  /// The array `name`, after checking the member's CRC-32.
  Array array(const std::string& name) const;
  /// The bytes of the 1-D uint8 array `name` (e.g. JSON text).
  std::string bytes(const std::string& name) const;

  const std::string& path() const { return path_; }

 private:
  struct Member {
    std::uint64_t data_offset = 0;
    std::uint64_t size = 0;
    std::uint32_t crc32 = 0;
  };
  std::string_view checked_member(const std::string& name) const;

  std::string path_;
  std::string contents_;
  std::map<std::string, Member> members_;  // by member name, with ".npy"
};

/// Parses one .npy image; `what` names it in errors.
Array parse_npy(std::string_view image, const std::string& what);

/// The CRC-32 (IEEE 802.3, as in zip) of `bytes`.
std::uint32_t crc32(std::string_view bytes);

}  // namespace entrosum::npz
