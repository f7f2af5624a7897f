// BrokerConfig from Properties: per-key parsing and validation against the key table, then the
// cross-key checks KafkaConfig.validateValues makes for KRaft (messages follow Kafka's where it has one).
// A ZooKeeper-mode configuration (zookeeper.connect, no process.roles) is run as a one-node cluster:
// Bulwark has no ZooKeeper client, and one node needs no shared metadata store.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <set>

#include "config/config.h"

#include "base/edit_distance.h"

namespace bulwark::config {
namespace {

constexpr std::string_view kListenerPrefix = "listener.name.";
// Keys that may follow listener.name.<l>.<mechanism>. (Kafka's per-mechanism SASL settings).
constexpr std::string_view kMechanismKeys[] = {"sasl.jaas.config", "sasl.server.callback.handler.class",
                                               "sasl.login.callback.handler.class", "sasl.login.class",
                                               "connections.max.reauth.ms"};

std::string trim(std::string_view s) {
  auto is_ws = [](char c) { return static_cast<unsigned char>(c) <= ' '; };  // Java String.trim()
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return std::string(s);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return lower(a) == lower(b); }

// Kafka's list parsing: trimmed; empty string -> empty list; otherwise split on commas, each trimmed.
std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::string t = trim(s);
  if (t.empty()) return out;
  std::size_t start = 0;
  while (true) {
    auto pos = t.find(sep, start);
    out.push_back(trim(std::string_view(t).substr(start, pos == std::string::npos ? std::string::npos : pos - start)));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

// Like split but drops empty entries (Kafka's csvList for listeners and voters).
std::vector<std::string> split_nonempty(std::string_view s, char sep) {
  auto parts = split(s, sep);
  parts.erase(std::remove(parts.begin(), parts.end(), std::string()), parts.end());
  return parts;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::optional<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max) {
  std::string t = trim(text);
  std::string_view v = t;
  if (!v.empty() && v[0] == '+') v.remove_prefix(1);  // Java's parseInt accepts a leading '+'
  if (v.empty() || (v[0] == '-' && t[0] == '+')) return std::nullopt;
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size() || out < min || out > max) return std::nullopt;
  return out;
}

std::string_view type_name(KeyType t) {
  switch (t) {
    case KeyType::int16: return "short";
    case KeyType::int32: return "int";
    case KeyType::int64: return "long";
    case KeyType::boolean: return "boolean (true or false)";
    case KeyType::string: return "string";
    case KeyType::list: return "list";
    case KeyType::class_name: return "class";
    case KeyType::password: return "password";
  }
  return "value";
}

std::string allowed_list(const KeySpec& spec) {
  std::vector<std::string> parts;
  for (auto v : spec.one_of) parts.push_back(v.empty() ? "\"\" (empty)" : std::string(v));
  return join(parts, ", ");
}

bool allowed(const KeySpec& spec, std::string_view v) {
  for (auto a : spec.one_of)
    if (spec.case_insensitive ? iequals(a, v) : a == v) return true;
  return false;
}

}  // namespace

std::optional<std::string> check_key_value(const KeySpec& spec, std::string_view raw) {
  const bool secret = spec.type == KeyType::password;
  std::string shown = secret ? std::string("[hidden]") : trim(raw);
  switch (spec.type) {
    case KeyType::int16:
    case KeyType::int32:
    case KeyType::int64: {
      std::int64_t lo = spec.type == KeyType::int16 ? INT16_MIN : spec.type == KeyType::int32 ? INT32_MIN : INT64_MIN;
      std::int64_t hi = spec.type == KeyType::int16 ? INT16_MAX : spec.type == KeyType::int32 ? INT32_MAX : INT64_MAX;
      auto v = parse_integer(raw, lo, hi);
      if (!v) return "'" + shown + "' is not a valid " + std::string(type_name(spec.type));
      if (*v < spec.min) return "'" + shown + "' is below the minimum " + std::to_string(spec.min);
      if (*v > spec.max) return "'" + shown + "' is above the maximum " + std::to_string(spec.max);
      return std::nullopt;
    }
    case KeyType::boolean: {
      std::string t = trim(raw);
      if (iequals(t, "true") || iequals(t, "false")) return std::nullopt;
      return "'" + shown + "' is not a boolean (true or false)";
    }
    case KeyType::list: {
      if (spec.one_of.empty()) return std::nullopt;
      std::set<std::string> seen;
      for (const auto& item : split(raw, ',')) {
        if (!allowed(spec, item)) return "'" + item + "' is not one of " + allowed_list(spec);
        if (!seen.insert(item).second) return "'" + item + "' is listed twice";
      }
      return std::nullopt;
    }
    case KeyType::string:
    case KeyType::class_name:
    case KeyType::password: {
      if (spec.one_of.empty()) return std::nullopt;
      std::string t = trim(raw);
      if (!allowed(spec, t)) return "'" + shown + "' is not one of " + allowed_list(spec);
      return std::nullopt;
    }
  }
  return std::nullopt;
}

namespace {

// What a property key is.
struct KeyClass {
  const KeySpec* spec = nullptr;  // null = unknown
  std::string listener;           // set for listener.name.<l>. keys (as written, lower case expected)
  std::string mechanism;          // set for listener.name.<l>.<mechanism>.<key>
};

KeyClass classify(std::string_view key) {
  KeyClass kc;
  if (const auto* spec = find_key_spec(key)) {
    kc.spec = spec;
    return kc;
  }
  if (!key.starts_with(kListenerPrefix)) return kc;
  std::string_view rest = key.substr(kListenerPrefix.size());
  auto dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return kc;
  std::string listener(rest.substr(0, dot));
  std::string_view tail = rest.substr(dot + 1);
  if (const auto* spec = find_key_spec(tail); spec && spec->per_listener) {
    kc.spec = spec;
    kc.listener = listener;
    return kc;
  }
  auto dot2 = tail.find('.');
  if (dot2 != std::string_view::npos && dot2 > 0) {
    std::string_view mech_tail = tail.substr(dot2 + 1);
    for (auto k : kMechanismKeys) {
      if (mech_tail == k) {
        kc.spec = find_key_spec(k);
        kc.listener = listener;
        kc.mechanism = upper(tail.substr(0, dot2));
        return kc;
      }
    }
  }
  return kc;
}

// The known key an unknown one most likely meant (within two edits), with a listener.name.<l>. prefix
// kept; nullopt when none is that close.
std::optional<std::string> nearest_known_key(std::string_view key) {
  std::string prefix;
  std::string_view tail = key;
  bool per_listener = false;
  if (key.starts_with(kListenerPrefix)) {
    auto dot = key.find('.', kListenerPrefix.size());
    if (dot != std::string_view::npos) {
      prefix = std::string(key.substr(0, dot + 1));
      tail = key.substr(dot + 1);
      per_listener = true;
    }
  }
  std::vector<std::string> names;
  for (const auto& spec : key_specs())
    if (!per_listener || spec.per_listener) names.emplace_back(spec.name);
  auto meant = nearest_word(tail, names);
  if (!meant) return std::nullopt;
  return prefix + *meant;
}

// Keys whose typo would silently weaken security (mTLS off, no authorizer, a listener missing): an
// unknown key this close to one of them stops start-up.
bool security_relevant(std::string_view key) {
  if (key.starts_with(kListenerPrefix)) key = key.substr(key.find('.', kListenerPrefix.size()) + 1);
  for (std::string_view prefix : {"ssl.", "sasl.", "listener", "super.users", "authorizer.", "allow.everyone"})
    if (key.starts_with(prefix)) return true;
  return false;
}

// Reads typed values: the property if set, else the table's default. Values were checked before, so a
// parse failure here only happens for a bad default and falls back to `fallback`.
class Reader {
 public:
  explicit Reader(const Properties& props) : props_(props) {}

  std::optional<std::string> raw(std::string_view key) const {
    if (auto v = props_.get(key)) return v;
    const auto* spec = find_key_spec(key);
    if (spec && spec->default_value) return std::string(*spec->default_value);
    return std::nullopt;
  }
  bool is_set(std::string_view key) const { return props_.find(key) != nullptr; }
  std::optional<std::int64_t> integer(std::string_view key) const {
    auto v = raw(key);
    if (!v) return std::nullopt;
    return parse_integer(*v, INT64_MIN, INT64_MAX);
  }
  std::int64_t integer(std::string_view key, std::int64_t fallback) const { return integer(key).value_or(fallback); }
  std::int32_t int32(std::string_view key) const {
    return static_cast<std::int32_t>(std::clamp<std::int64_t>(integer(key, 0), INT32_MIN, INT32_MAX));
  }
  std::int16_t int16(std::string_view key) const {
    return static_cast<std::int16_t>(std::clamp<std::int64_t>(integer(key, 0), INT16_MIN, INT16_MAX));
  }
  bool boolean(std::string_view key) const { return iequals(trim(raw(key).value_or("false")), "true"); }
  std::string string(std::string_view key) const { return trim(raw(key).value_or("")); }
  std::vector<std::string> list(std::string_view key) const { return split(raw(key).value_or(""), ','); }

 private:
  const Properties& props_;
};

class Problems {
 public:
  explicit Problems(const Properties& props) : props_(props) {}
  // "<file>:<line>: <key>: <message>", or "<file>: <key>: <message>" when the key was not set.
  void add(std::string_view key, const std::string& message) {
    if (const auto* p = props_.find(key)) {
      lines_.push_back(props_.where(*p) + ": " + std::string(key) + ": " + message);
    } else {
      lines_.push_back(props_.source + ": " + std::string(key) + ": " + message);
    }
  }
  bool empty() const { return lines_.empty(); }
  Error error() const { return make_error(ErrorKind::invalid_argument, join(lines_, "\n")); }

 private:
  const Properties& props_;
  std::vector<std::string> lines_;
};

bool valid_host_chars(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '%' || c == '.' || c == '_' || c == ':';
  });
}

// "host:port" or "[v6]:port" (Kafka's host/port grammar). Empty host allowed.
Result<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view s) {
  std::string host;
  std::string_view port_text;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return make_error(ErrorKind::invalid_argument, "an IPv6 address needs the form [address]:port");
    }
    host = std::string(s.substr(1, close - 1));
    port_text = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return make_error(ErrorKind::invalid_argument, "no port given");
    host = std::string(s.substr(0, colon));
    port_text = s.substr(colon + 1);
  }
  if (!valid_host_chars(host)) return make_error(ErrorKind::invalid_argument, "'" + host + "' is not a valid host");
  auto port = parse_integer(port_text, 0, 65535);
  if (!port || trim(port_text) != port_text) {
    return make_error(ErrorKind::invalid_argument, "'" + std::string(port_text) + "' is not a port (0-65535)");
  }
  return std::pair<std::string, std::uint16_t>{host, static_cast<std::uint16_t>(*port)};
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string endpoint_names(const std::vector<Endpoint>& eps) {
  std::vector<std::string> names;
  for (const auto& e : eps) names.push_back(e.listener);
  return join(names, ", ");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
std::string_view to_string(SecurityProtocol protocol) {
  switch (protocol) {
    case SecurityProtocol::plaintext: return "PLAINTEXT";
    case SecurityProtocol::ssl: return "SSL";
    case SecurityProtocol::sasl_plaintext: return "SASL_PLAINTEXT";
    case SecurityProtocol::sasl_ssl: return "SASL_SSL";
  }
  return "?";
}

std::optional<SecurityProtocol> parse_security_protocol(std::string_view name) {
  std::string u = upper(trim(name));
  if (u == "PLAINTEXT") return SecurityProtocol::plaintext;
  if (u == "SSL") return SecurityProtocol::ssl;
  if (u == "SASL_PLAINTEXT") return SecurityProtocol::sasl_plaintext;
  if (u == "SASL_SSL") return SecurityProtocol::sasl_ssl;
  return std::nullopt;
}

std::string Endpoint::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return listener + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<std::map<std::string, SecurityProtocol>> parse_security_protocol_map(std::string_view value) {
  std::map<std::string, SecurityProtocol> map;
  for (const auto& entry : split_nonempty(value, ',')) {
    auto colon = entry.find(':');
    if (colon == std::string::npos || entry.find(':', colon + 1) != std::string::npos) {
      return make_error(ErrorKind::invalid_argument, "'" + entry + "' is not NAME:PROTOCOL");
    }
    std::string name = upper(trim(std::string_view(entry).substr(0, colon)));
    std::string proto_text = trim(std::string_view(entry).substr(colon + 1));
    if (name.empty()) return make_error(ErrorKind::invalid_argument, "'" + entry + "' has no listener name");
    auto proto = parse_security_protocol(proto_text);
    if (!proto) {
      return make_error(ErrorKind::invalid_argument, "'" + proto_text +
                                                         "' is not a security protocol (PLAINTEXT, SSL, "
                                                         "SASL_PLAINTEXT, SASL_SSL)");
    }
    if (!map.emplace(name, *proto).second) {
      return make_error(ErrorKind::invalid_argument, "listener " + name + " is mapped twice");
    }
  }
  return map;
}

Result<std::vector<Endpoint>> parse_listeners(std::string_view value,
                                              const std::map<std::string, SecurityProtocol>& protocol_map) {
  std::vector<Endpoint> out;
  for (const auto& entry : split_nonempty(value, ',')) {
    auto sep = entry.find("://");
    if (sep == std::string::npos || sep == 0) {
      return make_error(ErrorKind::invalid_argument, "'" + entry + "' is not NAME://host:port");
    }
    Endpoint ep;
    ep.listener = upper(std::string_view(entry).substr(0, sep));
    auto hp = parse_host_port(std::string_view(entry).substr(sep + 3));
    if (!hp) return make_error(ErrorKind::invalid_argument, "'" + entry + "': " + hp.error().message);
    ep.host = hp->first;
    ep.port = hp->second;
    auto it = protocol_map.find(ep.listener);
    if (it == protocol_map.end()) {
      return make_error(ErrorKind::invalid_argument,
                        "No security protocol defined for listener " + ep.listener +
                            " (add it to listener.security.protocol.map, e.g. " + ep.listener + ":SSL)");
    }
    ep.protocol = it->second;
    for (const auto& other : out) {
      if (other.listener == ep.listener) {
        return make_error(ErrorKind::invalid_argument, "Each listener must have a different name: " +
                                                           ep.listener + " appears twice");
      }
    }
    out.push_back(std::move(ep));
  }
  return out;
}

Result<std::vector<QuorumVoter>> parse_quorum_voters(std::string_view value) {
  std::vector<QuorumVoter> out;
  for (const auto& entry : split_nonempty(value, ',')) {
    auto at = entry.find('@');
    if (at == std::string::npos) {
      return make_error(ErrorKind::invalid_argument, "'" + entry + "' is not id@host:port");
    }
    auto id = parse_integer(std::string_view(entry).substr(0, at), 0, INT32_MAX);
    if (!id) {
      return make_error(ErrorKind::invalid_argument,
                        "'" + entry + "': '" + entry.substr(0, at) + "' is not a node id (0 or more)");
    }
    auto hp = parse_host_port(std::string_view(entry).substr(at + 1));
    if (!hp) return make_error(ErrorKind::invalid_argument, "'" + entry + "': " + hp.error().message);
    if (hp->first.empty()) return make_error(ErrorKind::invalid_argument, "'" + entry + "' has no host");
    for (const auto& v : out) {
      if (v.id == *id) {
        return make_error(ErrorKind::invalid_argument, "node id " + std::to_string(*id) + " appears twice");
      }
    }
    out.push_back({static_cast<std::int32_t>(*id), hp->first, hp->second});
  }
  return out;
}

std::string canonical_host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  hints.ai_family = AF_UNSPEC;
  addrinfo* result = nullptr;
  std::string out = name;
  if (::getaddrinfo(name, nullptr, &hints, &result) == 0 && result) {
    if (result->ai_canonname && result->ai_canonname[0]) out = result->ai_canonname;
    ::freeaddrinfo(result);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
bool BrokerConfig::is_broker() const {
  return std::find(process_roles.begin(), process_roles.end(), ProcessRole::broker) != process_roles.end();
}
bool BrokerConfig::is_controller() const {
  return std::find(process_roles.begin(), process_roles.end(), ProcessRole::controller) != process_roles.end();
}

const Endpoint* BrokerConfig::find_listener(std::string_view name) const {
  std::string u = upper(name);
  for (const auto& l : listeners)
    if (l.listener == u) return &l;
  return nullptr;
}

ListenerSecurity BrokerConfig::security_for(std::string_view listener_name) const {
  ListenerSecurity s;
  s.listener = upper(listener_name);
  if (const auto* ep = find_listener(s.listener)) {
    s.protocol = ep->protocol;
  } else if (auto it = security_protocol_map.find(s.listener); it != security_protocol_map.end()) {
    s.protocol = it->second;
  }
  const std::string prefix = std::string(kListenerPrefix) + lower(listener_name) + ".";
  auto raw = [&](std::string_view key) -> std::optional<std::string> {
    if (auto v = properties.get(prefix + std::string(key))) return v;
    if (auto v = properties.get(key)) return v;
    const auto* spec = find_key_spec(key);
    if (spec && spec->default_value) return std::string(*spec->default_value);
    return std::nullopt;
  };
  auto str = [&](std::string_view key) { return trim(raw(key).value_or("")); };
  auto pw = [&](std::string_view key) { return Password(trim(raw(key).value_or(""))); };

  s.keystore_type = upper(str("ssl.keystore.type"));
  s.keystore_location = str("ssl.keystore.location");
  s.keystore_password = pw("ssl.keystore.password");
  s.keystore_key = pw("ssl.keystore.key");
  s.keystore_certificate_chain = pw("ssl.keystore.certificate.chain");
  s.key_password = pw("ssl.key.password");
  s.truststore_type = upper(str("ssl.truststore.type"));
  s.truststore_location = str("ssl.truststore.location");
  s.truststore_password = pw("ssl.truststore.password");
  s.truststore_certificates = pw("ssl.truststore.certificates");
  // KIP-684: on a SASL_SSL listener only listener.name.<l>.ssl.client.auth asks for client certificates;
  // the broker-wide ssl.client.auth is ignored there (clients authenticate with SASL).
  std::string auth = s.protocol == SecurityProtocol::sasl_ssl ? trim(properties.get(prefix + "ssl.client.auth").value_or("none"))
                                                               : str("ssl.client.auth");
  s.client_auth = auth == "required" ? ClientAuth::required : auth == "requested" ? ClientAuth::requested : ClientAuth::none;
  s.enabled_protocols = split(raw("ssl.enabled.protocols").value_or(""), ',');
  s.ssl_protocol = str("ssl.protocol");
  s.cipher_suites = split(raw("ssl.cipher.suites").value_or(""), ',');
  s.endpoint_identification_algorithm = lower(str("ssl.endpoint.identification.algorithm"));
  s.principal_mapping_rules = str("ssl.principal.mapping.rules");
  s.crl_location = str("ssl.crl.location");
  s.allow_dn_changes = iequals(str("ssl.allow.dn.changes"), "true");
  s.allow_san_changes = iequals(str("ssl.allow.san.changes"), "true");
  s.sasl_enabled_mechanisms = split(raw("sasl.enabled.mechanisms").value_or(""), ',');

  for (const auto& p : properties.entries) {
    if (!p.key.starts_with(prefix)) continue;
    auto kc = classify(p.key);
    if (!kc.mechanism.empty() && kc.spec && kc.spec->name == "sasl.jaas.config") {
      s.sasl_jaas_configs[kc.mechanism] = Password(trim(p.value));
    }
  }
  return s;
}

std::vector<std::string> BrokerConfig::startup_report() const {
  std::vector<std::string> out = properties.notes;
  std::set<std::string> listener_prefixes;
  for (const auto& l : listeners) listener_prefixes.insert(lower(l.listener));
  for (const auto& n : controller_listener_names) listener_prefixes.insert(lower(n));

  for (const auto& p : properties.entries) {
    auto kc = classify(p.key);
    std::string where = properties.where(p) + ": ";
    if (zookeeper_mode && p.key == "zookeeper.connect") {
      out.push_back(where + "zookeeper.connect is ignored: Bulwark keeps cluster metadata in its own quorum (KRaft); "
                            "this node runs as a one-node cluster with node.id=" + std::to_string(node_id));
      continue;
    }
    if (zookeeper_mode && p.key.starts_with("zookeeper.")) {
      out.push_back(where + p.key + " is ignored: Bulwark does not use ZooKeeper");
      continue;
    }
    if (zookeeper_mode && (p.key == "controller.quorum.voters" || p.key == "controller.quorum.bootstrap.servers")) {
      out.push_back(where + p.key + " is ignored: without process.roles this ZooKeeper-mode configuration runs as a "
                                    "one-node cluster, its own only voter");
      continue;
    }
    if (!kc.spec) {
      std::string hint;
      if (p.key.starts_with(kListenerPrefix)) {
        hint = " (Kafka reads listener.name.<listener in lower case>.<ssl.*|sasl.*|max.connections ...> here)";
      } else if (p.key.starts_with("zookeeper.")) {
        hint = " (Bulwark runs in KRaft mode only; ZooKeeper is not used)";
      }
      if (auto meant = nearest_known_key(p.key)) hint = " (did you mean " + *meant + "?)";
      out.push_back(where + "unknown key " + p.key + " is ignored" + hint);
      continue;
    }
    if (!kc.listener.empty() && !listener_prefixes.count(kc.listener)) {
      std::string why = kc.listener != lower(kc.listener)
                            ? " (Kafka lower-cases the listener name here: listener.name." + lower(kc.listener) + ".)"
                            : "";
      out.push_back(where + p.key + " names no listener of this node (" + kc.listener + "); it is ignored" + why);
      continue;
    }
    if (kc.spec->status == KeyStatus::not_enforced) {
      out.push_back(where + p.key + " is accepted but not enforced yet by Bulwark");
    }
    if (p.key == "authorizer.class.name") {
      std::string cls = trim(p.value);
      if (!cls.empty() && cls != "org.apache.kafka.metadata.authorizer.StandardAuthorizer" &&
          cls != "kafka.security.authorizer.AclAuthorizer") {
        out.push_back(where + "authorizer.class.name " + cls +
                      " is not a Kafka authorizer Bulwark knows; Bulwark follows StandardAuthorizer's rules");
      }
    }
  }
  if (zookeeper_mode) {
    // The configuration was written for a ZooKeeper cluster of several brokers; this node is alone.
    std::vector<std::string> beyond_one_node;
    for (std::string_view key : {"offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                                 "transaction.state.log.min.isr"}) {
      if (const auto* p = properties.find(key)) {
        auto v = parse_integer(p->value, INT64_MIN, INT64_MAX);
        if (v && *v > 1) beyond_one_node.push_back(std::string(key) + "=" + std::to_string(*v));
      }
    }
    if (!beyond_one_node.empty()) {
      out.push_back(properties.source + ": " + join(beyond_one_node, ", ") +
                    " ask for more than one node; this ZooKeeper-mode configuration runs as a one-node cluster, "
                    "whose internal logs (committed offsets) keep one copy");
    }
  }
  if (!properties.find("listener.security.protocol.map")) {
    for (const auto& name : controller_listener_names) {
      auto it = security_protocol_map.find(name);
      if (it != security_protocol_map.end() && it->second == SecurityProtocol::plaintext && name != "PLAINTEXT") {
        out.push_back(properties.source + ": controller listener " + name +
                      " uses PLAINTEXT because listener.security.protocol.map is not set (Kafka's default)");
      }
    }
  }
  for (const auto& l : listeners) {
    if (l.protocol == SecurityProtocol::plaintext || l.protocol == SecurityProtocol::sasl_plaintext) {
      out.push_back(properties.source + ": listener " + l.listener + " uses " + std::string(to_string(l.protocol)) +
                    ": its traffic is not encrypted");
    }
    if (l.protocol == SecurityProtocol::sasl_ssl && security_for(l.listener).client_auth == ClientAuth::none) {
      if (const auto* global = properties.find("ssl.client.auth"); global && trim(global->value) != "none") {
        out.push_back(properties.where(*global) + ": ssl.client.auth=" + trim(global->value) +
                      " does not apply to the SASL_SSL listener " + l.listener +
                      " (as in Kafka, KIP-684): its clients log in with SASL; set listener.name." + lower(l.listener) +
                      ".ssl.client.auth to require certificates there too");
      }
    }
    if (uses_tls(l.protocol)) {
      auto sec = security_for(l.listener);
      if (sec.client_auth == ClientAuth::required && sec.truststore_location.empty() &&
          sec.truststore_certificates.empty()) {
        out.push_back(properties.source + ": listener " + l.listener +
                      " requires client certificates but has no truststore (ssl.truststore.location)");
      }
    }
  }
  return out;
}

// max.connections.per.ip.overrides: "host:count,host:count" (Kafka's format; an IPv6 host keeps its
// colons, the count follows the last one).
// KIP-848's consumer protocol, as Kafka 3.7 offers it in preview: "consumer" beside "classic" enables
// ConsumerGroupHeartbeat; "classic" cannot be turned off (Kafka 3.7 refuses that too).
static void read_consumer_group_protocol(const Reader& r, BrokerConfig& c, Problems& problems) {
  const auto protocols = r.list("group.coordinator.rebalance.protocols");
  auto has = [&](const char* name) {
    return std::any_of(protocols.begin(), protocols.end(), [&](const std::string& p) { return iequals(trim(p), name); });
  };
  if (!has("classic"))
    problems.add("group.coordinator.rebalance.protocols", "Disabling the 'classic' protocol is not supported.");
  c.consumer_group_protocol = has("consumer");
  c.consumer_group_session_timeout_ms = r.int32("group.consumer.session.timeout.ms");
  c.consumer_group_heartbeat_interval_ms = r.int32("group.consumer.heartbeat.interval.ms");
  c.consumer_group_max_size = r.int32("group.consumer.max.size");
  if (c.consumer_group_heartbeat_interval_ms >= c.consumer_group_session_timeout_ms)
    problems.add("group.consumer.heartbeat.interval.ms", "must be less than group.consumer.session.timeout.ms (" +
                                                             std::to_string(c.consumer_group_session_timeout_ms) + ")");
}

static Result<std::vector<std::pair<std::string, std::int32_t>>> parse_connection_overrides(std::string_view text) {
  std::vector<std::pair<std::string, std::int32_t>> out;
  for (const auto& entry : split_nonempty(std::string(text), ',')) {
    const auto colon = entry.rfind(':');
    std::string host = colon == std::string::npos ? "" : trim(entry.substr(0, colon));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const auto count = colon == std::string::npos ? std::nullopt : parse_integer(trim(entry.substr(colon + 1)), 0, INT32_MAX);
    if (host.empty() || !count)
      return make_error(ErrorKind::invalid_argument,
                        "'" + trim(entry) + "' is not host:count (a host or IP address, then a count of at least 0)");
    out.emplace_back(host, static_cast<std::int32_t>(*count));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
Result<BrokerConfig> build_broker_config(const Properties& properties) {
  Problems problems(properties);
  Reader r(properties);
  BrokerConfig c;
  c.source = properties.source;
  c.properties = properties;

  // 1. Every known key set in the file: type, range, allowed values; a typo of a security key.
  for (const auto& p : properties.entries) {
    auto kc = classify(p.key);
    if (!kc.spec) {
      if (auto meant = nearest_known_key(p.key); meant && security_relevant(*meant))
        problems.add(p.key, "unknown key; did you mean " + *meant +
                                "? (a misspelt security key would be ignored and leave that protection off)");
      continue;
    }
    if (auto msg = check_key_value(*kc.spec, p.value)) problems.add(p.key, *msg);
  }
  if (!problems.empty()) return problems.error();

  // 2. Typed values.
  auto node_id = r.integer("node.id", -1);
  auto broker_id = r.integer("broker.id", -1);
  if (r.is_set("node.id") && r.is_set("broker.id") && node_id != broker_id) {
    problems.add("broker.id", "must equal node.id (" + std::to_string(node_id) + ") when both are set");
  }
  c.node_id = static_cast<std::int32_t>(r.is_set("node.id") ? node_id : broker_id);

  for (const auto& role : r.list("process.roles")) {
    c.process_roles.push_back(role == "broker" ? ProcessRole::broker : ProcessRole::controller);
  }
  // Kafka's rule: no process.roles means ZooKeeper mode. Bulwark keeps the metadata in its own quorum,
  // so such a node is a combined broker and controller, the only voter (set below, once listeners are known).
  c.zookeeper_mode = c.process_roles.empty() && !r.string("zookeeper.connect").empty();
  if (c.zookeeper_mode) c.process_roles = {ProcessRole::broker, ProcessRole::controller};
  if (auto voters = parse_quorum_voters(r.string("controller.quorum.voters")); voters) {
    c.quorum_voters = std::move(*voters);
  } else {
    problems.add("controller.quorum.voters", voters.error().message);
  }
  for (const auto& n : split_nonempty(r.string("controller.listener.names"), ',')) {
    c.controller_listener_names.push_back(upper(n));
  }

  if (auto map = parse_security_protocol_map(r.string("listener.security.protocol.map")); map) {
    c.security_protocol_map = std::move(*map);
  } else {
    problems.add("listener.security.protocol.map", map.error().message);
  }
  // Kafka (KRaft, map not set explicitly, no SSL/SASL names in use): controller listeners map to PLAINTEXT.
  if (!r.is_set("listener.security.protocol.map") && !c.process_roles.empty() && !c.zookeeper_mode) {
    auto is_ssl_or_sasl = [](const std::string& n) { return n == "SSL" || n == "SASL_SSL" || n == "SASL_PLAINTEXT"; };
    bool secure_names = std::any_of(c.controller_listener_names.begin(), c.controller_listener_names.end(), is_ssl_or_sasl);
    for (const auto& entry : split_nonempty(r.string("listeners"), ',')) {
      if (auto sep = entry.find("://"); sep != std::string::npos && is_ssl_or_sasl(upper(entry.substr(0, sep)))) {
        secure_names = true;
      }
    }
    if (!secure_names) {
      for (const auto& n : c.controller_listener_names) c.security_protocol_map.emplace(n, SecurityProtocol::plaintext);
    }
  }

  if (auto eps = parse_listeners(r.string("listeners"), c.security_protocol_map); eps) {
    c.listeners = std::move(*eps);
    for (std::size_t i = 0; i < c.listeners.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        const auto& a = c.listeners[i];
        const auto& b = c.listeners[j];
        if (a.port != 0 && a.port == b.port && (a.host == b.host || a.host.empty() || b.host.empty())) {
          problems.add("listeners", "Each listener must have a different port: " + a.listener + " and " +
                                        b.listener + " both use " + std::to_string(a.port));
        }
      }
    }
  } else {
    problems.add("listeners", eps.error().message);
  }

  if (auto adv = r.raw("advertised.listeners")) {
    if (auto eps = parse_listeners(*adv, c.security_protocol_map); eps) {
      c.advertised_listeners = std::move(*eps);
    } else {
      problems.add("advertised.listeners", eps.error().message);
    }
  } else {
    for (const auto& l : c.listeners)
      if (!contains(c.controller_listener_names, l.listener)) c.advertised_listeners.push_back(l);
  }
  std::string this_host;
  for (auto& a : c.advertised_listeners) {
    // Kafka advertises this machine's canonical host name for an empty host.
    if (a.host.empty()) {
      if (this_host.empty()) this_host = canonical_host_name();
      a.host = this_host;
    }
    if (a.host == "0.0.0.0") {
      problems.add(r.is_set("advertised.listeners") ? "advertised.listeners" : "listeners",
                   "cannot advertise the nonroutable meta-address 0.0.0.0 (" + a.listener +
                       "); set advertised.listeners to a routable address");
    }
  }

  bool ibl_set = r.is_set("inter.broker.listener.name");
  bool sibp_set = r.is_set("security.inter.broker.protocol");
  if (ibl_set && sibp_set) {
    problems.add("inter.broker.listener.name", "Only one of inter.broker.listener.name and "
                                               "security.inter.broker.protocol should be set");
  }
  if (ibl_set) {
    c.inter_broker_listener_name = upper(r.string("inter.broker.listener.name"));
    auto it = c.security_protocol_map.find(c.inter_broker_listener_name);
    if (it == c.security_protocol_map.end()) {
      problems.add("inter.broker.listener.name", "listener " + c.inter_broker_listener_name +
                                                     " is not in listener.security.protocol.map");
    } else {
      c.inter_broker_security_protocol = it->second;
    }
  } else {
    c.inter_broker_security_protocol =
        parse_security_protocol(r.string("security.inter.broker.protocol")).value_or(SecurityProtocol::plaintext);
    c.inter_broker_listener_name = std::string(to_string(c.inter_broker_security_protocol));
  }

  // ZooKeeper mode: a quorum of this node alone, at the address other brokers would have used for it.
  // A one-voter quorum never dials its voters, so the address is informational.
  if (c.zookeeper_mode && c.node_id >= 0) {
    const Endpoint* at = nullptr;
    for (const auto& a : c.advertised_listeners)
      if (a.listener == c.inter_broker_listener_name) at = &a;
    if (!at && !c.advertised_listeners.empty()) at = &c.advertised_listeners.front();
    c.quorum_voters = {QuorumVoter{c.node_id, at ? at->host : std::string("localhost"), at ? at->port : std::uint16_t{0}}};
  }

  c.authorizer_class_name = r.string("authorizer.class.name");
  c.super_users = split_nonempty(r.string("super.users"), ';');
  c.allow_everyone_if_no_acl_found = r.boolean("allow.everyone.if.no.acl.found");
  c.sasl_enabled_mechanisms = r.list("sasl.enabled.mechanisms");
  c.sasl_mechanism_inter_broker_protocol = r.string("sasl.mechanism.inter.broker.protocol");

  if (auto dirs = r.raw("log.dirs")) {
    c.log_dirs = split_nonempty(*dirs, ',');
  } else {
    c.log_dirs = split_nonempty(r.string("log.dir"), ',');
  }
  if (auto m = r.raw("metadata.log.dir"); m && !trim(*m).empty()) c.metadata_log_dir = trim(*m);

  c.num_partitions = r.int32("num.partitions");
  c.default_replication_factor = r.int32("default.replication.factor");
  c.auto_create_topics_enable = r.boolean("auto.create.topics.enable");
  c.delete_topic_enable = r.boolean("delete.topic.enable");
  c.log_segment_bytes = r.int32("log.segment.bytes");

  constexpr std::int64_t kMinute = 60'000, kHour = 3'600'000;
  if (auto ms = r.integer("log.roll.ms")) {
    c.log_roll_ms = *ms;
    if (*ms < 1) problems.add("log.roll.ms", "'" + std::to_string(*ms) + "' is below the minimum 1");
  } else {
    c.log_roll_ms = r.integer("log.roll.hours", 168) * kHour;
  }
  // Kafka's precedence: log.retention.ms, then .minutes, then .hours; any negative value = unlimited.
  std::string retention_key = "log.retention.hours";
  if (auto ms = r.integer("log.retention.ms")) {
    c.log_retention_ms = *ms;
    retention_key = "log.retention.ms";
  } else if (auto min = r.integer("log.retention.minutes")) {
    c.log_retention_ms = *min * kMinute;
    retention_key = "log.retention.minutes";
  } else {
    c.log_retention_ms = r.integer("log.retention.hours", 168) * kHour;
  }
  if (c.log_retention_ms < 0) c.log_retention_ms = -1;
  if (c.log_retention_ms == 0) {
    problems.add(retention_key, "log.retention.ms must be unlimited (-1) or, equal or greater than 1");
  }
  c.log_retention_bytes = r.integer("log.retention.bytes", -1);
  c.log_retention_check_interval_ms = r.integer("log.retention.check.interval.ms", 300000);
  c.log_flush_interval_messages = r.integer("log.flush.interval.messages", INT64_MAX);
  c.log_flush_scheduler_interval_ms = r.integer("log.flush.scheduler.interval.ms", INT64_MAX);
  c.log_flush_interval_ms = r.integer("log.flush.interval.ms").value_or(c.log_flush_scheduler_interval_ms);
  c.compression_type = r.string("compression.type");
  c.log_message_timestamp_type = r.string("log.message.timestamp.type");
  c.log_cleanup_policy = r.list("log.cleanup.policy");
  c.log_cleaner_enable = r.boolean("log.cleaner.enable");
  c.log_cleaner_threads = r.int32("log.cleaner.threads");
  c.log_cleaner_backoff_ms = r.integer("log.cleaner.backoff.ms", 15000);
  c.log_cleaner_dedupe_buffer_size = r.integer("log.cleaner.dedupe.buffer.size", 128ll << 20);
  c.log_cleaner_delete_retention_ms = r.integer("log.cleaner.delete.retention.ms", 86400000);
  c.log_cleaner_min_compaction_lag_ms = r.integer("log.cleaner.min.compaction.lag.ms", 0);
  c.log_cleaner_max_compaction_lag_ms = r.integer("log.cleaner.max.compaction.lag.ms", INT64_MAX);
  auto real = [&](const char* key, double low, double high, const char* range, double& field) {
    const std::string text = r.string(key);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v >= low && v <= high)) return problems.add(key, range);
    field = v;
  };
  real("log.cleaner.min.cleanable.ratio", 0.0, 1.0, "must be a number between 0 and 1", c.log_cleaner_min_cleanable_ratio);
  real("log.cleaner.io.max.bytes.per.second", 1.0, std::numeric_limits<double>::max(), "must be a number of at least 1",
       c.log_cleaner_io_max_bytes_per_second);

  c.message_max_bytes = r.int32("message.max.bytes");
  c.socket_request_max_bytes = r.int32("socket.request.max.bytes");
  c.socket_send_buffer_bytes = r.int32("socket.send.buffer.bytes");
  c.socket_receive_buffer_bytes = r.int32("socket.receive.buffer.bytes");
  c.num_network_threads = r.int32("num.network.threads");
  c.num_io_threads = r.int32("num.io.threads");
  c.queued_max_requests = r.int32("queued.max.requests");
  c.max_connections = r.int32("max.connections");
  c.max_connections_per_ip = r.int32("max.connections.per.ip");
  if (auto overrides = parse_connection_overrides(r.string("max.connections.per.ip.overrides")); overrides) {
    c.max_connections_per_ip_overrides = std::move(*overrides);
  } else {
    problems.add("max.connections.per.ip.overrides", overrides.error().message);
  }
  for (const auto& l : c.listeners) {
    const std::string key = std::string(kListenerPrefix) + lower(l.listener) + ".max.connections";
    if (r.is_set(key)) c.listener_max_connections[l.listener] = r.int32(key);
  }
  c.connections_max_idle_ms = r.integer("connections.max.idle.ms", 600000);
  c.request_receive_timeout_ms = r.integer("bulwark.request.receive.timeout.ms", 30000);
  c.ssl_expiry_warning_days = static_cast<int>(r.integer("bulwark.ssl.certificate.expiry.warning.days", 30));
  c.ssl_reload_on_file_change = r.boolean("bulwark.ssl.reload.on.file.change");
  c.metrics_listener = trim(r.raw("metrics.listener").value_or(""));
  c.metrics_listener_set = c.properties.find("metrics.listener") != nullptr;
  c.queued_max_request_bytes = r.integer("queued.max.request.bytes", -1);
  c.sasl_server_max_receive_size = r.int32("sasl.server.max.receive.size");
  c.connection_failed_authentication_delay_ms = r.int32("connection.failed.authentication.delay.ms");
  c.quota_window_num = r.int32("quota.window.num");
  c.quota_window_size_seconds = r.int32("quota.window.size.seconds");

  c.offsets_topic_replication_factor = r.int16("offsets.topic.replication.factor");
  c.offsets_topic_num_partitions = r.int32("offsets.topic.num.partitions");
  c.offsets_topic_segment_bytes = r.int32("offsets.topic.segment.bytes");
  c.offsets_commit_timeout_ms = r.int32("offsets.commit.timeout.ms");
  c.offsets_retention_minutes = r.int32("offsets.retention.minutes");
  c.group_initial_rebalance_delay_ms = r.int32("group.initial.rebalance.delay.ms");
  c.group_min_session_timeout_ms = r.int32("group.min.session.timeout.ms");
  c.group_max_session_timeout_ms = r.int32("group.max.session.timeout.ms");
  if (c.group_min_session_timeout_ms > c.group_max_session_timeout_ms) {
    problems.add("group.min.session.timeout.ms", "must not exceed group.max.session.timeout.ms (" +
                                                     std::to_string(c.group_max_session_timeout_ms) + ")");
  }
  read_consumer_group_protocol(r, c, problems);
  c.transaction_state_log_replication_factor = r.int16("transaction.state.log.replication.factor");
  c.transaction_state_log_min_isr = r.int32("transaction.state.log.min.isr");
  c.transaction_state_log_num_partitions = r.int32("transaction.state.log.num.partitions");
  c.transaction_state_log_segment_bytes = r.int32("transaction.state.log.segment.bytes");
  c.transaction_max_timeout_ms = r.int32("transaction.max.timeout.ms");
  c.transactional_id_expiration_ms = r.int32("transactional.id.expiration.ms");
  c.transaction_abort_timed_out_transaction_cleanup_interval_ms =
      r.int32("transaction.abort.timed.out.transaction.cleanup.interval.ms");
  c.transaction_remove_expired_transaction_cleanup_interval_ms =
      r.int32("transaction.remove.expired.transaction.cleanup.interval.ms");
  c.producer_id_expiration_ms = r.int32("producer.id.expiration.ms");
  c.producer_id_expiration_check_interval_ms = r.int32("producer.id.expiration.check.interval.ms");
  c.min_insync_replicas = r.int32("min.insync.replicas");
  c.unclean_leader_election_enable = r.boolean("unclean.leader.election.enable");
  c.replica_lag_time_max_ms = r.integer("replica.lag.time.max.ms", 30000);
  c.replica_fetch_wait_max_ms = r.int32("replica.fetch.wait.max.ms");
  c.replica_fetch_min_bytes = r.int32("replica.fetch.min.bytes");
  c.replica_fetch_max_bytes = r.int32("replica.fetch.max.bytes");
  c.max_incremental_fetch_session_cache_slots = r.int32("max.incremental.fetch.session.cache.slots");
  c.replica_fetch_response_max_bytes = r.int32("replica.fetch.response.max.bytes");
  c.replica_fetch_backoff_ms = r.int32("replica.fetch.backoff.ms");
  c.replica_socket_timeout_ms = r.int32("replica.socket.timeout.ms");
  c.replica_high_watermark_checkpoint_interval_ms = r.integer("replica.high.watermark.checkpoint.interval.ms", 5000);
  c.auto_leader_rebalance_enable = r.boolean("auto.leader.rebalance.enable");
  c.leader_imbalance_check_interval_seconds = r.integer("leader.imbalance.check.interval.seconds", 300);
  c.leader_imbalance_per_broker_percentage = r.int32("leader.imbalance.per.broker.percentage");
  c.quorum_election_timeout_ms = r.int32("controller.quorum.election.timeout.ms");
  c.quorum_fetch_timeout_ms = r.int32("controller.quorum.fetch.timeout.ms");
  c.quorum_election_backoff_max_ms = r.int32("controller.quorum.election.backoff.max.ms");
  c.quorum_request_timeout_ms = r.int32("controller.quorum.request.timeout.ms");
  c.quorum_retry_backoff_ms = r.int32("controller.quorum.retry.backoff.ms");
  c.broker_heartbeat_interval_ms = r.int32("broker.heartbeat.interval.ms");
  c.broker_session_timeout_ms = r.int32("broker.session.timeout.ms");
  if (r.is_set("broker.rack")) c.broker_rack = r.string("broker.rack");
  c.metadata_snapshot_bytes = r.integer("metadata.log.max.record.bytes.between.snapshots", 20971520);

  if (!problems.empty()) return problems.error();
  return c;
}

// ---------------------------------------------------------------------------------------------------
Status validate(const BrokerConfig& c) {
  const Properties& props = c.properties;
  Problems problems(props);
  auto roles_text = [&] { return std::string(c.is_broker() && c.is_controller() ? "broker,controller" : c.is_broker() ? "broker" : "controller"); };
  auto voter_ids = [&] {
    std::vector<std::string> ids;
    for (const auto& v : c.quorum_voters) ids.push_back(std::to_string(v.id));
    return join(ids, ",");
  };

  // Identity: a ZooKeeper-mode configuration run as one node, or a KRaft node.
  if (c.zookeeper_mode) {
    if (c.node_id < 0) {
      const char* key = props.find("node.id") ? "node.id" : "broker.id";
      const Property* set = props.find(key);
      problems.add(key, std::string(set ? "is " + trim(set->value) : std::string("is not set")) +
                            ": this ZooKeeper-mode configuration (zookeeper.connect without process.roles) needs "
                            "broker.id as a number of 0 or more. Kafka would generate an id and keep it in "
                            "meta.properties; Bulwark does not, so set one, e.g. broker.id=1");
    }
    if (!c.controller_listener_names.empty()) {
      problems.add("controller.listener.names",
                   "must be empty when not running in KRaft mode (zookeeper.connect is set and process.roles is "
                   "not): " + join(c.controller_listener_names, ", ") +
                       "; set process.roles to run this node in KRaft mode instead");
    }
  } else if (c.process_roles.empty()) {
    problems.add("process.roles",
                 "is not set: Bulwark runs in KRaft mode only; set process.roles (broker,controller for a single "
                 "node) with node.id, controller.quorum.voters and controller.listener.names, or, for a "
                 "ZooKeeper-mode configuration, zookeeper.connect with broker.id, which Bulwark runs as a one-node "
                 "cluster");
  } else {
    if (c.node_id < 0) {
      problems.add("node.id", "is required when process.roles is set (KRaft mode), as a number of 0 or more");
    }
    if (c.quorum_voters.empty()) {
      problems.add("controller.quorum.voters", "must list the controllers as id@host:port,... when process.roles is set");
    }
    if (c.controller_listener_names.empty()) {
      problems.add("controller.listener.names", "must name at least one listener when process.roles is set");
    }
    bool voter = std::any_of(c.quorum_voters.begin(), c.quorum_voters.end(),
                             [&](const QuorumVoter& v) { return v.id == c.node_id; });
    if (c.is_controller() && !c.quorum_voters.empty() && c.node_id >= 0 && !voter) {
      problems.add("controller.quorum.voters", "If process.roles contains the 'controller' role, the node id " +
                                                   std::to_string(c.node_id) + " must be included in the set of voters (" +
                                                   voter_ids() + ")");
    }
    if (!c.is_controller() && voter) {
      problems.add("controller.quorum.voters", "If process.roles contains just the 'broker' role, the node id " +
                                                   std::to_string(c.node_id) + " must not be included in the set of voters");
    }
    if (c.is_controller() && !c.controller_listener_names.empty() && !c.find_listener(c.controller_listener_names[0])) {
      problems.add("controller.listener.names",
                   "the controller listener " + c.controller_listener_names[0] + " is not in listeners (" +
                       endpoint_names(c.listeners) + "); process.roles=" + roles_text() + " needs it");
    }
    if (!c.is_controller()) {
      for (const auto& n : c.controller_listener_names) {
        if (c.find_listener(n)) {
          problems.add("listeners", "must not contain the controller listener " + n + " when process.roles=broker");
        }
      }
    }
    if (c.is_controller() && !c.is_broker()) {
      for (const auto& l : c.listeners) {
        if (!contains(c.controller_listener_names, l.listener)) {
          problems.add("listeners", "must only contain controller listeners (" + join(c.controller_listener_names, ", ") +
                                        ") when process.roles=controller, but has " + l.listener);
        }
      }
    }
  }

  // Listeners.
  if (c.listeners.empty()) problems.add("listeners", "no listener given (NAME://host:port,...)");
  for (const auto& a : c.advertised_listeners) {
    if (!c.find_listener(a.listener)) {
      problems.add("advertised.listeners", "listener " + a.listener + " is not defined in listeners (" +
                                               endpoint_names(c.listeners) + ")");
    }
    if (c.is_broker() && contains(c.controller_listener_names, a.listener)) {
      problems.add("advertised.listeners", "must not contain the controller listener " + a.listener +
                                               " when process.roles contains broker (clients never talk to controllers)");
    }
  }
  if (c.is_broker()) {
    bool advertised = std::any_of(c.advertised_listeners.begin(), c.advertised_listeners.end(),
                                  [&](const Endpoint& e) { return e.listener == c.inter_broker_listener_name; });
    const char* key = props.find("inter.broker.listener.name") ? "inter.broker.listener.name" : "security.inter.broker.protocol";
    if (!c.find_listener(c.inter_broker_listener_name)) {
      problems.add(key, "the inter-broker listener " + c.inter_broker_listener_name + " is not defined in listeners (" +
                            endpoint_names(c.listeners) + ")");
    } else if (!advertised) {
      problems.add(key, "the inter-broker listener " + c.inter_broker_listener_name +
                            " must be a listener name defined in advertised.listeners");
    }
    if (uses_sasl(c.inter_broker_security_protocol) &&
        !contains(c.sasl_enabled_mechanisms, c.sasl_mechanism_inter_broker_protocol)) {
      problems.add("sasl.mechanism.inter.broker.protocol",
                   c.sasl_mechanism_inter_broker_protocol + " must be included in sasl.enabled.mechanisms when SASL is "
                                                            "used for inter-broker communication");
    }
  }

  // Key material of every TLS listener this node binds.
  for (const auto& l : c.listeners) {
    if (!uses_tls(l.protocol)) continue;
    auto s = c.security_for(l.listener);
    std::string p = "listener.name." + lower(l.listener) + ".";
    auto key_for = [&](const std::string& k) { return props.find(p + k) ? p + k : k; };
    bool has_location = !s.keystore_location.empty();
    bool has_pem = !s.keystore_key.empty() || !s.keystore_certificate_chain.empty();
    if (!has_location && !has_pem) {
      problems.add(key_for("ssl.keystore.location"),
                   "listener " + l.listener + " uses " + std::string(to_string(l.protocol)) +
                       " but has no keystore: set ssl.keystore.location (or " + p +
                       "ssl.keystore.location), or ssl.keystore.type=PEM with ssl.keystore.key and "
                       "ssl.keystore.certificate.chain");
    }
    if (has_pem) {
      if (s.keystore_type != "PEM") {
        problems.add(key_for("ssl.keystore.key"), "a private key in the config needs ssl.keystore.type=PEM, but it is " +
                                                      s.keystore_type + " (listener " + l.listener + ")");
      } else if (s.keystore_key.empty() || s.keystore_certificate_chain.empty()) {
        problems.add(key_for(s.keystore_key.empty() ? "ssl.keystore.key" : "ssl.keystore.certificate.chain"),
                     "ssl.keystore.key and ssl.keystore.certificate.chain must be set together (listener " + l.listener + ")");
      }
      if (has_location) {
        problems.add(key_for("ssl.keystore.location"), "Both ssl.keystore.location and ssl.keystore.key are set for listener " +
                                                           l.listener + "; set only one");
      }
    }
    if (!s.truststore_certificates.empty()) {
      if (s.truststore_type != "PEM") {
        problems.add(key_for("ssl.truststore.certificates"),
                     "certificates in the config need ssl.truststore.type=PEM, but it is " + s.truststore_type);
      }
      if (!s.truststore_location.empty()) {
        problems.add(key_for("ssl.truststore.location"),
                     "Both ssl.truststore.location and ssl.truststore.certificates are set for listener " +
                         l.listener + "; set only one");
      }
    }
  }

  // Storage.
  if (c.log_dirs.empty()) {
    problems.add(props.find("log.dirs") ? "log.dirs" : "log.dir", "no log directory given");
  }
  std::set<std::string> seen;
  for (const auto& d : c.log_dirs) {
    auto norm = std::filesystem::path(d).lexically_normal();
    if (!norm.has_filename() && norm.has_parent_path() && norm != norm.root_path()) norm = norm.parent_path();  // "/a/" = "/a"
    if (!seen.insert(norm.string()).second) {
      problems.add(props.find("log.dirs") ? "log.dirs" : "log.dir", "Duplicate log directory found: " + d);
    }
  }

  if (!problems.empty()) return problems.error();
  return Status::success();
}

Result<BrokerConfig> load_broker_config(const std::filesystem::path& path) {
  auto props = load_properties(path);
  if (!props) return props.error();
  auto config = build_broker_config(*props);
  if (!config) return config.error();
  auto status = validate(*config);
  if (!status) return status.error();
  return config;
}

}  // namespace bulwark::config
