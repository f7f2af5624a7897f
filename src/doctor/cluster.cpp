// `bulwark doctor --bootstrap-server`: a running broker judged from the outside. The probe (as
// `bulwark probe` runs it) with our credentials and again without a client certificate; TLS hellos
// that offer only old versions or weak ciphers, to see whether the broker takes them; then, as an
// admin, the config checks on what DescribeConfigs returns and the ACLs.
#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>

#include "client/acl.h"
#include "client/probe.h"
#include "doctor/checks.h"
#include "tls/tls.h"
#include "wire/generated/describe_configs.h"
#include "wire/generated/metadata.h"

namespace bulwark::doctor {
namespace detail {

void audit_acls(const std::vector<security::AclBinding>& acls, const std::string& where, Findings& out) {
  using security::Operation;
  for (const auto& b : acls) {
    if (b.permission != security::Permission::allow) continue;
    const bool anybody = b.principal == security::kWildcardPrincipal;
    if (!anybody && b.principal != "User:ANONYMOUS") continue;
    const bool every_name = (b.pattern_type == security::PatternType::literal && b.resource_name == "*") ||
                            (b.pattern_type == security::PatternType::prefixed && b.resource_name.empty());
    const bool reading = b.operation == Operation::read || b.operation == Operation::describe ||
                         b.operation == Operation::describe_configs;
    Severity severity = anybody ? Severity::medium : Severity::low;
    if (b.resource_type == security::ResourceType::cluster) severity = anybody ? Severity::critical : Severity::high;
    else if (every_name && !reading) severity = Severity::high;
    const std::string who = anybody ? "every principal (User:*), User:ANONYMOUS included"
                                    : "User:ANONYMOUS (whoever connects without credentials)";
    out.push_back(Finding{severity, "open-acl", where,
                          "ACL " + client::render_entry(b) + " on " +
                              client::render_resource_pattern(b.resource_type, b.resource_name, b.pattern_type) +
                              " allows " + std::string(security::name_of(b.operation)) + " to " + who,
                          "grant it to the principals that need it, then remove this one: bulwark acl remove "
                          "--bootstrap-server ... --allow-principal " + b.principal + " --operation " +
                              std::string(security::name_of(b.operation))});
  }
}

}  // namespace detail

using namespace detail;

namespace {

constexpr auto kHelloTimeout = std::chrono::seconds(5);
constexpr std::int8_t kBrokerResource = 4;
constexpr std::int8_t kDefaultSource = 5;  // DescribeConfigs: a key at its default (Kafka lists them all)

// What one TLS hello got from the broker: the version and cipher its ServerHello chose (a broker that
// refuses them answers with an alert instead), and the certificate it served.
struct Hello {
  bool server_hello = false;
  int version = 0;
  std::string cipher;
  X509Ptr leaf;
};

void on_message(int write_p, int, int content_type, const void* buf, std::size_t len, SSL* ssl, void* arg) {
  const auto* p = static_cast<const unsigned char*>(buf);
  // ServerHello: type, length (3), legacy_version (2), random (32), session id (1 + n), cipher (2).
  if (write_p != 0 || content_type != SSL3_RT_HANDSHAKE || len < 41 || p[0] != SSL3_MT_SERVER_HELLO) return;
  auto* hello = static_cast<Hello*>(arg);
  hello->server_hello = true;
  hello->version = p[4] << 8 | p[5];
  const std::size_t at = 39 + p[38];
  const SSL_CIPHER* cipher = at + 2 <= len ? SSL_CIPHER_find(ssl, p + at) : nullptr;
  hello->cipher = cipher != nullptr ? SSL_CIPHER_standard_name(cipher) : "?";
}

int dial(const client::HostPort& server) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(server.host.c_str(), std::to_string(server.port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  const timeval wait{static_cast<time_t>(kHelloTimeout.count()), 0};
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

// One handshake offering only [min_version, max_version] and `ciphers` (OpenSSL's list form), with our
// client certificate when we have one. nullopt when OpenSSL here cannot offer them at all.
std::optional<Hello> hello(const client::HostPort& server, int min_version, int max_version, const char* ciphers,
                           const tls::TlsSettings* material) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx.get(), min_version) ||
      !SSL_CTX_set_max_proto_version(ctx.get(), max_version) || !SSL_CTX_set_cipher_list(ctx.get(), ciphers)) {
    ERR_clear_error();
    return std::nullopt;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });  // judged by the probe
  if (material != nullptr && !material->keystore.keys.empty() && !material->keystore.keys.front().chain.empty()) {
    const auto& entry = material->keystore.keys.front();
    SSL_CTX_use_certificate(ctx.get(), entry.chain.front().get());
    SSL_CTX_use_PrivateKey(ctx.get(), entry.key.get());
  }
  Hello out;
  SSL_CTX_set_msg_callback(ctx.get(), on_message);
  SSL_CTX_set_msg_callback_arg(ctx.get(), &out);
  const int fd = dial(server);
  if (fd < 0) return out;
  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  SSL_connect(ssl.get());
  if (X509* peer = SSL_get1_peer_certificate(ssl.get())) out.leaf = X509Ptr(peer);
  ERR_clear_error();
  ssl.reset();
  ::close(fd);
  return out;
}

void check_versions(const client::HostPort& server, const tls::TlsSettings* material, Findings& out) {
  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    auto got = hello(server, version, version, "ALL:@SECLEVEL=0", material);
    if (!got || !got->server_hello || got->version != version) continue;
    const std::string name = version == TLS1_VERSION ? "TLSv1" : "TLSv1.1";
    out.push_back(Finding{Severity::high, "weak-tls-version", server.to_string(),
                          "the broker accepts a " + name + " handshake (it chose " + got->cipher +
                              "): that version is broken",
                          "set ssl.enabled.protocols=TLSv1.3,TLSv1.2 on this listener"});
  }
}

void check_ciphers(const client::HostPort& server, const tls::TlsSettings* material, Findings& out) {
  // Offered one class at a time, so that the broker's choice shows the worst it accepts.
  for (const char* offer : {"eNULL:aNULL:EXPORT:RC4:DES:3DES:MD5:@SECLEVEL=0",
                            "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:"
                            "DHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA:@SECLEVEL=0"}) {
    auto got = hello(server, TLS1_2_VERSION, TLS1_2_VERSION, offer, material);
    if (!got || !got->server_hello) continue;
    auto weak = cipher_weakness(got->cipher);
    if (!weak) continue;
    out.push_back(Finding{weak->severity, "weak-cipher", server.to_string(),
                          "the broker accepts the cipher suite " + got->cipher + " (TLSv1.2): " + weak->why,
                          "list only AEAD suites in ssl.cipher.suites (or leave it unset for the secure defaults)"});
  }
}

bool has_client_certificate(const client::TlsMaterial& tls) {
  return !tls.cert_file.empty() || !tls.keystore_location.empty() || !tls.keystore_key.empty();
}

const client::ProbeStep* step_named(const client::ProbeReport& report, std::string_view name) {
  for (const auto& step : report.steps)
    if (step.name == name) return &step;
  return nullptr;
}

void add_probe_findings(const client::ProbeReport& report, Findings& out) {
  for (const auto& step : report.steps) {
    if (step.status != client::ProbeStatus::warn && step.status != client::ProbeStatus::fail) continue;
    out.push_back(Finding{step.status == client::ProbeStatus::fail ? Severity::high : Severity::medium, "probe",
                          report.broker, step.name + ": " + step.message, step.fix});
  }
}

// An SSL listener that answers ApiVersions to a client without a certificate lets anybody in as
// User:ANONYMOUS.
void check_anonymous(const client::ClientSettings& settings, const client::ProbeReport& first, Findings& out) {
  if (settings.protocol != config::SecurityProtocol::ssl) return;
  std::optional<client::ProbeReport> without;
  if (has_client_certificate(settings.tls)) {
    client::ProbeOptions options;
    options.settings = settings;
    options.settings.tls.cert_file.clear();
    options.settings.tls.key_file.clear();
    options.settings.tls.keystore_location.clear();
    options.settings.tls.keystore_key = {};
    options.settings.tls.keystore_certificate_chain = {};
    auto report = client::run_probe(options);
    if (!report.ok()) return;
    without = std::move(*report);
  }
  const auto* step = step_named(without ? *without : first, "ApiVersions");
  if (step == nullptr || step->status != client::ProbeStatus::ok) return;
  out.push_back(Finding{Severity::high, "client-auth", first.broker,
                        "the broker answers a client that sends no certificate (ssl.client.auth is not required on "
                        "this listener): anybody who reaches it is User:ANONYMOUS",
                        "set listener.name.<listener>.ssl.client.auth=required"});
}

std::int32_t node_id_of(client::AdminConnection& connection) {
  wire::msg::MetadataRequest request;
  request.allow_auto_topic_creation = false;
  auto response = connection.call<wire::msg::MetadataRequest, wire::msg::MetadataResponse>(request);
  if (!response.ok() || response->brokers.empty()) return -1;
  for (const auto& b : response->brokers)
    if (b.host == connection.broker().host && b.port == connection.broker().port) return b.node_id;
  return response->brokers.front().node_id;
}

// The broker's configs as DescribeConfigs shows them, as properties: secrets stay hidden, and keys at
// their defaults are left to the parser's defaults.
Result<config::Properties> describe_configs(client::AdminConnection& connection) {
  const std::int32_t node = node_id_of(connection);
  wire::msg::DescribeConfigsRequest request;
  wire::msg::DescribeConfigsRequest::DescribeConfigsResource resource;
  resource.resource_type = kBrokerResource;
  resource.resource_name = node >= 0 ? std::to_string(node) : "";
  resource.configuration_keys = std::nullopt;
  request.resources.push_back(resource);
  auto response = connection.call<wire::msg::DescribeConfigsRequest, wire::msg::DescribeConfigsResponse>(request);
  if (!response.ok()) return response.error();
  if (response->results.empty()) return make_error(ErrorKind::corrupt, "DescribeConfigs returned no result");
  const auto& result = response->results.front();
  if (result.error_code != 0)
    return make_error(ErrorKind::unauthenticated,
                      client::error_name(result.error_code) + (result.error_message ? ": " + *result.error_message : ""));
  config::Properties props;
  props.source = "broker " + resource.resource_name + " (DescribeConfigs)";
  for (const auto& entry : result.configs) {
    if (entry.config_source == kDefaultSource) continue;
    props.entries.push_back(config::Property{entry.name, entry.value.value_or("[hidden]"), 0});
  }
  return props;
}

std::vector<std::string> served_subjects(const client::HostPort& server, const tls::TlsSettings* material) {
  std::vector<std::string> out;
  if (material != nullptr)
    for (const auto& entry : material->keystore.keys)
      if (!entry.chain.empty()) out.push_back(tls::subject_rfc2253(entry.chain.front().get()));
  if (auto got = hello(server, TLS1_2_VERSION, TLS1_3_VERSION, "DEFAULT", material); got && got->leaf)
    out.push_back(tls::subject_rfc2253(got->leaf.get()));
  return out;
}

// DescribeConfigs and DescribeAcls, as an admin.
void audit_as_admin(const client::ClientSettings& settings, const std::vector<std::string>& subjects, Findings& out) {
  const std::string where = settings.bootstrap_servers.front().to_string();
  auto connection = client::AdminConnection::connect(settings);
  if (!connection.ok()) {
    out.push_back(Finding{Severity::low, "not-checked", where,
                          "configs and ACLs not checked: " + connection.error().message,
                          "give an admin's credentials (a super user's certificate)"});
    return;
  }
  if (auto props = describe_configs(**connection); props.ok()) {
    ConfigAuditOptions options;
    options.check_files = false;
    options.running = true;
    options.extra_subjects = subjects;
    auto found = audit_properties(*props, options);
    out.insert(out.end(), found.begin(), found.end());
  } else {
    out.push_back(Finding{Severity::low, "not-checked", where, "configs not checked: " + props.error().message,
                          "give a principal allowed DESCRIBE_CONFIGS on the cluster (a super user)"});
  }
  if (auto acls = client::describe_acls(**connection, security::AclBindingFilter::any()); acls.ok()) {
    audit_acls(*acls, where, out);
  } else {
    out.push_back(Finding{Severity::low, "not-checked", where, "ACLs not checked: " + acls.error().message,
                          "give a principal allowed DESCRIBE on the cluster (a super user)"});
  }
}

}  // namespace

Result<std::vector<Finding>> audit_cluster(const client::ConnectionFlags& flags) {
  auto settings = client::probe_settings_from_flags(flags);
  if (!settings.ok()) return settings.error();
  settings->bootstrap_servers.resize(1);  // the bootstrap broker is the one judged
  const auto server = settings->bootstrap_servers.front();
  client::ProbeOptions options;
  options.settings = *settings;
  auto report = client::run_probe(options);
  if (!report.ok()) return report.error();
  if (const auto* tcp = step_named(*report, "TCP"); tcp != nullptr && tcp->status == client::ProbeStatus::fail)
    return make_error(ErrorKind::unavailable, "cannot reach " + server.to_string() + ": " + tcp->message);
  Findings out;
  add_probe_findings(*report, out);
  std::vector<std::string> subjects;
  if (config::uses_tls(settings->protocol)) {
    auto material = client::load_tls_material(settings->tls);
    const tls::TlsSettings* own = material.ok() ? &*material : nullptr;
    check_anonymous(*settings, *report, out);
    check_versions(server, own, out);
    check_ciphers(server, own, out);
    subjects = served_subjects(server, own);
  }
  audit_as_admin(*settings, subjects, out);
  return out;
}

}  // namespace bulwark::doctor
