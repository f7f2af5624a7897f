// Whether the names in super.users can be anybody. A certificate's principal is its subject through
// ssl.principal.mapping.rules; doctor sees only some certificates (the broker's keystores and
// truststores, a running broker's served one), so for the others it asks whether a certificate like
// the ones it sees, with the super user's name as its CN, would map to that name. A SASL listener can
// make any name, so there a name no certificate maps to is only noted.
#include <algorithm>

#include "doctor/checks.h"
#include "security/principal.h"

namespace bulwark::doctor::detail {
namespace {

struct CertificateListener {
  std::string name;
  std::string rules_text;
  security::PrincipalMappingRules rules;
};

// `subject` with its CN replaced by `cn` (or `cn` put first when it has none), RFC 2253.
std::string with_common_name(const std::string& subject, const std::string& cn) {
  std::size_t start = std::string::npos;
  for (std::size_t at = subject.find("CN="); at != std::string::npos; at = subject.find("CN=", at + 1))
    if (at == 0 || subject[at - 1] == ',') {
      start = at;
      break;
    }
  if (start == std::string::npos) return "CN=" + cn + (subject.empty() ? "" : "," + subject);
  std::size_t end = start + 3;
  while (end < subject.size() && !(subject[end] == ',' && subject[end - 1] != '\\')) ++end;
  return subject.substr(0, start) + "CN=" + cn + subject.substr(end);
}

// Subjects a certificate for `name` could have: like the ones seen, a bare CN, or the name itself when
// it is written as a DN.
std::vector<std::string> candidate_subjects(const std::string& name, const std::vector<std::string>& seen) {
  std::vector<std::string> out;
  for (const auto& subject : seen) out.push_back(with_common_name(subject, name));
  out.push_back("CN=" + name);
  if (name.find('=') != std::string::npos) out.push_back(name);
  return out;
}

bool maps_to(const CertificateListener& l, const std::string& subject, const std::string& name) {
  auto mapped = l.rules.apply(subject);
  return mapped.ok() && *mapped == name;
}

std::vector<CertificateListener> certificate_listeners(const config::BrokerConfig& c,
                                                       const std::vector<config::Endpoint>& listeners, Findings& out) {
  std::vector<CertificateListener> result;
  for (const auto& l : listeners) {
    if (l.protocol != config::SecurityProtocol::ssl) continue;
    const auto security = c.security_for(l.listener);
    if (security.client_auth == config::ClientAuth::none) continue;
    const std::string text = security.principal_mapping_rules.empty() ? "DEFAULT" : security.principal_mapping_rules;
    auto rules = security::PrincipalMappingRules::parse(text);
    if (!rules.ok()) {
      const std::string key = source_key(c.properties, l.listener, "ssl.principal.mapping.rules");
      out.push_back(Finding{Severity::high, "principal-mapping", where_of(c.properties, key),
                            key + ": " + rules.error().message, "correct the rule (Kafka's RULE:pattern/replacement/[LU])"});
      continue;
    }
    result.push_back(CertificateListener{l.listener, text, std::move(*rules)});
  }
  return result;
}

std::string example_mapping(const CertificateListener& l, const std::string& subject) {
  auto mapped = l.rules.apply(subject);
  return mapped.ok() ? "a certificate " + subject + " becomes User:" + *mapped
                     : "a certificate " + subject + " is refused (" + mapped.error().message + ")";
}

void judge(const config::BrokerConfig& c, const std::string& name, const std::vector<CertificateListener>& listeners,
           const std::vector<std::string>& seen, bool sasl, Findings& out) {
  const std::string where = where_of(c.properties, "super.users");
  for (const auto& l : listeners)
    for (const auto& subject : seen)
      if (maps_to(l, subject, name)) return;  // a certificate doctor sees is that super user
  for (const auto& l : listeners)
    for (const auto& subject : candidate_subjects(name, seen))
      if (maps_to(l, subject, name)) {
        out.push_back(Finding{Severity::info, "super-user-mapping", where,
                              "User:" + name + " is in no certificate doctor can see; " +
                                  example_mapping(l, subject) + " on listener " + l.name +
                                  ", so a certificate with CN=" + name + " from the trusted CA would be this super user",
                              {}});
        return;
      }
  if (sasl) {
    out.push_back(Finding{Severity::info, "super-user-mapping", where,
                          "User:" + name + " can be a SASL user only: no certificate maps to it", {}});
    return;
  }
  const std::string example =
      listeners.empty() ? "no listener asks for client certificates and none uses SASL"
                        : example_mapping(listeners.front(), candidate_subjects(name, seen).front()) +
                              " under ssl.principal.mapping.rules=" + listeners.front().rules_text;
  out.push_back(Finding{Severity::medium, "super-user-mapping", where,
                        "User:" + name + " in super.users can never be anybody: " + example,
                        listeners.empty()
                            ? "ask for client certificates (ssl.client.auth=required) or add a SASL listener"
                            : "write the principal as the rules make it, or add a rule that takes the CN: "
                              "ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT"});
}

}  // namespace

void audit_super_users(const config::BrokerConfig& config, const std::vector<config::Endpoint>& listeners,
                       const std::vector<std::string>& subjects, Findings& out) {
  if (config.authorizer_class_name.empty() || config.super_users.empty()) return;
  const auto certificate = certificate_listeners(config, listeners, out);
  const bool sasl = std::any_of(listeners.begin(), listeners.end(),
                                [](const config::Endpoint& l) { return config::uses_sasl(l.protocol); });
  for (const auto& text : config.super_users) {
    auto principal = security::parse_principal(text);
    if (!principal.ok() || principal->type != "User" || principal->name == "*") continue;
    judge(config, principal->name, certificate, subjects, sasl, out);
  }
}

}  // namespace bulwark::doctor::detail
