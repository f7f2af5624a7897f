// The pieces of `bulwark doctor` its .cpp files share (not for other subsystems: use doctor.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "doctor/doctor.h"
#include "security/authorizer.h"

namespace bulwark::doctor::detail {

using Findings = std::vector<Finding>;

// "file:line" of a key that is set, else the file (the key is at its default).
std::string where_of(const config::Properties& properties, std::string_view key);
// The key that gives `listener` its value: listener.name.<l>.<key> when set, else <key>.
std::string source_key(const config::Properties& properties, std::string_view listener, std::string_view key);
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");
std::string lower(std::string_view text);

bool is_loopback(std::string_view host);
// The inter-broker listener or a controller listener: the nodes' own connections, whose principals
// are the nodes' certificates.
bool is_peer_listener(const config::BrokerConfig& config, std::string_view listener);

// TLSv1, TLSv1.1, SSLv3 and the like.
bool is_legacy_protocol(std::string_view name);
// How weak a cipher suite is (IANA or OpenSSL name), with the reason; nullopt when it is not.
struct Weakness {
  Severity severity;
  std::string why;
};
std::optional<Weakness> cipher_weakness(std::string_view suite);

// The keystores, truststores and key files of `listeners` (doctor/material.cpp); adds the certificate
// subjects they hold to `subjects`.
void audit_material(const config::BrokerConfig& config, const std::vector<config::Endpoint>& listeners,
                    const ConfigAuditOptions& options, Findings& out, std::vector<std::string>& subjects);
// Who super.users may be: each name against the certificates seen and the principal mapping rules
// of the listeners that ask for certificates (doctor/principals.cpp).
void audit_super_users(const config::BrokerConfig& config, const std::vector<config::Endpoint>& listeners,
                       const std::vector<std::string>& subjects, Findings& out);
// ACLs that let anybody do something (doctor/cluster.cpp).
void audit_acls(const std::vector<security::AclBinding>& acls, const std::string& where, Findings& out);

}  // namespace bulwark::doctor::detail
