// `pki export` and `pki bootstrap`: keystores, truststores, PEM files and Kafka/librdkafka configs.
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>

#include "base/files.h"
#include "pki/crypto.h"
#include "pki/pki.h"
#include "pki/session.h"
#include "security/keystore.h"

namespace bulwark::pki {
namespace {

constexpr const char* kTrustAlias = "bulwark-root-ca";

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

const char* format_name(ExportFormat format) {
  switch (format) {
    case ExportFormat::jks: return "JKS";
    case ExportFormat::pkcs12: return "PKCS12";
    case ExportFormat::pem: return "PEM";
  }
  return "?";
}

// What plan_export wrote, for configs that point at it.
struct ExportedFiles {
  fs::path keystore, truststore;  // in the chosen format
  fs::path key_pem, cert_pem, chain_pem, ca_pem;  // PEM copies (key unencrypted unless pem with password)
  bool pem_key_encrypted = false;
};

struct ExportRequest {
  std::string name;
  ExportFormat format = ExportFormat::pem;
  std::string password;
  bool legacy_pkcs12 = false;
  fs::path out;
  bool force = false;
  bool pem_copies = false;  // bootstrap: PEM files for librdkafka whatever the format
};

Result<X509Ptr> issued_certificate(Session& session, const std::string& name) {
  if (auto it = session.new_certs.find(name); it != session.new_certs.end()) return share(it->second.get());
  auto path = session.issued_dir(name) / "cert.pem";
  auto text = read_file(path);
  if (!text) return text.error();
  return crypto::parse_certificate(*text, display(path));
}

Result<EvpPkeyPtr> issued_key(Session& session, const std::string& name) {
  if (auto it = session.new_keys.find(name); it != session.new_keys.end()) return share(it->second.get());
  auto path = session.issued_dir(name) / "key.pem";
  auto text = read_file(path);
  if (!text) return text.error();
  return crypto::parse_private_key(*text, display(path));
}

// Remembered in state.json so that a CA rotation can write the same files again.
void record_export(PkiState& state, const ExportRequest& request) {
  ExportRecord record{request.name, format_name(request.format), request.out.string(), request.legacy_pkcs12,
                      request.pem_copies, !request.password.empty()};
  for (auto& c : record.format) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::erase_if(state.exports, [&](const ExportRecord& e) {
    return e.name == record.name && e.out == record.out && e.format == record.format;
  });
  state.exports.push_back(std::move(record));
}

Result<ExportedFiles> plan_export(Session& session, FilePlan& plan, const ExportRequest& request) {
  IssuedRecord* record = session.state.find(request.name);
  if (!record)
    return make_error(ErrorKind::not_found, "no certificate named " + request.name + " in " + display(session.dir) +
                                                ": issue it first with `bulwark pki issue`");
  if (record->from_csr)
    return invalid(request.name + " was signed from a CSR, so its private key is not in the PKI; import " +
                   display(session.issued_dir(request.name) / "chain.pem") + " into the keystore that made the CSR");
  if (record->revoked) plan.messages.push_back("Warning: " + request.name + " is revoked; exporting it anyway");
  if (request.format != ExportFormat::pem) BULWARK_TRY(check_store_password(request.password));
  auto cert = issued_certificate(session, request.name);
  if (!cert) return cert.error();
  auto key = issued_key(session, request.name);
  if (!key) return key.error();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    openssl_errors();
    return make_error(ErrorKind::corrupt, "the key of " + request.name + " does not match its certificate");
  }

  // DIR/ca's intermediate and root, or the chain an ACME server sent (pki/pki.h, issuer_chain).
  auto issuers = issuer_chain(session, request.name);
  if (!issuers) return issuers.error();
  keystore::KeyStore keys;
  keystore::PrivateKeyEntry entry;
  entry.alias = request.name;
  entry.key = share(key->get());
  entry.chain.push_back(share(cert->get()));
  for (const auto& issuer : *issuers) entry.chain.push_back(share(issuer.get()));
  keys.keys.push_back(std::move(entry));
  keystore::KeyStore trust;
  trust.trusted.push_back({kTrustAlias, share(issuers->back().get())});
  // During a CA rotation the other root is trusted too (pki rotate-ca).
  const bool own = !is_external(session, request.name);
  if (own)
    for (std::size_t i = 0; i < session.extra_roots.size(); ++i)
      trust.trusted.push_back({std::string(kTrustAlias) + "-" + std::to_string(i + 2), share(session.extra_roots[i].get())});

  auto cert_pem = crypto::certificate_pem(cert->get());
  if (!cert_pem) return make_error(ErrorKind::internal, "cannot write PEM");
  std::string bundle;
  for (const auto& issuer : *issuers) {
    auto pem = crypto::certificate_pem(issuer.get());
    if (!pem) return make_error(ErrorKind::internal, "cannot write PEM");
    bundle += *pem;
  }
  std::string chain = *cert_pem + bundle;
  if (own)
    for (const auto& extra : session.extra_roots) {
      auto pem = crypto::certificate_pem(extra.get());
      if (!pem) return make_error(ErrorKind::internal, "cannot write PEM");
      bundle += *pem;
    }
  record_export(session.state, request);

  ExportedFiles files;
  const auto& out = request.out;
  const std::string& name = request.name;
  std::string described;
  if (request.format == ExportFormat::jks || request.format == ExportFormat::pkcs12) {
    bool jks = request.format == ExportFormat::jks;
    auto store = jks ? keystore::encode_jks(keys, request.password)
                     : keystore::encode_pkcs12(keys, request.password,
                                               request.legacy_pkcs12 ? keystore::Pkcs12Style::legacy
                                                                     : keystore::Pkcs12Style::modern);
    if (!store) return store.error();
    auto truststore = jks ? keystore::encode_jks(trust, request.password)
                          : keystore::encode_pkcs12(trust, request.password,
                                                    request.legacy_pkcs12 ? keystore::Pkcs12Style::legacy
                                                                          : keystore::Pkcs12Style::modern);
    if (!truststore) return truststore.error();
    std::string ext = jks ? ".jks" : ".p12";
    files.keystore = out / (name + ".keystore" + ext);
    files.truststore = out / (name + ".truststore" + ext);
    plan.write(files.keystore, std::string(as_chars(*store)), kPrivateFileMode, request.force);
    plan.write(files.truststore, std::string(as_chars(*truststore)), kPublicFileMode, request.force);
    described = std::string(format_name(request.format)) + (request.legacy_pkcs12 && !jks ? " (legacy 3DES form)" : "") +
                " keystore " + display(files.keystore) + " (mode 0600; alias " + name +
                ", key + chain of " + std::to_string(issuers->size() + 1) + ": leaf, then its issuers) and truststore " +
                display(files.truststore) + " (the chain's top CA as trusted entry \"" + kTrustAlias + "\")";
  }
  bool pem = request.format == ExportFormat::pem;
  if (pem || request.pem_copies) {
    std::string key_password = pem ? request.password : std::string();
    auto key_pem = crypto::private_key_pem(key->get(), key_password);
    if (!key_pem) return key_pem.error();
    files.key_pem = out / (name + ".key");
    files.cert_pem = out / (name + ".crt");
    files.chain_pem = out / (name + ".chain.pem");
    files.ca_pem = out / "ca.pem";
    files.pem_key_encrypted = !key_password.empty();
    plan.write(files.key_pem, *key_pem, kPrivateFileMode, request.force);
    plan.write(files.cert_pem, *cert_pem, kPublicFileMode, request.force);
    plan.write(files.chain_pem, chain, kPublicFileMode, request.force);
    plan.write(files.ca_pem, bundle, kPublicFileMode, request.force);
    std::string pem_line = "PEM files " + display(files.key_pem) + " (mode 0600" +
                           (files.pem_key_encrypted ? ", encrypted" : ", not encrypted") + "), " +
                           display(files.cert_pem) + ", " + display(files.chain_pem) + " and CA bundle " +
                           display(files.ca_pem);
    if (pem) {
      // Kafka's ssl.keystore.type=PEM wants key and chain in one file, and Java 17 decrypts only the
      // PKCS#12 3DES form of an encrypted PKCS#8 key (not PBES2), so that file uses it.
      auto keystore_pem = keystore::encode_pem(keys, key_password, keystore::PemKeyCipher::java_des3);
      if (!keystore_pem) return keystore_pem.error();
      files.keystore = out / (name + ".keystore.pem");
      files.truststore = files.ca_pem;
      plan.write(files.keystore, *keystore_pem, kPrivateFileMode, request.force);
      described = pem_line + ", and key + chain in " + display(files.keystore) + " (mode 0600)";
    } else {
      described += "; " + pem_line;
    }
  }
  plan.messages.push_back("Exported " + name + ": " + described);
  return files;
}

std::string properties_header(const std::string& what) {
  return "# " + what + ", written by `bulwark pki bootstrap`. It holds store passwords: keep it private.\n";
}

std::string store_lines(const ExportFormat format, const ExportedFiles& files, const std::string& password) {
  std::string out;
  out += "ssl.keystore.type=" + std::string(format_name(format)) + "\n";
  out += "ssl.keystore.location=" + files.keystore.string() + "\n";
  if (format != ExportFormat::pem) out += "ssl.keystore.password=" + password + "\n";
  if (format != ExportFormat::pem || files.pem_key_encrypted) out += "ssl.key.password=" + password + "\n";
  out += "ssl.truststore.type=" + std::string(format_name(format)) + "\n";
  out += "ssl.truststore.location=" + files.truststore.string() + "\n";
  if (format != ExportFormat::pem) out += "ssl.truststore.password=" + password + "\n";
  return out;
}

Result<std::string> random_password() {
  static constexpr char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  std::string out;
  unsigned char bytes[64];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return make_error(ErrorKind::internal, "the random number generator failed");
  for (unsigned char b : bytes) {
    if (b >= 256 - 256 % (sizeof kAlphabet - 1)) continue;  // no modulo bias
    out += kAlphabet[b % (sizeof kAlphabet - 1)];
    if (out.size() == 24) break;
  }
  if (out.size() < 24) return random_password();
  return out;
}

}  // namespace

Result<ExportFormat> parse_export_format(std::string_view text) {
  std::string name(text);
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "pem") return ExportFormat::pem;
  if (name == "pkcs12" || name == "p12") return ExportFormat::pkcs12;
  if (name == "jks") return ExportFormat::jks;
  return invalid("unknown format \"" + std::string(text) + "\": use pem, pkcs12 or jks");
}

Result<std::string> read_password_file(const fs::path& path) {
  auto text = read_file(path);
  if (!text) return make_error(text.error().kind, "cannot read the password file: " + text.error().message);
  std::string password = text->substr(0, text->find('\n'));
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty())
    return make_error(ErrorKind::invalid_argument, "the password file " + display(path) + " is empty");
  return password;
}

Status check_store_password(const std::string& password) {
  if (password.empty())
    return invalid("a password is needed for JKS and PKCS12 stores: pass --password-file FILE or --password");
  if (password.size() < 6)
    return invalid("the store password is too short: keytool and Kafka need at least 6 characters");
  return Status::success();
}

Status plan_reexport(Session& session, FilePlan& plan, const std::string& password) {
  const auto exports = session.state.exports;  // plan_export updates the list as it goes
  for (const auto& record : exports) {
    if (!session.state.find(record.name)) continue;  // issued no more
    if (record.encrypted && password.empty())
      return invalid("the " + record.format + " export of " + record.name + " in " + record.out +
                     " is protected by a password: give it with --password-file");
    auto format = parse_export_format(record.format);
    if (!format) return format.error();
    ExportRequest request;
    request.name = record.name;
    request.format = *format;
    request.password = record.encrypted ? password : std::string();
    request.legacy_pkcs12 = record.legacy_pkcs12;
    request.out = record.out;
    request.force = true;
    request.pem_copies = record.pem_copies;
    auto files = plan_export(session, plan, request);
    if (!files) return files.error();
  }
  return Status::success();
}

Result<Outcome> export_credentials(const ExportOptions& options) {
  BULWARK_TRY(validate_cert_name(options.name));
  if (options.format != ExportFormat::pem) BULWARK_TRY(check_store_password(options.password));
  auto session = Session::open(options.dir);
  if (!session) return session.error();
  ExportRequest request;
  request.name = options.name;
  request.format = options.format;
  request.password = options.password;
  request.legacy_pkcs12 = options.legacy_pkcs12;
  request.out = options.out.value_or(options.dir / "export" / options.name);
  request.force = options.force;
  FilePlan plan;
  auto files = plan_export(*session, plan, request);
  if (!files) return files.error();
  session->save(plan);
  BULWARK_TRY(plan.commit());
  return Outcome{std::move(plan.messages)};
}

namespace {

// Where broker `index` (0-based) listens and is reached: its first IP SAN (a name could resolve to
// another address family than the one bound), else its first DNS SAN; clients at base + 10 * index,
// its controller at the port after. Either SAN passes host name verification.
std::string node_host(const BrokerSpec& broker) {
  if (!broker.sans.ips.empty()) return broker.sans.ips.front();
  if (!broker.sans.dns.empty()) return broker.sans.dns.front();
  return broker.name;
}

std::string host_port(const std::string& host, int port) {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// The KRaft lines of a combined node's server.properties; the TLS and authorizer lines follow.
std::string node_config(const BootstrapOptions& options, const BrokerSpec& broker, const fs::path& root) {
  const int base = *options.node_configs_base_port;
  std::string voters;
  int index = 0;
  for (std::size_t i = 0; i < options.brokers.size(); ++i) {
    const auto& b = options.brokers[i];
    if (b.name == broker.name) index = static_cast<int>(i);
    voters += (i ? "," : "") + std::to_string(i + 1) + "@" + host_port(node_host(b), base + 10 * static_cast<int>(i) + 1);
  }
  const std::string host = node_host(broker);
  const int port = base + 10 * index;
  std::string out = "# A complete KRaft node (broker and controller) of the cluster `bulwark pki bootstrap` made.\n";
  out += "# Format its data dir once (bulwark storage format -t <one cluster id for all nodes> -c <this file>).\n";
  out += "process.roles=broker,controller\n";
  out += "node.id=" + std::to_string(index + 1) + "\n";
  out += "controller.quorum.voters=" + voters + "\n";
  out += "controller.listener.names=CONTROLLER\n";
  out += "listeners=SSL://" + host_port(host, port) + ",CONTROLLER://" + host_port(host, port + 1) + "\n";
  out += "advertised.listeners=SSL://" + host_port(host, port) + "\n";
  out += "listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL\n";
  out += "inter.broker.listener.name=SSL\n";
  out += "log.dirs=" + (root / broker.name / "data").string() + "\n";
  return out;
}

}  // namespace

Result<Outcome> bootstrap(const BootstrapOptions& options) {
  if (options.brokers.empty() && options.clients.empty())
    return invalid("nothing to bootstrap: pass at least one --broker NAME=SAN,... or --client NAME");
  std::vector<std::string> names;
  for (const auto& broker : options.brokers) names.push_back(broker.name);
  for (const auto& client : options.clients) {
    BULWARK_TRY(validate_cert_name(client));
    names.push_back(client);
  }
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t j = i + 1; j < names.size(); ++j)
      if (names[i] == names[j]) return invalid(names[i] + " is named twice; every broker and client needs its own name");

  FilePlan plan;
  std::string password;
  fs::path password_path = options.dir / "bootstrap.password";
  if (options.password) {
    password = *options.password;
  } else if (std::error_code ec; fs::exists(password_path, ec)) {
    auto existing = read_password_file(password_path);
    if (!existing) return existing.error();
    password = *existing;
    plan.messages.push_back("Using the store password kept in " + display(password_path));
  } else {
    auto generated = random_password();
    if (!generated) return generated.error();
    password = *generated;
    plan.write(password_path, password + "\n", kPrivateFileMode, false);
    plan.messages.push_back("Generated a store password into " + display(password_path) + " (mode 0600)");
  }
  BULWARK_TRY(check_store_password(password));

  Session session;
  if (Session::exists(options.dir)) {
    auto opened = Session::open(options.dir, options.ca_key_password);
    if (!opened) return opened.error();
    session = std::move(*opened);
    plan.messages.push_back("Using the CA already in " + display(options.dir));
  } else {
    InitOptions init_options;
    init_options.dir = options.dir;
    init_options.key_type = options.key_type;
    init_options.subject = options.subject;
    init_options.ca_key_password = options.ca_key_password;
    BULWARK_TRY(plan_init(session, plan, init_options));
  }

  for (const auto& broker : options.brokers) {
    IssueRequest request;
    request.name = broker.name;
    request.kind = CertKind::broker;
    request.sans = broker.sans;
    request.key_type = options.key_type;
    request.days = options.days;
    request.force = options.force;
    BULWARK_TRY(plan_issue(session, plan, request));
  }
  for (const auto& client : options.clients) {
    IssueRequest request;
    request.name = client;
    request.kind = CertKind::client;
    request.key_type = options.key_type;
    request.days = options.days;
    request.force = options.force;
    BULWARK_TRY(plan_issue(session, plan, request));
  }

  fs::path out_root = options.out.value_or(options.dir / "export");
  std::error_code ec;
  fs::path absolute_root = fs::absolute(out_root, ec);
  if (ec) absolute_root = out_root;
  std::string super_users;
  for (const auto& broker : options.brokers) super_users += (super_users.empty() ? "" : ";") + ("User:" + broker.name);
  if (!options.clients.empty()) super_users += (super_users.empty() ? "" : ";") + ("User:" + options.clients.front());

  std::vector<std::string> made;
  auto export_one = [&](const std::string& name) -> Result<ExportedFiles> {
    ExportRequest request;
    request.name = name;
    request.format = options.format;
    request.password = password;
    request.legacy_pkcs12 = options.legacy_pkcs12;
    request.out = absolute_root / name;
    request.force = options.force;
    request.pem_copies = true;
    return plan_export(session, plan, request);
  };
  for (const auto& broker : options.brokers) {
    auto files = export_one(broker.name);
    if (!files) return files.error();
    std::string props = properties_header("Kafka broker TLS settings for " + broker.name);
    props += store_lines(options.format, *files, password);
    props += "ssl.client.auth=required\n";
    props += "ssl.endpoint.identification.algorithm=https\n";
    props += "ssl.enabled.protocols=TLSv1.3,TLSv1.2\n";
    props += "ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT\n";
    // Authorization on by default: only the brokers and the first client (the admin) may do anything
    // until ACLs say otherwise.
    props += "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n";
    props += "allow.everyone.if.no.acl.found=false\n";
    if (!super_users.empty()) props += "super.users=" + super_users + "\n";
    auto path = absolute_root / broker.name / (broker.name + ".server.properties");
    plan.write(path, props, kPrivateFileMode, options.force);
    made.push_back("broker " + broker.name + ": " + display(path));
    if (options.node_configs_base_port) {
      auto node_path = absolute_root / broker.name / (broker.name + ".node.properties");
      plan.write(node_path, node_config(options, broker, absolute_root) + props, kPrivateFileMode, options.force);
      made.push_back("  node config: " + display(node_path));
    }
  }
  for (const auto& client : options.clients) {
    auto files = export_one(client);
    if (!files) return files.error();
    std::string rdkafka = "# librdkafka / kcat settings for " + client + ", written by `bulwark pki bootstrap`.\n";
    rdkafka += "security.protocol=ssl\n";
    rdkafka += "ssl.ca.location=" + files->ca_pem.string() + "\n";
    rdkafka += "ssl.certificate.location=" + files->chain_pem.string() + "\n";
    rdkafka += "ssl.key.location=" + files->key_pem.string() + "\n";
    if (files->pem_key_encrypted) rdkafka += "ssl.key.password=" + password + "\n";
    auto rdkafka_path = absolute_root / client / (client + ".librdkafka.conf");
    plan.write(rdkafka_path, rdkafka, files->pem_key_encrypted ? kPrivateFileMode : kPublicFileMode, options.force);

    std::string java = properties_header("Kafka Java client TLS settings for " + client);
    java += "security.protocol=SSL\n";
    java += store_lines(options.format, *files, password);
    java += "ssl.endpoint.identification.algorithm=https\n";
    auto java_path = absolute_root / client / (client + ".client.properties");
    plan.write(java_path, java, kPrivateFileMode, options.force);
    made.push_back("client " + client + ": " + display(rdkafka_path) + " (librdkafka/kcat), " + display(java_path) +
                   " (Java)");
  }
  // The exports are recorded in the state, so that `pki rotate-ca` writes these stores again.
  session.save(plan);
  BULWARK_TRY(plan.commit());
  auto messages = std::move(plan.messages);
  messages.push_back("Summary: " + std::to_string(options.brokers.size()) + " broker(s) and " +
                     std::to_string(options.clients.size()) + " client(s) in " + display(absolute_root) + ", " +
                     format_name(options.format) + " stores; super.users=" + super_users);
  for (auto& line : made) messages.push_back("  " + line);
  if (!options.password) messages.push_back("  store password: in " + display(password_path));
  return Outcome{std::move(messages)};
}

}  // namespace bulwark::pki
