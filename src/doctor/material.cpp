// The TLS material of the listeners: loaded as the broker loads it (broker::listener_tls_settings),
// judged with `pki verify`'s checks (chain, validity, host names, usage, strength, a leaf outliving its
// CA), and the private key files' modes.
#include <sys/stat.h>

#include <ctime>

#include "broker/tls_reloader.h"
#include "doctor/checks.h"
#include "pki/verify.h"
#include "tls/certificates.h"

namespace bulwark::doctor::detail {
namespace {

// Listeners that share their keystore and truststore are judged once.
struct MaterialGroup {
  config::ListenerSecurity security;
  std::vector<std::string> listeners;
  bool peer = false;                // an inter-broker or controller listener is among them
  std::vector<std::string> hosts;   // the names clients dial them by
};

bool is_wildcard_host(const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::"; }

// The host names clients reach a listener by, as far as the config says: advertised.listeners as
// written, this node's voter entry for a controller listener, else a specific bound address.
std::vector<std::string> hosts_for(const config::BrokerConfig& c, const config::Endpoint& l) {
  std::vector<std::string> out;
  if (c.properties.find("advertised.listeners") != nullptr)
    for (const auto& a : c.advertised_listeners)
      if (a.listener == l.listener && !is_wildcard_host(a.host)) out.push_back(a.host);
  const auto& names = c.controller_listener_names;
  if (std::find(names.begin(), names.end(), l.listener) != names.end())
    for (const auto& v : c.quorum_voters)
      if (v.id == c.node_id) out.push_back(v.host);
  if (out.empty() && !is_wildcard_host(l.host)) out.push_back(l.host);
  return out;
}

std::vector<MaterialGroup> groups_of(const config::BrokerConfig& c, const std::vector<config::Endpoint>& listeners) {
  std::vector<MaterialGroup> out;
  for (const auto& l : listeners) {
    if (!config::uses_tls(l.protocol)) continue;
    auto security = c.security_for(l.listener);
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const MaterialGroup& g) { return broker::same_tls_settings(g.security, security); });
    if (it == out.end()) it = out.insert(out.end(), MaterialGroup{std::move(security), {}, false, {}});
    it->listeners.push_back(l.listener);
    it->peer = it->peer || is_peer_listener(c, l.listener);
    for (auto& host : hosts_for(c, l))
      if (std::find(it->hosts.begin(), it->hosts.end(), host) == it->hosts.end()) it->hosts.push_back(std::move(host));
  }
  return out;
}

std::string listeners_text(const MaterialGroup& g) {
  return (g.listeners.size() == 1 ? "listener " : "listeners ") + join(g.listeners);
}

void check_key_file_mode(const std::string& path, const MaterialGroup& g, Findings& out) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return;
  const bool others = (st.st_mode & S_IROTH) != 0;
  if (!others && (st.st_mode & S_IRGRP) == 0) return;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  out.push_back(Finding{others ? Severity::high : Severity::medium, "file-mode", path,
                        "the keystore of " + listeners_text(g) + " (it holds the private key) is mode " + mode +
                            ", readable by " + (others ? "every user of this machine" : "its group"),
                        "chmod 600 " + path + " (owned by the user the broker runs as)"});
}

Severity severity_of(const pki::Finding& f, bool peer) {
  if (f.severity == pki::Severity::warning) return Severity::medium;
  if (f.check == "validity") return Severity::critical;  // expired or not yet valid: the broker will not start
  // A client listener's truststore holds the clients' CA, which need not be the one that signed us.
  if (f.check == "chain" && !peer) return Severity::medium;
  return Severity::high;
}

std::string fix_for(const pki::Finding& f) {
  if (f.check == "validity" || f.check == "chain")
    return "renew it (bulwark pki renew NAME, then bulwark pki export NAME again: a running broker reloads it); "
           "bulwark pki verify FILE shows the whole chain";
  if (f.check == "host") return "reissue the certificate with the listener's host names as SANs (bulwark pki issue "
                                "broker NAME --dns HOST --ip ADDRESS)";
  return "reissue the certificate (bulwark pki issue broker NAME); bulwark pki verify FILE says more";
}

void add_verify_findings(const std::vector<pki::Finding>& findings, const MaterialGroup& g, const std::string& what,
                         const std::string& where, Findings& out) {
  for (const auto& f : findings) {
    if (f.severity == pki::Severity::ok) continue;
    out.push_back(Finding{severity_of(f, g.peer), "certificate", where, listeners_text(g) + ", " + what + ": " + f.message,
                          fix_for(f)});
  }
}

void check_certificates(const config::BrokerConfig& c, const MaterialGroup& g, const tls::TlsSettings& settings,
                        std::int64_t now, Findings& out, std::vector<std::string>& subjects) {
  const std::string where = g.security.keystore_location.empty() ? "ssl.keystore.key" : g.security.keystore_location;
  for (const auto& entry : settings.keystore.keys) {
    if (entry.chain.empty()) continue;
    subjects.push_back(tls::subject_rfc2253(entry.chain.front().get()));
    pki::VerifyInput input;
    for (const auto& cert : entry.chain) {
      input.chain.push_back(share(cert.get()));
      if (X509_check_issued(cert.get(), cert.get()) == X509_V_OK) input.anchors.push_back(share(cert.get()));
    }
    for (const X509* anchor : tls::trust_anchors(settings.truststore))
      input.anchors.push_back(share(const_cast<X509*>(anchor)));
    if (entry.key) input.key = share(entry.key.get());
    input.anchors_source = g.security.truststore_location.empty() ? "the truststore" : g.security.truststore_location;
    input.hosts = g.hosts;
    input.purpose = g.peer ? pki::Purpose::any : pki::Purpose::server;
    input.at = static_cast<std::time_t>(now);
    input.expiry_warning_days = c.ssl_expiry_warning_days;
    add_verify_findings(pki::verify(input), g, "certificate " + subjects.back(), where, out);
  }
  const std::string trust_where =
      g.security.truststore_location.empty() ? "ssl.truststore.certificates" : g.security.truststore_location;
  for (const auto& entry : settings.truststore.trusted) {
    if (!entry.cert) continue;
    subjects.push_back(tls::subject_rfc2253(entry.cert.get()));
    add_verify_findings(pki::verify_trusted_certificate(entry.cert.get(), "trusted entry '" + entry.alias + "'",
                                                        static_cast<std::time_t>(now), c.ssl_expiry_warning_days),
                        g, "truststore", trust_where, out);
  }
}

}  // namespace

void audit_material(const config::BrokerConfig& config, const std::vector<config::Endpoint>& listeners,
                    const ConfigAuditOptions& options, Findings& out, std::vector<std::string>& subjects) {
  const std::int64_t now = options.now != 0 ? options.now : static_cast<std::int64_t>(std::time(nullptr));
  for (auto& group : groups_of(config, listeners)) {
    check_key_file_mode(group.security.keystore_location, group, out);
    auto loadable = group.security;
    // Versions and ciphers have findings of their own; here they must not stop the certificates loading.
    loadable.enabled_protocols.clear();
    loadable.cipher_suites.clear();
    auto settings = broker::listener_tls_settings(loadable);
    if (!settings.ok()) {
      out.push_back(Finding{Severity::high, "tls-material", group.security.keystore_location,
                            listeners_text(group) + ": " + settings.error().message +
                                (options.running ? "" : " (the broker refuses to start)"),
                            "check the ssl.keystore.* and ssl.truststore.* settings (location, type, password)"});
      continue;
    }
    check_certificates(config, group, *settings, now, out, subjects);
  }
}

}  // namespace bulwark::doctor::detail
