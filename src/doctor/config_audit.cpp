// The config checks of `bulwark doctor`: the file is read by the broker's own parser, so doctor and
// the broker never disagree about what a key means. A value the broker refuses is reported and set
// aside, so that one bad line does not hide every other finding.
#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "doctor/checks.h"

namespace bulwark::doctor {
namespace detail {

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : std::string(separator)) + item;
  return out;
}

std::string where_of(const config::Properties& properties, std::string_view key) {
  const auto* p = properties.find(key);
  return p != nullptr && p->line > 0 ? properties.where(*p) : properties.source;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string source_key(const config::Properties& properties, std::string_view listener, std::string_view key) {
  std::string prefixed = "listener.name." + lower(listener) + "." + std::string(key);
  return properties.find(prefixed) != nullptr ? prefixed : std::string(key);
}

bool is_loopback(std::string_view host) {
  if (host == "localhost") return true;
  const std::string h(host);
  unsigned char v4[4];
  if (inet_pton(AF_INET, h.c_str(), v4) == 1) return v4[0] == 127;
  unsigned char v6[16];
  if (inet_pton(AF_INET6, h.c_str(), v6) == 1) return IN6_IS_ADDR_LOOPBACK(reinterpret_cast<const in6_addr*>(v6));
  return false;  // a name may resolve to any address: assume it is reachable
}

bool is_peer_listener(const config::BrokerConfig& config, std::string_view listener) {
  const auto& names = config.controller_listener_names;
  return listener == config.inter_broker_listener_name || std::find(names.begin(), names.end(), listener) != names.end();
}

bool is_legacy_protocol(std::string_view name) {
  for (std::string_view old : {"TLSv1", "TLSv1.0", "TLSv1.1", "SSLv3", "SSLv2", "SSLv2Hello"})
    if (name == old) return true;
  return false;
}

std::optional<Weakness> cipher_weakness(std::string_view suite) {
  std::string upper(suite);
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  auto has = [&](std::string_view part) { return upper.find(part) != std::string::npos; };
  if (has("NULL")) return Weakness{Severity::high, "it does not encrypt at all"};
  if (has("ANON") || upper.starts_with("ADH") || upper.starts_with("AECDH"))
    return Weakness{Severity::high, "it does not authenticate the broker, so anybody in the middle can read it"};
  if (has("EXPORT") || upper.starts_with("EXP")) return Weakness{Severity::high, "it is a broken 40/56-bit export cipher"};
  if (has("RC4")) return Weakness{Severity::high, "RC4 is broken"};
  if (has("DES")) return Weakness{Severity::high, "DES and 3DES are broken (Sweet32)"};
  if (has("MD5")) return Weakness{Severity::high, "MD5 is broken"};
  const bool cbc = has("CBC") || (!has("GCM") && !has("CHACHA") && !has("CCM") && !upper.starts_with("TLS_"));
  if (cbc && (upper.ends_with("_SHA") || upper.ends_with("-SHA")))
    return Weakness{Severity::medium, "CBC with SHA-1 is open to padding-oracle attacks (Lucky13)"};
  return std::nullopt;
}

}  // namespace detail

using namespace detail;

namespace {

constexpr std::string_view kListenerPrefix = "listener.name.";

Finding make(Severity severity, std::string check, std::string where, std::string message, std::string fix = {}) {
  return Finding{severity, std::move(check), std::move(where), std::move(message), std::move(fix)};
}

// The key a per-listener key is checked as (listener.name.<l>. taken off), or the key itself.
std::string_view base_key(std::string_view key) {
  if (!key.starts_with(kListenerPrefix)) return key;
  auto dot = key.find('.', kListenerPrefix.size());
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

// The property a parser problem line ("<file>:<line>: <key>: <message>") is about, and its message.
const config::Property* problem_property(const config::Properties& props, std::string_view line, std::string& message) {
  for (const auto& p : props.entries) {
    const std::string prefix = props.where(p) + ": " + p.key + ": ";
    if (line.starts_with(prefix)) {
      message = std::string(line.substr(prefix.size()));
      return &p;
    }
  }
  return nullptr;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// A value the broker's per-key checks refuse (type, range, allowed values) or a misspelt security key:
// the broker stops on it. Doctor reports it and reads on without it.
bool set_aside(const config::Property& p, const std::string& message) {
  if (message.starts_with("unknown key")) return true;
  const auto* spec = config::find_key_spec(base_key(p.key));
  return spec != nullptr && config::check_key_value(*spec, p.value).has_value();
}

Finding refused(const config::Properties& props, const config::Property& p, const std::string& message) {
  if (message.starts_with("unknown key"))
    return make(Severity::high, "unknown-key", props.where(p), p.key + ": " + message + "; the broker refuses to start",
                "correct the key's name");
  return make(Severity::high, "refused-value", props.where(p),
              p.key + ": " + message + "; the broker refuses to start with it", "give a value the key allows");
}

struct Parsed {
  std::optional<config::BrokerConfig> config;
  Findings findings;
  std::set<std::string> set_aside;  // "file:line" of the lines reported and left out
};

// build_broker_config, with the lines its per-key checks refuse set aside (at most a few rounds).
Parsed parse(const config::Properties& original) {
  Parsed out;
  config::Properties working = original;
  for (int round = 0; round < 3; ++round) {
    auto built = config::build_broker_config(working);
    if (built.ok()) {
      built->properties = original;  // the checks below judge what was written, refused values included
      out.config = std::move(*built);
      return out;
    }
    std::set<std::string> drop;
    std::vector<std::string> others;
    for (const auto& line : lines_of(built.error().message)) {
      std::string message;
      const auto* p = problem_property(working, line, message);
      if (p == nullptr || !set_aside(*p, message)) {
        others.push_back(line);
        continue;
      }
      // ssl.enabled.protocols has its own finding (weak-tls-version), in plainer words.
      if (base_key(p->key) != "ssl.enabled.protocols") out.findings.push_back(refused(working, *p, message));
      out.set_aside.insert(working.where(*p));
      drop.insert(p->key);
    }
    if (!others.empty() || drop.empty()) {
      for (const auto& line : others)
        out.findings.push_back(make(Severity::high, "invalid-config", original.source,
                                    line + " (the broker refuses to start; doctor could not check the listeners)",
                                    "correct the config"));
      return out;
    }
    std::erase_if(working.entries, [&](const config::Property& p) { return drop.contains(p.key); });
  }
  return out;
}

// A file that names no listener and no role: a piece meant to be added to a broker config, such as the
// TLS settings `bulwark pki bootstrap` writes. Its TLS settings are judged as an SSL listener's.
bool is_fragment(const config::Properties& props) {
  for (std::string_view key : {"listeners", "process.roles", "zookeeper.connect", "node.id", "broker.id"})
    if (props.find(key) != nullptr) return false;
  return true;
}

std::vector<config::Endpoint> audited_listeners(const config::BrokerConfig& c, bool fragment) {
  if (!fragment) return c.listeners;
  config::Endpoint ssl;
  ssl.listener = "SSL";  // no host: the names clients will use are not known here
  ssl.protocol = config::SecurityProtocol::ssl;
  return {ssl};
}

// "<file>:<line>: <text>" lines of the parser: the where part and the text.
std::pair<std::string, std::string> split_report_line(const config::Properties& props, const std::string& line) {
  for (const auto& p : props.entries) {
    const std::string prefix = props.where(p) + ": ";
    if (line.starts_with(prefix)) return {props.where(p), line.substr(prefix.size())};
  }
  const std::string prefix = props.source + ": ";
  if (line.starts_with(prefix)) return {props.source, line.substr(prefix.size())};
  return {props.source, line};
}

void check_refusals(const config::BrokerConfig& c, bool fragment, const ConfigAuditOptions& options, Findings& out) {
  if (fragment || options.running) return;
  auto valid = config::validate(c);
  if (valid.ok()) return;
  for (const auto& line : lines_of(valid.error().message)) {
    auto [where, text] = split_report_line(c.properties, line);
    out.push_back(make(Severity::high, "invalid-config", where, text + " (the broker refuses to start)",
                       "correct the config"));
  }
}

// Unknown keys (with the parser's "did you mean"), keys naming no listener, keys not enforced yet; a
// line already reported as set aside is not repeated.
void check_startup_report(const config::BrokerConfig& c, const std::set<std::string>& set_aside, Findings& out) {
  for (const auto& line : c.startup_report()) {
    auto [where, text] = split_report_line(c.properties, line);
    if (set_aside.contains(where)) continue;
    if (text.starts_with("unknown key")) {
      out.push_back(make(Severity::low, "unknown-key", where, text, "correct the key's name, or remove it"));
    } else if (text.find("names no listener") != std::string::npos) {
      out.push_back(make(Severity::low, "unknown-key", where, text,
                         "use listener.name.<listener in lower case>. with a listener of this node"));
    } else if (text.find("not enforced yet") != std::string::npos) {
      out.push_back(make(Severity::info, "not-enforced", where, text));
    }
  }
}

void check_exposure(const config::BrokerConfig& c, const std::vector<config::Endpoint>& listeners, Findings& out) {
  const std::string where = c.properties.find("listeners") != nullptr
                                ? where_of(c.properties, "listeners")
                                : c.properties.source + " (listeners not set: Kafka's default PLAINTEXT://:9092)";
  for (const auto& l : listeners) {
    if (config::uses_tls(l.protocol)) continue;
    const std::string proto(config::to_string(l.protocol));
    if (!l.host.empty() && is_loopback(l.host)) {
      out.push_back(make(Severity::info, "plaintext-listener", where,
                         "listener " + l.listener + " (" + proto + ") is bound to loopback only (" + l.host + ")"));
      continue;
    }
    const std::string bound = l.host.empty() ? "every interface (empty host)"
                              : l.host == "0.0.0.0" || l.host == "::" ? "every interface (" + l.host + ")"
                                                                       : "the non-loopback address " + l.host;
    out.push_back(make(Severity::high, "plaintext-listener", where,
                       "listener " + l.listener + " uses " + proto + " and is bound to " + bound +
                           ": anybody on the network can read its traffic" +
                           (l.protocol == config::SecurityProtocol::plaintext ? " and connect as User:ANONYMOUS" : ""),
                       "bind it to 127.0.0.1 (listeners=" + l.listener + "://127.0.0.1:" + std::to_string(l.port) +
                           "), or make it a TLS listener (listener.security.protocol.map=" + l.listener +
                           ":SSL with a keystore; bulwark pki bootstrap makes one)"));
  }
}

// An SSL listener whose clients are known by their certificate only: without required client
// certificates they are User:ANONYMOUS, and the super users and ACLs of certificate principals fail
// open (allow.everyone) or closed (the cluster breaks) there.
void check_client_auth(const config::BrokerConfig& c, const std::vector<config::Endpoint>& listeners, Findings& out) {
  const bool authorizer = !c.authorizer_class_name.empty();
  for (const auto& l : listeners) {
    if (l.protocol != config::SecurityProtocol::ssl) continue;
    const bool peer = is_peer_listener(c, l.listener);
    if (!peer && !authorizer) continue;
    const auto auth = c.security_for(l.listener).client_auth;
    if (auth == config::ClientAuth::required) continue;
    const bool requested = auth == config::ClientAuth::requested;
    const std::string key = source_key(c.properties, l.listener, "ssl.client.auth");
    const std::string role = l.listener == c.inter_broker_listener_name ? "the inter-broker listener "
                             : peer                                     ? "the controller listener "
                                                                        : "listener ";
    out.push_back(make(
        peer || !requested ? Severity::high : Severity::medium, "client-auth", where_of(c.properties, key),
        role + l.listener + " has ssl.client.auth=" + (requested ? "requested" : "none") + ": " +
            (requested ? std::string("a client that sends no certificate is still let in, as User:ANONYMOUS") +
                             (peer ? ", where only the other nodes, with their certificates, should get in" : "")
             : peer ? "no node sends its certificate, so the other nodes are User:ANONYMOUS here and their "
                      "requests fail, or pass only where anybody's would"
                    : "no client sends a certificate, so every client is User:ANONYMOUS and the certificate "
                      "principals that super.users and the ACLs name never appear here"),
        "set listener.name." + lower(l.listener) +
            ".ssl.client.auth=required (with a truststore holding the CA of the clients' certificates)"));
  }
}

void check_authorizer(const config::BrokerConfig& c, Findings& out) {
  const auto& props = c.properties;
  if (c.authorizer_class_name.empty()) {
    out.push_back(make(Severity::high, "no-authorizer", where_of(props, "authorizer.class.name"),
                       "no authorizer (authorizer.class.name is not set): every client that connects may do "
                       "everything, read and delete every topic, and change the ACLs",
                       "set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer and "
                       "super.users to the brokers' and the admin's principals"));
  } else if (c.allow_everyone_if_no_acl_found) {
    out.push_back(make(Severity::high, "allow-everyone", where_of(props, "allow.everyone.if.no.acl.found"),
                       "allow.everyone.if.no.acl.found=true: every resource without an ACL (every new topic, "
                       "group and the cluster itself) is open to everybody, User:ANONYMOUS included",
                       "set allow.everyone.if.no.acl.found=false and grant what each principal needs with "
                       "bulwark acl add"));
  }
  for (const auto& user : c.super_users) {
    std::string trimmed = user;
    std::erase_if(trimmed, [](char ch) { return std::isspace(static_cast<unsigned char>(ch)) != 0; });
    if (trimmed == "User:*" || trimmed == "*" || trimmed.ends_with(":*"))
      out.push_back(make(Severity::critical, "super-user-wildcard", where_of(props, "super.users"),
                         "super.users has " + trimmed + ": every principal, User:ANONYMOUS included, is a super "
                         "user, so no ACL is ever checked",
                         "list the super users by name: super.users=User:kafka-1;User:admin-1"));
  }
}

// Listeners grouped by the key their value of `key` comes from, so a shared setting is reported once.
std::map<std::string, std::vector<std::string>> by_source(const config::BrokerConfig& c,
                                                          const std::vector<config::Endpoint>& listeners,
                                                          std::string_view key, bool tls_only) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& l : listeners)
    if (!tls_only || config::uses_tls(l.protocol)) out[source_key(c.properties, l.listener, key)].push_back(l.listener);
  return out;
}

void check_protocols(const config::BrokerConfig& c, const std::vector<config::Endpoint>& listeners, Findings& out) {
  for (const auto& [key, names] : by_source(c, listeners, "ssl.enabled.protocols", true)) {
    std::vector<std::string> legacy;
    for (const auto& p : c.security_for(names.front()).enabled_protocols)
      if (is_legacy_protocol(p)) legacy.push_back(p);
    if (legacy.empty()) continue;
    out.push_back(make(Severity::high, "weak-tls-version", where_of(c.properties, key),
                       key + " enables " + join(legacy) + " on " + join(names) +
                           ": these versions are broken (BEAST, POODLE, no AEAD ciphers) and Bulwark refuses to "
                           "start with them",
                       "set " + key + "=TLSv1.3,TLSv1.2"));
  }
}

void check_ciphers(const config::BrokerConfig& c, const std::vector<config::Endpoint>& listeners, Findings& out) {
  for (const auto& [key, names] : by_source(c, listeners, "ssl.cipher.suites", true)) {
    for (const auto& suite : c.security_for(names.front()).cipher_suites) {
      auto weak = cipher_weakness(suite);
      if (!weak) continue;
      out.push_back(make(weak->severity, "weak-cipher", where_of(c.properties, key),
                         key + " has " + suite + " (listeners " + join(names) + "): " + weak->why,
                         "remove it; leave ssl.cipher.suites unset for the secure defaults, or list AEAD suites "
                         "such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and TLS_AES_128_GCM_SHA256"));
    }
  }
}

void check_sasl_plain(const config::BrokerConfig& c, const std::vector<config::Endpoint>& listeners, Findings& out) {
  for (const auto& l : listeners) {
    if (l.protocol != config::SecurityProtocol::sasl_plaintext) continue;
    const auto mechanisms = c.security_for(l.listener).sasl_enabled_mechanisms;
    if (std::find(mechanisms.begin(), mechanisms.end(), "PLAIN") == mechanisms.end()) continue;
    const std::string key = source_key(c.properties, l.listener, "sasl.enabled.mechanisms");
    out.push_back(make(Severity::high, "sasl-plain-cleartext", where_of(c.properties, key),
                       "listener " + l.listener + " is SASL_PLAINTEXT with PLAIN enabled: every client's password "
                           "crosses the network in clear text",
                       "make the listener SASL_SSL (listener.security.protocol.map=" + l.listener +
                           ":SASL_SSL with a keystore), or use SCRAM-SHA-512 instead of PLAIN"));
  }
}

// The nodes verify each other's host names unless told not to.
void check_peer_hostname_verification(const config::BrokerConfig& c, const std::vector<config::Endpoint>& listeners,
                                      Findings& out) {
  for (const auto& l : listeners) {
    if (!config::uses_tls(l.protocol) || !is_peer_listener(c, l.listener)) continue;
    if (!c.security_for(l.listener).endpoint_identification_algorithm.empty()) continue;
    const std::string key = source_key(c.properties, l.listener, "ssl.endpoint.identification.algorithm");
    out.push_back(make(Severity::medium, "no-hostname-verification", where_of(c.properties, key),
                       key + " is empty on " + l.listener +
                           ": a node dialling another does not check the host name in its certificate, so any "
                           "certificate the CA issued can stand in for any node",
                       "set " + key + "=https and give each node's certificate its host names as SANs"));
  }
}

// server.properties holds the store passwords (and may hold a private key).
void check_config_file_mode(const std::filesystem::path& path, const config::Properties& props, Findings& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & S_IROTH) == 0) return;
  bool key = false, secret = false;
  for (const auto& p : props.entries) {
    if (!config::is_sensitive_key(p.key) || p.value.empty()) continue;
    secret = true;
    key = key || base_key(p.key) == "ssl.keystore.key";
  }
  if (!secret) return;
  out.push_back(make(key ? Severity::high : Severity::medium, "file-mode", path.string(),
                     std::string("the config is readable by every user of this machine and holds ") +
                         (key ? "a private key (ssl.keystore.key)" : "passwords (keystore or SASL)"),
                     "chmod 600 " + path.string() + " (owned by the user the broker runs as)"));
}

}  // namespace

std::vector<Finding> audit_properties(const config::Properties& properties, const ConfigAuditOptions& options) {
  auto parsed = parse(properties);
  Findings out = std::move(parsed.findings);
  if (!parsed.config) return out;
  const auto& c = *parsed.config;
  const bool fragment = is_fragment(properties);
  if (fragment)
    out.push_back(make(Severity::info, "fragment", properties.source,
                       "no listeners, process.roles or node.id: read as a piece of a broker config (its TLS "
                       "settings judged as an SSL listener's); run doctor on the complete config too"));
  const auto listeners = audited_listeners(c, fragment);
  check_refusals(c, fragment, options, out);
  check_startup_report(c, parsed.set_aside, out);
  check_exposure(c, listeners, out);
  check_client_auth(c, listeners, out);
  check_authorizer(c, out);
  check_protocols(c, listeners, out);
  check_ciphers(c, listeners, out);
  check_sasl_plain(c, listeners, out);
  check_peer_hostname_verification(c, listeners, out);
  std::vector<std::string> subjects = options.extra_subjects;
  if (options.check_files) audit_material(c, listeners, options, out, subjects);
  audit_super_users(c, listeners, subjects, out);
  return out;
}

Result<std::vector<Finding>> audit_config_file(const std::filesystem::path& path, const ConfigAuditOptions& options) {
  auto properties = config::load_properties(path);
  if (!properties.ok()) return properties.error();
  auto out = audit_properties(*properties, options);
  if (options.check_files) check_config_file_mode(path, *properties, out);
  return out;
}

}  // namespace bulwark::doctor
