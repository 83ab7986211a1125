// A small JSON reader for the metadata of saved models (docs/model_format.md): objects, arrays,
// strings (with \u escapes, decoded to UTF-8), numbers, true, false and null. Written for the subset
// Python's json module emits, but it accepts any RFC 8259 document.
#pragma once

#include <string>
#include <vector>

namespace entrosum::json {

class Value {
 public:
  enum class Type { null, boolean, number, string, array, object };

  Value() = default;

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::null; }

  /// The value as the type asked for; another type is a FormatError naming `what`.
  bool as_bool(const std::string& what = "value") const;
  double as_number(const std::string& what = "value") const;
  const std::string& as_string(const std::string& what = "value") const;
  const std::vector<Value>& as_array(const std::string& what = "value") const;

  /// An object's member, or nullptr when absent (or when this is not an object).
  const Value* find(const std::string& key) const;
  /// An object's member; a missing key is a FormatError.
  const Value& at(const std::string& key) const;
  /// An object's keys in document order.
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  friend class Parser;
  Type type_ = Type::null;
  bool boolean_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<Value> items_;       // array elements, or object values
  std::vector<std::string> keys_;  // object keys, parallel to items_
};

/// Parses a whole document; malformed text is a FormatError giving the byte offset.
Value parse(const std::string& text);

}  // namespace entrosum::json
