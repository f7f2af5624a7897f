// libFuzzer target for ssl.principal.mapping.rules and the certificate subjects they are applied to.
// Input: rules NUL distinguished name (the rules alone when there is no NUL; then the DN is a fixed
// subject). The rules are an operator's config and std::regex backtracks, so the interest is the rule
// grammar, the Java-only constructs it must refuse, and the replacement, not regex speed.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "security/principal.h"

using namespace bulwark::security;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1024) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  std::string_view rules_text = input.substr(0, nul);
  std::string_view dn = nul == std::string_view::npos ? "CN=kafka-1,OU=DevOps,O=SLS,L=Tehran,C=IR" : input.substr(nul + 1);
  (void)parse_principal(input);
  auto rules = PrincipalMappingRules::parse(rules_text);
  if (!rules.ok()) return 0;
  (void)rules->to_string();
  // A backtracking engine is slow on some patterns by nature (Java's too): a repeated group "(.*)*"
  // is exponential, k quantifiers over an n-character subject cost up to n^k steps, and k optional
  // atoms ".?.?.?" up to 2^k. Such rules are the operator's to avoid, as in Kafka; applying them here
  // would only make the fuzzer time out, so the costly ones are parsed but not applied.
  std::size_t quantifiers = 0;
  for (std::size_t i = 0; i < rules_text.size(); ++i) {
    const char c = rules_text[i];
    const bool quantifier = c == '*' || c == '+' || c == '?' || c == '{';
    if (quantifier) ++quantifiers;
    if (quantifier && i > 0 && rules_text[i - 1] == ')') return 0;
  }
  if (quantifiers > 4 || dn.size() > 64) return 0;
  auto principal = principal_for_tls(dn, *rules);
  if (principal.ok() && dn.empty() && !(*principal == kAnonymousPrincipal)) __builtin_trap();
  return 0;
}
