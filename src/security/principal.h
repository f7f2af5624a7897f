// Kafka principals and ssl.principal.mapping.rules (KIP-371), with the grammar and behaviour of
// Kafka's SslPrincipalMapper.
//
// Regular expressions: Kafka compiles rule patterns with java.util.regex; Bulwark uses std::regex in
// ECMAScript mode, and honours a leading Java inline flag "(?i)" as case-insensitive. The common
// subset (groups, classes, lazy quantifiers .*?, anchors, \w \d \s, alternation, backreferences)
// behaves the same. Not available here and rejected at parse time as "Invalid rule": possessive
// quantifiers (a*+), lookbehind (?<=...), named groups (?<name>...), inline flags anywhere but the
// very start, \p{...} classes, \Q...\E quoting, \A \z \Z \G \h \R \X. Java's $ also matches
// before a final line terminator; ECMAScript's $ only at the very end (DNs do not end with a newline).
// L/U flags change case of ASCII letters only (Kafka uses Locale.ENGLISH; non-ASCII letters are kept).
//
// Thread safety: a parsed PrincipalMappingRules is immutable; apply() may be called concurrently.
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace bulwark::security {

struct KafkaPrincipal {
  std::string type = "User";
  std::string name;

  std::string to_string() const { return type + ":" + name; }  // "User:alice"
  friend bool operator==(const KafkaPrincipal&, const KafkaPrincipal&) = default;
};

inline const KafkaPrincipal kAnonymousPrincipal{"User", "ANONYMOUS"};

// Parses "Type:name" (Kafka's SecurityUtils.parseKafkaPrincipal: split at the first colon).
Result<KafkaPrincipal> parse_principal(std::string_view text);

// Longest distinguished name a rule is applied to; longer subjects are refused rather than fed to a
// backtracking regex engine (a certificate subject is normally well under 1 KiB).
constexpr std::size_t kMaxDistinguishedNameLength = 4096;

class PrincipalMappingRules {
 public:
  struct Rule {
    bool is_default = false;
    std::string pattern;      // Java regex source as written in the config
    std::string replacement;  // Java replacement syntax ($1, \$), out-of-range references escaped
    std::string replacement_as_written;
    bool to_lower = false;
    bool to_upper = false;
    std::shared_ptr<const std::regex> compiled;
    unsigned group_count = 0;
  };

  // The value of ssl.principal.mapping.rules. An empty value (or one with only empty rules) maps
  // every DN to itself, like the default "DEFAULT"; Kafka would instead reject every DN when the
  // property is set explicitly to an empty string.
  static Result<PrincipalMappingRules> parse(std::string_view rules);

  // The principal name for a certificate subject in RFC 2253 form. Errors: ErrorKind::unauthenticated
  // "No rules apply to <dn>, rules [...]" (Kafka's NoMatchingRule), or a replacement that refers to
  // a group the pattern does not have.
  Result<std::string> apply(std::string_view distinguished_name) const;

  // Kafka's rendering of the parsed list, e.g. "[RULE:^CN=(.*?)$/$1/L, DEFAULT]".
  std::string to_string() const;
  std::size_t size() const { return rules_.size(); }

 private:
  std::vector<Rule> rules_;
};

// The principal of a TLS connection: no client certificate (empty subject) is User:ANONYMOUS,
// otherwise User:<mapped subject>. A mapping failure is an authentication failure.
Result<KafkaPrincipal> principal_for_tls(std::string_view subject_rfc2253_or_empty,
                                         const PrincipalMappingRules& rules);

}  // namespace bulwark::security
