// Client settings: bootstrap lists, Kafka client properties files, and the TLS material they name.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "base/files.h"
#include "client/client.h"

namespace bulwark::client {
namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string item = trim(text.substr(start, comma - start));
    if (!item.empty()) out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

// Keys a Kafka client knows whose values change who we are or whom we trust: when Bulwark cannot honour
// them, going on without them would quietly connect with weaker or different security than asked.
constexpr std::string_view kRefusedKeys[] = {
    "ssl.engine.factory.class",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.provider",
    "ssl.secure.random.implementation",
    "sasl.login.callback.handler.class",
    "sasl.client.callback.handler.class",
    "sasl.login.class",
    "sasl.kerberos.service.name",
    "sasl.oauthbearer.token.endpoint.url",
    "security.providers",
};

// Keys that are understood by Kafka clients and harmless to skip for a one-shot admin command.
constexpr std::string_view kHarmlessPrefixes[] = {
    "retries", "retry.backoff", "reconnect.backoff", "metadata.", "connections.max.idle", "metric", "send.buffer",
    "receive.buffer", "default.api.timeout", "socket.connection.setup", "client.dns.lookup", "client.rack",
    "sasl.login.", "auto.include.jmx", "enable.metrics.push",
};

}  // namespace

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<std::vector<HostPort>> parse_bootstrap_servers(std::string_view text) {
  std::vector<HostPort> out;
  for (const auto& item : split_list(text)) {
    HostPort hp;
    std::string_view rest = item;
    std::size_t colon = std::string_view::npos;
    if (rest.front() == '[') {
      std::size_t close = rest.find(']');
      if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
        return invalid(fmt::format("bootstrap server '{}' is not [ipv6]:port", item));
      }
      hp.host = std::string(rest.substr(1, close - 1));
      colon = close + 1;
    } else {
      colon = rest.rfind(':');
      if (colon == std::string_view::npos || colon == 0) {
        return invalid(fmt::format("bootstrap server '{}' has no port: write host:port", item));
      }
      hp.host = std::string(rest.substr(0, colon));
      if (hp.host.find(':') != std::string::npos) {
        return invalid(fmt::format("bootstrap server '{}': put an IPv6 address in brackets, [::1]:9092", item));
      }
    }
    std::string_view port_text = rest.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return invalid(fmt::format("bootstrap server '{}' has an invalid port '{}'", item, port_text));
    }
    hp.port = static_cast<std::uint16_t>(port);
    out.push_back(std::move(hp));
  }
  if (out.empty()) return invalid("no bootstrap server given: write host:port[,host:port...]");
  return out;
}

Result<ClientSettings> apply_client_properties(const config::Properties& properties, ClientSettings settings) {
  std::vector<std::string> problems;
  std::optional<std::string> jaas_text;
  const config::Property* jaas_property = nullptr;
  std::optional<std::string> mechanism_text;
  const config::Property* mechanism_property = nullptr;

  for (const auto& p : properties.entries) {
    const std::string& key = p.key;
    const std::string value = trim(p.value);
    auto problem = [&](const std::string& what) { problems.push_back(fmt::format("{}: {}: {}", properties.where(p), key, what)); };
    auto store_type = [&](std::optional<keystore::Format>& out) {
      auto format = keystore::parse_format(value);
      if (!format) {
        problem(fmt::format("'{}' is not a store type Bulwark reads (JKS, PKCS12 or PEM)", value));
      } else {
        out = *format;
      }
    };

    if (key == "bootstrap.servers") {
      // The command line's --bootstrap-server wins, as in Kafka's tools.
      if (settings.bootstrap_servers.empty()) {
        auto servers = parse_bootstrap_servers(value);
        if (!servers) problem(servers.error().message);
        else settings.bootstrap_servers = *servers;
      }
    } else if (key == "security.protocol") {
      auto protocol = config::parse_security_protocol(value);
      if (!protocol) problem(fmt::format("'{}' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL", value));
      else settings.protocol = *protocol;
    } else if (key == "client.id") {
      settings.client_id = value;
    } else if (key == "request.timeout.ms") {
      long long ms = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (ec != std::errc() || end != value.data() + value.size() || ms <= 0) {
        problem(fmt::format("'{}' is not a positive number of milliseconds", value));
      } else {
        settings.timeout = std::chrono::milliseconds(ms);
      }
    } else if (key == "ssl.truststore.location") {
      settings.tls.truststore_location = value;
    } else if (key == "ssl.truststore.password") {
      settings.tls.truststore_password = config::Password(value);
    } else if (key == "ssl.truststore.type") {
      store_type(settings.tls.truststore_type);
    } else if (key == "ssl.truststore.certificates") {
      settings.tls.truststore_certificates = config::Password(p.value);
    } else if (key == "ssl.keystore.location") {
      settings.tls.keystore_location = value;
    } else if (key == "ssl.keystore.password") {
      settings.tls.keystore_password = config::Password(value);
    } else if (key == "ssl.keystore.type") {
      store_type(settings.tls.keystore_type);
    } else if (key == "ssl.key.password") {
      settings.tls.key_password = config::Password(value);
    } else if (key == "ssl.keystore.key") {
      settings.tls.keystore_key = config::Password(p.value);
    } else if (key == "ssl.keystore.certificate.chain") {
      settings.tls.keystore_certificate_chain = config::Password(p.value);
    } else if (key == "ssl.endpoint.identification.algorithm") {
      if (value.empty()) settings.tls.verify_hostname = false;
      else if (upper(value) == "HTTPS") settings.tls.verify_hostname = true;
      else problem(fmt::format("'{}' is not a known algorithm: use https (check the host name) or leave it empty", value));
    } else if (key == "ssl.enabled.protocols") {
      auto protocols = split_list(value);
      bool ok = !protocols.empty();
      for (const auto& proto : protocols) ok = ok && (proto == "TLSv1.2" || proto == "TLSv1.3");
      if (!ok) problem(fmt::format("'{}': Bulwark speaks only TLSv1.2 and TLSv1.3", value));
      else settings.tls.enabled_protocols = protocols;
    } else if (key == "ssl.protocol") {
      // The SSLContext protocol: Java's "TLS", "TLSv1.2", "TLSv1.3" all allow TLS 1.2+ here.
      if (value != "TLS" && value != "TLSv1.2" && value != "TLSv1.3") {
        problem(fmt::format("'{}': Bulwark speaks only TLSv1.2 and TLSv1.3", value));
      }
    } else if (key == "ssl.cipher.suites") {
      auto suites = split_list(value);
      for (const auto& suite : suites) {
        if (auto mapped = tls::map_cipher_suite(suite); !mapped) problem(mapped.error().message);
      }
      settings.tls.cipher_suites = suites;
    } else if (key == "sasl.mechanism") {
      mechanism_text = value;
      mechanism_property = &p;
    } else if (key == "sasl.jaas.config") {
      jaas_text = p.value;
      jaas_property = &p;
    } else if (std::find(std::begin(kRefusedKeys), std::end(kRefusedKeys), key) != std::end(kRefusedKeys)) {
      problem("Bulwark's admin client cannot honour this key; remove it (it would change how the connection is "
              "secured)");
    } else {
      bool harmless = false;
      for (auto prefix : kHarmlessPrefixes) harmless = harmless || key.rfind(prefix, 0) == 0;
      settings.notes.push_back(fmt::format("{}: {}: {}", properties.where(p), key,
                                           harmless ? "not needed by an admin command, ignored"
                                                    : "unknown key, ignored"));
    }
  }

  // SASL: the mechanism and the JAAS login belong together.
  std::optional<security::sasl::Mechanism> mechanism;
  if (mechanism_text) {
    auto m = security::sasl::mechanism_from(*mechanism_text);
    if (!m) {
      problems.push_back(fmt::format("{}: sasl.mechanism: '{}' is not supported (use PLAIN, SCRAM-SHA-256 or "
                                     "SCRAM-SHA-512)",
                                     properties.where(*mechanism_property), *mechanism_text));
    } else {
      mechanism = *m;
    }
  }
  if (jaas_text) {
    const std::string where = properties.where(*jaas_property) + ": sasl.jaas.config";
    auto jaas = security::sasl::parse_jaas_config(*jaas_text);
    if (!jaas) {
      problems.push_back(fmt::format("{}: {}", where, jaas.error().message));
    } else {
      const std::string& module = jaas->login_module;
      const bool plain_module = module == "org.apache.kafka.common.security.plain.PlainLoginModule";
      const bool scram_module = module == "org.apache.kafka.common.security.scram.ScramLoginModule";
      auto user = jaas->options.find("username");
      auto password = jaas->options.find("password");
      if (!plain_module && !scram_module) {
        problems.push_back(fmt::format("{}: login module {} is not supported (use PlainLoginModule or "
                                       "ScramLoginModule)",
                                       where, module));
      } else if (user == jaas->options.end() || user->second.empty()) {
        problems.push_back(fmt::format("{}: the login has no username option", where));
      } else if (password == jaas->options.end() || password->second.empty()) {
        problems.push_back(fmt::format("{}: the login for user {} has no password option", where, user->second));
      } else {
        SaslLogin login;
        // Kafka's default sasl.mechanism is GSSAPI, which Bulwark does not speak; a JAAS login without a
        // mechanism is taken as what its module implies.
        login.mechanism = mechanism.value_or(security::sasl::Mechanism::plain);
        if (!mechanism && scram_module) {
          problems.push_back(fmt::format("{}: a ScramLoginModule login needs sasl.mechanism=SCRAM-SHA-256 or "
                                         "SCRAM-SHA-512",
                                         where));
        }
        if (mechanism && security::sasl::is_scram(*mechanism) && plain_module) {
          problems.push_back(fmt::format("{}: sasl.mechanism is {} but the login module is PlainLoginModule "
                                         "(use ScramLoginModule)",
                                         where, security::sasl::name_of(*mechanism)));
        }
        if (mechanism && !security::sasl::is_scram(*mechanism) && scram_module) {
          problems.push_back(fmt::format("{}: sasl.mechanism is PLAIN but the login module is ScramLoginModule "
                                         "(use PlainLoginModule)",
                                         where));
        }
        if (!mechanism && plain_module) {
          settings.notes.push_back(fmt::format("{}: sasl.mechanism is not set; using PLAIN, the login module's "
                                               "mechanism (Kafka's default would be GSSAPI)",
                                               where));
        }
        login.username = user->second;
        login.password = config::Password(password->second);
        settings.sasl = std::move(login);
      }
    }
  } else if (mechanism) {
    settings.sasl = SaslLogin{*mechanism, {}, {}};  // validate_settings reports the missing login
  }

  if (!problems.empty()) {
    std::string joined;
    for (const auto& line : problems) joined += (joined.empty() ? "" : "\n") + line;
    return invalid(std::move(joined));
  }
  return settings;
}

Result<ClientSettings> load_client_properties(const std::filesystem::path& path, ClientSettings base) {
  auto properties = config::load_properties(path);
  if (!properties) return properties.error();
  return apply_client_properties(*properties, std::move(base));
}

Result<ClientSettings> settings_from_flags(const ConnectionFlags& flags) {
  ClientSettings settings;
  if (!flags.bootstrap_server.empty()) {
    auto servers = parse_bootstrap_servers(flags.bootstrap_server);
    if (!servers) return invalid("--bootstrap-server: " + servers.error().message);
    settings.bootstrap_servers = std::move(*servers);
  }
  if (!flags.command_config.empty()) {
    auto loaded = load_client_properties(flags.command_config, std::move(settings));
    if (!loaded) return loaded.error();
    settings = std::move(*loaded);
  }
  const bool pem_flags = !flags.ca.empty() || !flags.cert.empty() || !flags.key.empty();
  if (pem_flags) {
    const auto& t = settings.tls;
    if (!t.truststore_location.empty() || !t.truststore_certificates.empty() || !t.keystore_location.empty() ||
        !t.keystore_key.empty()) {
      return invalid("give TLS material either as --ca/--cert/--key or as ssl.* keys in --command-config, not both");
    }
    if (flags.ca.empty()) return invalid("--cert and --key need --ca: the CA certificate that signed the broker's");
    if (flags.cert.empty() != flags.key.empty()) {
      return invalid("--cert and --key go together: the client certificate and its private key");
    }
    settings.tls.ca_file = flags.ca;
    settings.tls.cert_file = flags.cert;
    settings.tls.key_file = flags.key;
    if (settings.protocol == config::SecurityProtocol::plaintext) settings.protocol = config::SecurityProtocol::ssl;
    if (settings.protocol == config::SecurityProtocol::sasl_plaintext) {
      settings.protocol = config::SecurityProtocol::sasl_ssl;
    }
  }
  BULWARK_TRY(validate_settings(settings));
  return settings;
}

Status validate_settings(const ClientSettings& settings) {
  if (settings.bootstrap_servers.empty()) {
    return invalid("no bootstrap server: give --bootstrap-server host:port or bootstrap.servers");
  }
  const bool tls = config::uses_tls(settings.protocol);
  const auto& t = settings.tls;
  const bool any_tls_material = !t.ca_file.empty() || !t.cert_file.empty() || !t.key_file.empty() ||
                                !t.truststore_location.empty() || !t.truststore_certificates.empty() ||
                                !t.keystore_location.empty() || !t.keystore_key.empty();
  if (!tls && any_tls_material) {
    return invalid(fmt::format("TLS files are given but security.protocol is {}: use SSL or SASL_SSL",
                               config::to_string(settings.protocol)));
  }
  if (config::uses_sasl(settings.protocol)) {
    if (!settings.sasl) {
      return invalid(fmt::format("security.protocol {} needs sasl.mechanism and sasl.jaas.config",
                                 config::to_string(settings.protocol)));
    }
    if (settings.sasl->username.empty() || settings.sasl->password.empty()) {
      return invalid("sasl.mechanism is set but sasl.jaas.config (with username and password) is missing");
    }
  } else if (settings.sasl) {
    return invalid(fmt::format("a SASL login is configured but security.protocol is {}: use SASL_PLAINTEXT or SASL_SSL",
                               config::to_string(settings.protocol)));
  }
  if (tls) {
    int trust_sources = !t.ca_file.empty() + !t.truststore_location.empty() + !t.truststore_certificates.empty();
    if (trust_sources == 0) {
      return invalid("TLS needs trust anchors to verify the broker: give --ca FILE, ssl.truststore.location or "
                     "ssl.truststore.certificates");
    }
    if (trust_sources > 1) {
      return invalid("give only one of --ca, ssl.truststore.location and ssl.truststore.certificates");
    }
    if (t.cert_file.empty() != t.key_file.empty()) {
      return invalid("--cert and --key go together: the client certificate and its private key");
    }
    if (t.keystore_key.empty() != t.keystore_certificate_chain.empty()) {
      return invalid("ssl.keystore.key and ssl.keystore.certificate.chain go together");
    }
    int key_sources = !t.cert_file.empty() + !t.keystore_location.empty() + !t.keystore_key.empty();
    if (key_sources > 1) {
      return invalid("give only one of --cert/--key, ssl.keystore.location and ssl.keystore.key");
    }
  }
  return Status::success();
}

Result<tls::TlsSettings> load_tls_material(const TlsMaterial& m) {
  tls::TlsSettings out;
  out.enabled_protocols = m.enabled_protocols;
  out.cipher_suites = m.cipher_suites;

  // Trust anchors.
  if (!m.ca_file.empty()) {
    auto text = read_file(m.ca_file);
    if (!text) return text.error();
    auto store = keystore::decode_pem(*text);
    if (!store) return invalid(fmt::format("{}: {}", m.ca_file.string(), store.error().message));
    out.truststore = std::move(*store);
    // A CA file is all anchors, even if a key sneaked in: keep only the certificates.
    for (auto& entry : out.truststore.keys) {
      for (auto& cert : entry.chain) out.truststore.trusted.push_back({entry.alias, std::move(cert)});
    }
    out.truststore.keys.clear();
  } else if (!m.truststore_location.empty()) {
    auto store = keystore::load(m.truststore_location, m.truststore_type, m.truststore_password.reveal());
    if (!store) return store.error();
    out.truststore = std::move(*store);
  } else if (!m.truststore_certificates.empty()) {
    auto store = keystore::decode_pem(m.truststore_certificates.reveal());
    if (!store) return invalid("ssl.truststore.certificates: " + store.error().message);
    out.truststore = std::move(*store);
  }
  if (out.truststore.trusted.empty() && !out.truststore.keys.empty()) {
    // A truststore holding key entries (some PKCS12 exports): trust their chains' certificates.
    for (auto& entry : out.truststore.keys) {
      for (auto& cert : entry.chain) out.truststore.trusted.push_back({entry.alias, std::move(cert)});
    }
    out.truststore.keys.clear();
  }

  // Our own certificate and key.
  if (!m.cert_file.empty()) {
    auto cert = read_file(m.cert_file);
    if (!cert) return cert.error();
    auto key = read_file(m.key_file);
    if (!key) return key.error();
    auto store = keystore::decode_pem(*key + "\n" + *cert, m.key_password.reveal());
    if (!store) {
      return invalid(fmt::format("{} with {}: {}", m.cert_file.string(), m.key_file.string(), store.error().message));
    }
    if (store->keys.empty()) return invalid(fmt::format("{}: no private key found", m.key_file.string()));
    out.keystore = std::move(*store);
  } else if (!m.keystore_location.empty()) {
    auto store = keystore::load(m.keystore_location, m.keystore_type, m.keystore_password.reveal(),
                                m.key_password.reveal());
    if (!store) return store.error();
    if (store->keys.empty()) {
      return invalid(fmt::format("{}: the keystore holds no private key entry", m.keystore_location.string()));
    }
    out.keystore = std::move(*store);
  } else if (!m.keystore_key.empty()) {
    auto store = keystore::decode_pem(m.keystore_key.reveal() + "\n" + m.keystore_certificate_chain.reveal(),
                                      m.key_password.reveal());
    if (!store) return invalid("ssl.keystore.key with ssl.keystore.certificate.chain: " + store.error().message);
    out.keystore = std::move(*store);
  }
  out.keystore.trusted.clear();
  return out;
}

}  // namespace bulwark::client
