#include "security/principal.h"

#include <cctype>
#include <optional>

namespace bulwark::security {
namespace {

// Kafka's own grammar (SslPrincipalMapper.RULE_PATTERN): DEFAULT, RULE:pattern/replacement/[LU],
// or anything else (which the parser then rejects). Escaped characters (\/ and others) stay in place.
constexpr const char* kRulePattern =
    R"((DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?))";

const std::regex& rule_splitter() {
  static const std::regex splitter(std::string(R"(\s*()") + kRulePattern + R"()\s*(,\s*|$))");
  return splitter;
}

const std::regex& rule_parser() {
  static const std::regex parser(kRulePattern);
  return parser;
}

std::string_view trim(std::string_view s) {
  // Java's String.trim(): strips every char <= ' '.
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  return s;
}

// Kafka's escapeLiteralBackReferences: a $N naming a group the pattern lacks becomes a literal "$N"
// (after Java's rule of dropping trailing digits while the number is too large), so Java's
// replaceAll does not fail on it.
std::string escape_literal_back_references(const std::string& replacement, unsigned group_count) {
  if (group_count == 0) return replacement;
  std::string out;
  for (std::size_t i = 0; i < replacement.size(); ++i) {
    char c = replacement[i];
    if (c == '$' && i + 1 < replacement.size() && std::isdigit(static_cast<unsigned char>(replacement[i + 1])) &&
        replacement[i + 1] != '0') {
      std::size_t end = i + 1;
      while (end < replacement.size() && std::isdigit(static_cast<unsigned char>(replacement[end]))) ++end;
      std::string digits = replacement.substr(i + 1, end - i - 1);
      // Reduce like Kafka: while too large and at least two digits, drop the last digit.
      std::string reduced = digits;
      auto too_large = [&](const std::string& d) {
        return d.size() > 9 || std::stoul(d) > group_count;
      };
      while (too_large(reduced) && reduced.size() >= 2) reduced.pop_back();
      if (too_large(reduced)) out += '\\';
      out += '$';
      out += digits;
      i = end - 1;
      continue;
    }
    out += c;
  }
  return out;
}

// Java's Matcher.appendReplacement expansion of one match: \x is a literal x, $n is group n where
// further digits are taken while the number stays a valid group, ${name} is unsupported here.
Result<std::string> expand_replacement(const std::string& replacement, const std::smatch& match,
                                       unsigned group_count) {
  std::string out;
  for (std::size_t i = 0; i < replacement.size(); ++i) {
    char c = replacement[i];
    if (c == '\\') {
      if (++i == replacement.size())
        return make_error(ErrorKind::invalid_argument,
                          "replacement '" + replacement + "' ends with a lone backslash");
      out += replacement[i];
    } else if (c == '$') {
      if (++i == replacement.size() || !std::isdigit(static_cast<unsigned char>(replacement[i])))
        return make_error(ErrorKind::invalid_argument,
                          "replacement '" + replacement + "' has a '$' not followed by a group number");
      unsigned group = static_cast<unsigned>(replacement[i] - '0');
      if (group > group_count)
        return make_error(ErrorKind::invalid_argument, "replacement '" + replacement + "' refers to group " +
                                                           std::to_string(group) + " but the pattern has " +
                                                           std::to_string(group_count));
      while (i + 1 < replacement.size() && std::isdigit(static_cast<unsigned char>(replacement[i + 1]))) {
        unsigned longer = group * 10 + static_cast<unsigned>(replacement[i + 1] - '0');
        if (longer > group_count) break;
        group = longer;
        ++i;
      }
      if (match[group].matched) out += match[group].str();
    } else {
      out += c;
    }
  }
  return out;
}

// Java's String.replaceAll(pattern, replacement): every match, left to right, including the empty
// match a pattern like ".*" finds at the end after consuming everything (Java does the same).
Result<std::string> replace_all(const std::string& input, const PrincipalMappingRules::Rule& rule) {
  std::string out;
  auto last = input.cbegin();
  for (std::sregex_iterator it(input.begin(), input.end(), *rule.compiled), end; it != end; ++it) {
    const std::smatch& m = *it;
    out.append(last, m[0].first);
    auto expanded = expand_replacement(rule.replacement, m, rule.group_count);
    if (!expanded) return expanded.error();
    out += *expanded;
    last = m[0].second;
  }
  out.append(last, input.cend());
  return out;
}

// Java regex constructs that std::regex (ECMAScript) would accept with another meaning, so they
// must be refused rather than silently mis-matched: possessive quantifiers (a*+, a++, a?+, a{2}+)
// and escapes that ECMAScript reads as the plain letter (\Q \E \A \Z \z \G \h \H \R \X).
std::optional<std::string> java_only_construct(std::string_view pattern) {
  bool in_class = false;
  char previous = 0;  // previous unescaped character outside a class, 0 after an escape
  // libstdc++ reads a back reference or a repeat count into a long with no overflow check (undefined
  // behaviour, found by fuzzing); no rule needs a number of more than 9 digits there.
  auto long_number_at = [&](std::size_t at) {
    std::size_t digits = 0;
    while (at + digits < pattern.size() && pattern[at + digits] >= '0' && pattern[at + digits] <= '9') ++digits;
    return digits > 9;
  };
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && long_number_at(i + 1)) return "a back reference number that is too large";
    if (c == '{' && !in_class) {
      std::size_t j = i + 1;
      if (long_number_at(j)) return "a repetition count that is too large";
      while (j < pattern.size() && pattern[j] >= '0' && pattern[j] <= '9') ++j;
      if (j < pattern.size() && pattern[j] == ',' && long_number_at(j + 1)) return "a repetition count that is too large";
    }
    if (c == '\\') {
      if (i + 1 < pattern.size() && std::string_view("QEAZzGhHRX").find(pattern[i + 1]) != std::string_view::npos)
        return "the Java escape \\" + std::string(1, pattern[i + 1]);
      ++i;
      previous = 0;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      continue;
    }
    if (c == '[') {
      in_class = true;
      // A ']' right after '[' or '[^' is a literal member of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') ++i;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;
      previous = 0;
      continue;
    }
    bool after_quantifier = previous == '*' || previous == '+' || previous == '}' ||
                            (previous == '?' && i >= 2 && pattern[i - 2] != '(');
    if (c == '+' && after_quantifier) return "a possessive quantifier (" + std::string(1, previous) + "+)";
    // Java refuses a quantifier on a quantifier ("a**", "a*?*": dangling meta character); std::regex
    // takes it as a nested repeat that backtracks exponentially on a long DN (found by fuzzing).
    if ((c == '*' || c == '{') && (after_quantifier || previous == '\x01'))
      return "a quantifier after a quantifier (" + std::string(1, c) + ")";
    // "+?" and "*?" are lazy (fine); a '+' after them is not a quantifier we need to track.
    previous = (c == '?' && (previous == '*' || previous == '+' || previous == '}' || previous == '?')) ? '\x01' : c;
  }
  return std::nullopt;
}

void ascii_case(std::string& s, bool upper) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z' && upper) c = static_cast<char>(c - 'a' + 'A');
    if (c >= 'A' && c <= 'Z' && !upper) c = static_cast<char>(c - 'A' + 'a');
  }
}

}  // namespace

Result<KafkaPrincipal> parse_principal(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return make_error(ErrorKind::invalid_argument,
                      "principal '" + std::string(text) + "' is not of the form Type:name (for example User:alice)");
  KafkaPrincipal p{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
  if (p.name.empty())
    return make_error(ErrorKind::invalid_argument, "principal '" + std::string(text) + "' has an empty name");
  return p;
}

Result<PrincipalMappingRules> PrincipalMappingRules::parse(std::string_view rules_text) {
  std::string text(trim(rules_text));
  std::vector<std::string> pieces;
  try {
    for (std::sregex_iterator it(text.begin(), text.end(), rule_splitter()), end; it != end; ++it)
      pieces.push_back((*it)[1].str());
  } catch (const std::regex_error&) {
    return make_error(ErrorKind::invalid_argument, "ssl.principal.mapping.rules is too long or too complex to split");
  }

  PrincipalMappingRules result;
  for (const std::string& piece : pieces) {
    std::smatch m;
    bool looking_at = false;
    try {
      looking_at = std::regex_search(piece, m, rule_parser(), std::regex_constants::match_continuous);
    } catch (const std::regex_error&) {
    }
    if (!looking_at) return make_error(ErrorKind::invalid_argument, "Invalid rule: " + piece);
    if (static_cast<std::size_t>(m.length(0)) != piece.size())
      return make_error(ErrorKind::invalid_argument, "Invalid rule: `" + piece + "`, unmatched substring: `" +
                                                         piece.substr(static_cast<std::size_t>(m.length(0))) + "`");
    Rule rule;
    if (m[1].matched) {
      rule.is_default = true;
    } else if (m[2].matched) {
      rule.pattern = m[2].str();
      rule.replacement_as_written = m[4].str();
      rule.to_lower = m[6].str() == "L";
      rule.to_upper = m[6].str() == "U";
      try {
        if (auto construct = java_only_construct(rule.pattern))
          return make_error(ErrorKind::invalid_argument, "Invalid rule: " + piece + " (the pattern uses " +
                                                             *construct + ", which Bulwark's regular expressions do not support)");
        // Java's leading inline flag (?i) is common in mapping rules; ECMAScript has it only as a flag.
        std::string_view source = rule.pattern;
        auto flags = std::regex::ECMAScript;
        if (source.starts_with("(?i)")) {
          source.remove_prefix(4);
          flags |= std::regex::icase;
        }
        rule.compiled = std::make_shared<const std::regex>(std::string(source), flags);
      } catch (const std::regex_error& e) {
        return make_error(ErrorKind::invalid_argument, "Invalid rule: " + piece + " (the pattern '" + rule.pattern +
                                                           "' is not a regular expression Bulwark supports: " +
                                                           e.what() + ")");
      }
      rule.group_count = static_cast<unsigned>(rule.compiled->mark_count());
      rule.replacement = escape_literal_back_references(rule.replacement_as_written, rule.group_count);
    } else {
      continue;  // an empty rule is ignored
    }
    result.rules_.push_back(std::move(rule));
  }
  return result;
}

Result<std::string> PrincipalMappingRules::apply(std::string_view distinguished_name) const {
  if (rules_.empty()) return std::string(distinguished_name);
  if (distinguished_name.size() > kMaxDistinguishedNameLength)
    return make_error(ErrorKind::unauthenticated, "the certificate subject is " +
                                                      std::to_string(distinguished_name.size()) +
                                                      " characters long, more than the " +
                                                      std::to_string(kMaxDistinguishedNameLength) + " accepted");
  const std::string dn(distinguished_name);
  for (const Rule& rule : rules_) {
    if (rule.is_default) return dn;
    try {
      if (!std::regex_match(dn, *rule.compiled)) continue;
      auto replaced = replace_all(dn, rule);
      if (!replaced)
        return make_error(ErrorKind::unauthenticated,
                          "ssl.principal.mapping.rules: rule " + rule.pattern + " cannot map " + dn + ": " +
                              replaced.error().message);
      std::string name = std::move(*replaced);
      if (rule.to_lower) ascii_case(name, false);
      if (rule.to_upper) ascii_case(name, true);
      return name;
    } catch (const std::regex_error&) {
      return make_error(ErrorKind::unauthenticated,
                        "ssl.principal.mapping.rules: rule " + rule.pattern + " is too complex for subject " + dn);
    }
  }
  return make_error(ErrorKind::unauthenticated, "No rules apply to " + dn + ", rules " + to_string());
}

std::string PrincipalMappingRules::to_string() const {
  std::string out = "[";
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    if (i) out += ", ";
    if (r.is_default) {
      out += "DEFAULT";
      continue;
    }
    out += "RULE:" + r.pattern + "/" + r.replacement_as_written;
    if (r.to_lower) out += "/L";
    else if (r.to_upper) out += "/U";
  }
  return out + "]";
}

Result<KafkaPrincipal> principal_for_tls(std::string_view subject_rfc2253_or_empty,
                                         const PrincipalMappingRules& rules) {
  if (subject_rfc2253_or_empty.empty()) return kAnonymousPrincipal;
  auto name = rules.apply(subject_rfc2253_or_empty);
  if (!name) return name.error();
  return KafkaPrincipal{"User", std::move(*name)};
}

}  // namespace bulwark::security
