// Kafka's JaasConfig parser (a java.io.StreamTokenizer with // and /* */ comments, '-', '_' and '$'
// as word characters, '"' and '\'' quotes): `<LoginModule> <flag> key=value ... ;`, exactly one entry
// as sasl.jaas.config allows. Values may be passwords, so no error names one.
#include <cctype>

#include "security/sasl.h"

namespace bulwark::security::sasl {
namespace {

Error jaas_error(std::string message) {
  return make_error(ErrorKind::invalid_argument, "JAAS config: " + std::move(message));
}

struct Token {
  enum Kind { end, word, quoted, symbol } kind = end;
  std::string text;  // word or quoted value; the character for a symbol
  std::size_t position = 0;
};

bool is_word_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '.' || c == '-' || c == '_' || c == '$' || u >= 0x80;
}

class Tokenizer {
 public:
  explicit Tokenizer(std::string_view text) : text_(text) {}

  Result<Token> next() {
    BULWARK_TRY(skip_space_and_comments());
    Token token;
    token.position = pos_ + 1;  // 1-based for humans
    if (pos_ >= text_.size()) return token;
    const char c = text_[pos_];
    if (c == '"' || c == '\'') return quoted(c, token);
    if (is_word_char(c)) {
      token.kind = Token::word;
      while (pos_ < text_.size() && is_word_char(text_[pos_])) token.text += text_[pos_++];
      return token;
    }
    token.kind = Token::symbol;
    token.text = std::string(1, c);
    ++pos_;
    return token;
  }

 private:
  Status skip_space_and_comments() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (static_cast<unsigned char>(c) <= ' ') {
        ++pos_;
      } else if (text_.substr(pos_, 2) == "//") {
        std::size_t eol = text_.find_first_of("\r\n", pos_);
        pos_ = eol == std::string_view::npos ? text_.size() : eol;
      } else if (text_.substr(pos_, 2) == "/*") {
        std::size_t close = text_.find("*/", pos_ + 2);
        if (close == std::string_view::npos)
          return jaas_error("unterminated /* comment starting at position " + std::to_string(pos_ + 1));
        pos_ = close + 2;
      } else {
        break;
      }
    }
    return Status::success();
  }

  // StreamTokenizer's escapes: \a \b \f \n \r \t \v, octal \ooo, and \x for any other x.
  Result<Token> quoted(char quote, Token& token) {
    token.kind = Token::quoted;
    const std::size_t start = pos_++;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == quote) return token;
      if (c == '\n' || c == '\r') break;
      if (c != '\\') {
        token.text += c;
        continue;
      }
      if (pos_ >= text_.size()) break;
      c = text_[pos_++];
      switch (c) {
        case 'a': token.text += '\a'; break;
        case 'b': token.text += '\b'; break;
        case 'f': token.text += '\f'; break;
        case 'n': token.text += '\n'; break;
        case 'r': token.text += '\r'; break;
        case 't': token.text += '\t'; break;
        case 'v': token.text += '\v'; break;
        default:
          if (c >= '0' && c <= '7') {
            int value = c - '0';
            // Up to three octal digits, the first at most 3 (so the value fits a byte).
            const int max_digits = c <= '3' ? 3 : 2;
            for (int digits = 1; digits < max_digits && pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '7';
                 ++digits)
              value = value * 8 + (text_[pos_++] - '0');
            token.text += static_cast<char>(value);
          } else {
            token.text += c;
          }
      }
    }
    return jaas_error("unterminated quoted value starting at position " + std::to_string(start + 1));
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

Result<JaasConfig> parse_jaas_config(std::string_view text) {
  Tokenizer tokenizer(text);
  auto module = tokenizer.next();
  if (!module.ok()) return module.error();
  if (module->kind == Token::end) return jaas_error("login module not specified");
  if (module->kind != Token::word && module->kind != Token::quoted)
    return jaas_error("expected a login module class name at position " + std::to_string(module->position));
  JaasConfig config;
  config.login_module = module->text;

  auto flag = tokenizer.next();
  if (!flag.ok()) return flag.error();
  if (flag->kind == Token::end) return jaas_error("login module control flag not specified");
  std::string lowered;
  for (char c : flag->text) lowered += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (flag->kind != Token::word ||
      (lowered != "required" && lowered != "requisite" && lowered != "sufficient" && lowered != "optional"))
    return jaas_error("invalid login module control flag at position " + std::to_string(flag->position) +
                      " (expected required, requisite, sufficient or optional)");
  config.control_flag = lowered;

  while (true) {
    auto key = tokenizer.next();
    if (!key.ok()) return key.error();
    if (key->kind == Token::end) return jaas_error("entry not terminated by ';'");
    if (key->kind == Token::symbol && key->text == ";") break;
    if (key->kind != Token::word)
      return jaas_error("expected an option name at position " + std::to_string(key->position));
    auto equals = tokenizer.next();
    if (!equals.ok()) return equals.error();
    if (equals->kind != Token::symbol || equals->text != "=")
      // The word before is not named: a misplaced word may well be a password.
      return jaas_error("expected '=' after the option name ending before position " +
                        std::to_string(equals->position));
    auto value = tokenizer.next();
    if (!value.ok()) return value.error();
    if (value->kind != Token::word && value->kind != Token::quoted)
      return jaas_error("value not specified for option '" + key->text + "' (position " +
                        std::to_string(value->position) + "; quote values holding special characters)");
    if (config.options.contains(key->text)) return jaas_error("option '" + key->text + "' is given more than once");
    config.options.emplace(key->text, std::move(value->text));
  }

  auto rest = tokenizer.next();
  if (!rest.ok()) return rest.error();
  if (rest->kind != Token::end)
    return jaas_error("sasl.jaas.config must hold exactly one login module entry; more text at position " +
                      std::to_string(rest->position));
  return config;
}

std::map<std::string, std::string> plain_users(const JaasConfig& config) {
  std::map<std::string, std::string> users;
  for (const auto& [key, value] : config.options)
    if (key.size() > 5 && key.starts_with("user_")) users.emplace(key.substr(5), value);
  return users;
}

}  // namespace bulwark::security::sasl
