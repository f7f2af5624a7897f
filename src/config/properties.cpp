// java.util.Properties.load, line by line as the JDK does it: natural lines end at \n, \r or \r\n;
// leading blanks are skipped; '#' or '!' as first non-blank starts a comment; an odd number of
// trailing backslashes joins the next line (whose leading blanks are skipped); the key ends at the first
// unescaped '=', ':' or blank; one separator and the blanks around it are skipped.
#include <ostream>

#include "base/files.h"
#include "config/config.h"

namespace bulwark::config {

std::ostream& operator<<(std::ostream& out, const Password&) { return out << "[hidden]"; }

const Property* Properties::find(std::string_view key) const {
  for (const auto& p : entries)
    if (p.key == key) return &p;
  return nullptr;
}

std::optional<std::string> Properties::get(std::string_view key) const {
  if (const auto* p = find(key)) return p->value;
  return std::nullopt;
}

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\f'; }

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

struct LogicalLine {
  std::string text;  // still escaped; continuation backslashes and the next line's indent removed
  int line = 0;
};

// Unescapes `s` (Properties.loadConvert). Surrogate pairs written as two \u escapes become one code point.
Result<std::string> unescape(std::string_view s, const std::string& where) {
  std::string out;
  std::uint32_t pending_high = 0;
  auto flush_high = [&] {
    if (pending_high) append_utf8(out, pending_high);  // lone surrogate: keep it, as Java would
    pending_high = 0;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\' || i + 1 == s.size()) {
      flush_high();
      if (c != '\\') out += c;  // a lone trailing backslash is dropped, as Java does
      continue;
    }
    char e = s[++i];
    if (e == 'u') {
      if (s.size() - (i + 1) < 4) {
        return make_error(ErrorKind::invalid_argument, where + ": malformed \\uxxxx escape (needs 4 hex digits)");
      }
      std::uint32_t cp = 0;
      for (int k = 1; k <= 4; ++k) {
        char h = s[i + k];
        int v = (h >= '0' && h <= '9')   ? h - '0'
                : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                         : -1;
        if (v < 0) {
          return make_error(ErrorKind::invalid_argument,
                            where + ": malformed \\uxxxx escape '\\u" + std::string(s.substr(i + 1, 4)) + "'");
        }
        cp = cp * 16 + static_cast<std::uint32_t>(v);
      }
      i += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        flush_high();
        pending_high = cp;
      } else if (cp >= 0xDC00 && cp <= 0xDFFF && pending_high) {
        append_utf8(out, 0x10000 + ((pending_high - 0xD800) << 10) + (cp - 0xDC00));
        pending_high = 0;
      } else {
        flush_high();
        append_utf8(out, cp);
      }
      continue;
    }
    flush_high();
    switch (e) {
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'f': out += '\f'; break;
      default: out += e; break;  // \\ \= \: \# \! \<blank> and any other: the character itself
    }
  }
  flush_high();
  return out;
}

}  // namespace

Result<Properties> parse_properties(std::string_view text, std::string source) {
  Properties props;
  props.source = std::move(source);

  // Split into natural lines, then join continuations into logical lines.
  std::vector<LogicalLine> logical;
  std::size_t pos = 0;
  int line_no = 0;
  bool continuing = false;
  while (pos < text.size()) {
    std::size_t end = pos;
    while (end < text.size() && text[end] != '\n' && text[end] != '\r') ++end;
    std::string_view natural = text.substr(pos, end - pos);
    ++line_no;
    if (end < text.size()) {
      pos = (text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ? end + 2 : end + 1;
    } else {
      pos = end;
    }

    std::size_t start = 0;
    while (start < natural.size() && is_blank(natural[start])) ++start;
    natural.remove_prefix(start);
    if (!continuing) {
      if (natural.empty()) continue;
      if (natural[0] == '#' || natural[0] == '!') continue;  // comments never continue
      logical.push_back({std::string(), line_no});
    }
    // Count trailing backslashes: an odd count means the line continues.
    std::size_t slashes = 0;
    while (slashes < natural.size() && natural[natural.size() - 1 - slashes] == '\\') ++slashes;
    continuing = (slashes % 2) == 1;
    if (continuing) natural.remove_suffix(1);
    logical.back().text += natural;
  }

  for (const auto& l : logical) {
    const std::string& s = l.text;
    std::string where = props.source + ":" + std::to_string(l.line);
    std::size_t key_end = 0;
    bool escaped = false;
    for (; key_end < s.size(); ++key_end) {
      char c = s[key_end];
      if (escaped) {
        escaped = false;
        continue;
      }
      if (c == '\\') {
        escaped = true;
        continue;
      }
      if (c == '=' || c == ':' || is_blank(c)) break;
    }
    std::size_t value_start = key_end;
    while (value_start < s.size() && is_blank(s[value_start])) ++value_start;
    if (value_start < s.size() && (s[value_start] == '=' || s[value_start] == ':')) {
      ++value_start;
      while (value_start < s.size() && is_blank(s[value_start])) ++value_start;
    }
    auto key = unescape(std::string_view(s).substr(0, key_end), where);
    if (!key) return key.error();
    auto value = unescape(std::string_view(s).substr(value_start), where);
    if (!value) return value.error();

    bool replaced = false;
    for (auto& existing : props.entries) {
      if (existing.key != *key) continue;
      props.notes.push_back(where + ": " + *key + " is set again (first on line " + std::to_string(existing.line) +
                            "); the last value wins");
      existing.value = std::move(*value);
      existing.line = l.line;
      replaced = true;
      break;
    }
    if (!replaced) props.entries.push_back({std::move(*key), std::move(*value), l.line});
  }
  return props;
}

Result<Properties> load_properties(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  return parse_properties(*text, path.string());
}

}  // namespace bulwark::config
