#include "entrosum/io/json.hpp"

#include <locale>
#include <sstream>

#include "entrosum/core/errors.hpp"

namespace entrosum::json {

namespace {

const char* type_name(Value::Type type) {
  switch (type) {
    case Value::Type::null:
      return "null";
    case Value::Type::boolean:
      return "a boolean";
    case Value::Type::number:
      return "a number";
    case Value::Type::string:
      return "a string";
    case Value::Type::array:
      return "an array";
    case Value::Type::object:
      return "an object";
  }
  return "unknown";
}

void expect(Value::Type actual, Value::Type wanted, const std::string& what) {
  if (actual != wanted)
    throw FormatError("metadata: " + what + " must be " + type_name(wanted) + ", got " + type_name(actual));
}

void append_utf8(std::string& out, unsigned long code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

}  // namespace

/// Recursive descent over the text; nesting is limited so that a hostile file cannot exhaust the stack.
class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  Value document() {
    Value value = parse_value(0);
    skip_space();
    if (at_ != text_.size()) fail("unexpected text after the JSON value");
    return value;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const std::string& message) const {
    throw FormatError("metadata: " + message + " at byte " + std::to_string(at_) + " (corrupt JSON)");
  }
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }
  char peek() {
    skip_space();
    if (at_ >= text_.size()) fail("unexpected end of the text");
    return text_[at_];
  }
  void literal(const char* word) {
    const std::string expected(word);
    if (text_.compare(at_, expected.size(), expected) != 0) fail("invalid literal");
    at_ += expected.size();
  }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    Value value;
    const char c = peek();
    if (c == '{') {
      value.type_ = Value::Type::object;
      ++at_;
      if (peek() == '}') {
        ++at_;
        return value;
      }
      for (;;) {
        if (peek() != '"') fail("expected a string key");
        value.keys_.push_back(parse_string());
        if (peek() != ':') fail("expected ':'");
        ++at_;
        value.items_.push_back(parse_value(depth + 1));
        const char next = peek();
        ++at_;
        if (next == '}') break;
        if (next != ',') fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      value.type_ = Value::Type::array;
      ++at_;
      if (peek() == ']') {
        ++at_;
        return value;
      }
      for (;;) {
        value.items_.push_back(parse_value(depth + 1));
        const char next = peek();
        ++at_;
        if (next == ']') break;
        if (next != ',') fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      value.type_ = Value::Type::string;
      value.string_ = parse_string();
    } else if (c == 't') {
      literal("true");
      value.type_ = Value::Type::boolean;
      value.boolean_ = true;
    } else if (c == 'f') {
      literal("false");
      value.type_ = Value::Type::boolean;
    } else if (c == 'n') {
      literal("null");
    } else {
      value.type_ = Value::Type::number;
      value.number_ = parse_number();
    }
    return value;
  }

  double parse_number() {
    // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, converted in the classic locale (correctly rounded).
    const std::size_t start = at_;
    auto digits = [&] {
      const std::size_t first = at_;
      while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
      if (at_ == first) fail("malformed number");
    };
    if (text_[at_] == '-') ++at_;
    if (at_ < text_.size() && text_[at_] == '0' && at_ + 1 < text_.size() && text_[at_ + 1] >= '0' &&
        text_[at_ + 1] <= '9')
      fail("leading zero in a number");
    digits();
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      digits();
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      digits();
    }
    std::istringstream stream(text_.substr(start, at_ - start));
    stream.imbue(std::locale::classic());
    double number = 0.0;
    stream >> number;
    if (stream.fail()) fail("number out of range");
    return number;
  }

  unsigned long hex4() {
    if (at_ + 4 > text_.size()) fail("truncated \\u escape");
    unsigned long code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[at_++];
      code <<= 4;
      if (h >= '0' && h <= '9')
        code |= static_cast<unsigned long>(h - '0');
      else if (h >= 'a' && h <= 'f')
        code |= static_cast<unsigned long>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        code |= static_cast<unsigned long>(h - 'A' + 10);
      else
        fail("malformed \\u escape");
    }
    return code;
  }

  std::string parse_string() {
    ++at_;  // the opening quote
    std::string out;
    for (;;) {
      if (at_ >= text_.size()) fail("unterminated string");
      const char c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated string");
      const char escape = text_[at_++];
      switch (escape) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned long code = hex4();
          if (code >= 0xD800 && code < 0xDC00) {  // a high surrogate: its low half must follow
            if (text_.compare(at_, 2, "\\u") != 0) fail("unpaired surrogate");
            at_ += 2;
            const unsigned long low = hex4();
            if (low < 0xDC00 || low >= 0xE000) fail("unpaired surrogate");
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          } else if (code >= 0xDC00 && code < 0xE000) {
            fail("unpaired surrogate");
          }
          append_utf8(out, code);
          break;
        }
        default:
          fail("unknown escape");
      }
    }
  }

  const std::string& text_;
  std::size_t at_ = 0;
};

bool Value::as_bool(const std::string& what) const {
  expect(type_, Type::boolean, what);
  return boolean_;
}

double Value::as_number(const std::string& what) const {
  expect(type_, Type::number, what);
  return number_;
}

const std::string& Value::as_string(const std::string& what) const {
  expect(type_, Type::string, what);
  return string_;
}

const std::vector<Value>& Value::as_array(const std::string& what) const {
  expect(type_, Type::array, what);
  return items_;
}

const Value* Value::find(const std::string& key) const {
  if (type_ != Type::object) return nullptr;
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i] == key) return &items_[i];
  return nullptr;
}

const Value& Value::at(const std::string& key) const {
  expect(type_, Type::object, "the parent of '" + key + "'");
  const Value* value = find(key);
  if (!value) throw FormatError("metadata: the entry '" + key + "' is missing");
  return *value;
}

Value parse(const std::string& text) { return Parser(text).document(); }

}  // namespace entrosum::json
