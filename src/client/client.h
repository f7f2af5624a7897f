// A small blocking Kafka admin client: settings (from flags or a Kafka client properties file, the
// --command-config of Kafka's tools), one connection to one broker (TCP, TLS, ApiVersions, SASL) and
// typed request/response round trips with version negotiation.
//
// Errors are values everywhere; every socket read and write waits at most the settings' timeout.
// Secrets (passwords, keys) live in config::Password and never reach an error message.
//
// Thread safety: an AdminConnection is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "config/config.h"
#include "security/keystore.h"
#include "security/sasl.h"
#include "tls/tls.h"
#include "wire/protocol.h"

namespace bulwark::client {

// ---- Settings ------------------------------------------------------------------------------------

struct HostPort {
  std::string host;  // IPv6 without brackets
  std::uint16_t port = 0;
  std::string to_string() const;  // host:port, IPv6 in brackets
  bool operator==(const HostPort&) const = default;
};
// "host:port[,host:port...]" (Kafka's bootstrap.servers; IPv6 as [::1]:9092).
Result<std::vector<HostPort>> parse_bootstrap_servers(std::string_view text);

// Where TLS material comes from. Three sources per side, at most one each: PEM files (the --ca,
// --cert, --key flags), a keystore/truststore file (Kafka's ssl.*.location), or PEM text inside the
// properties (ssl.truststore.certificates, ssl.keystore.key + ssl.keystore.certificate.chain).
struct TlsMaterial {
  std::filesystem::path ca_file;    // PEM CA certificates (the trust anchors)
  std::filesystem::path cert_file;  // PEM client certificate (with chain)
  std::filesystem::path key_file;   // PEM private key (encrypted with key_password if it is set)

  std::filesystem::path truststore_location;
  std::optional<keystore::Format> truststore_type;  // nullopt = detect from the file
  config::Password truststore_password;
  config::Password truststore_certificates;  // PEM text

  std::filesystem::path keystore_location;
  std::optional<keystore::Format> keystore_type;
  config::Password keystore_password;
  config::Password key_password;
  config::Password keystore_key;                // PEM text
  config::Password keystore_certificate_chain;  // PEM text

  // ssl.endpoint.identification.algorithm: "https" (default) checks the broker certificate's SAN
  // against the host dialled; empty turns that check off (the chain is still verified).
  bool verify_hostname = true;
  std::vector<std::string> enabled_protocols{"TLSv1.2", "TLSv1.3"};
  std::vector<std::string> cipher_suites;
};

struct SaslLogin {
  security::sasl::Mechanism mechanism = security::sasl::Mechanism::plain;
  std::string username;
  config::Password password;
};

struct ClientSettings {
  std::vector<HostPort> bootstrap_servers;
  config::SecurityProtocol protocol = config::SecurityProtocol::plaintext;
  TlsMaterial tls;
  std::optional<SaslLogin> sasl;  // required for SASL_PLAINTEXT / SASL_SSL
  std::string client_id = "bulwark-admin";
  std::chrono::milliseconds timeout{30000};  // per connect, per read/write wait
  std::vector<std::string> notes;            // keys ignored while reading a properties file
};

// Applies a Kafka client properties file (kafka-acls.sh --command-config) on top of `base`. Known keys:
// bootstrap.servers, security.protocol, client.id, request.timeout.ms, ssl.truststore.{location,
// password,type,certificates}, ssl.keystore.{location,password,type,key,certificate.chain},
// ssl.key.password, ssl.endpoint.identification.algorithm, ssl.enabled.protocols, ssl.protocol,
// ssl.cipher.suites, sasl.mechanism, sasl.jaas.config. Values Bulwark cannot honour on a
// security-relevant key (GSSAPI, BCFKS, callback handler classes, ...) are errors; other unknown keys
// are ignored with a note. Every problem is reported, one per line, as "<file>:<line>: <key>: <what>".
Result<ClientSettings> apply_client_properties(const config::Properties& properties, ClientSettings base = {});
Result<ClientSettings> load_client_properties(const std::filesystem::path& path, ClientSettings base = {});

// The connection flags `bulwark acl` and `bulwark scram` share (kafka-acls.sh's --bootstrap-server and
// --command-config, plus PEM shortcuts): --ca alone means SSL (SASL_SSL when the properties ask for
// SASL) with the broker's host name checked; --cert/--key add a client certificate (mutual TLS).
// The flag's bootstrap list wins over bootstrap.servers in the file.
struct ConnectionFlags {
  std::string bootstrap_server;  // may be empty when the properties file has bootstrap.servers
  std::filesystem::path ca;
  std::filesystem::path cert;
  std::filesystem::path key;
  std::filesystem::path command_config;
};
Result<ClientSettings> settings_from_flags(const ConnectionFlags& flags);

// Checks the settings hang together (SASL login for SASL protocols, TLS material only with TLS, ...).
Status validate_settings(const ClientSettings& settings);

// Loads the keystores and truststore named by the material. Errors name the file or key.
Result<tls::TlsSettings> load_tls_material(const TlsMaterial& material);

// ---- Wire helpers (pure, exposed for tests) ------------------------------------------------------

// A complete request frame: int32 size, request header (v1 or v2 as the API version implies), body.
Bytes frame_request(std::int16_t api_key, std::int16_t api_version, std::int32_t correlation_id,
                    const std::optional<std::string>& client_id, ByteView body);

struct VersionRange {
  std::int16_t min = 0;
  std::int16_t max = 0;
};
// What the broker said in ApiVersions: api key -> range.
using BrokerVersions = std::map<std::int16_t, VersionRange>;
// The highest version both sides support: ours is [our_min, our_max] (the codec's range), the
// broker's from ApiVersions. nullopt when the broker does not list the API or the ranges do not meet.
std::optional<std::int16_t> choose_version(const BrokerVersions& broker, std::int16_t api_key, std::int16_t our_min,
                                           std::int16_t our_max);

// Kafka's name for an error code ("CLUSTER_AUTHORIZATION_FAILED"), or "error code N" when unknown.
std::string error_name(std::int16_t code);

// ---- Connection ----------------------------------------------------------------------------------

class AdminConnection {
 public:
  // Tries the bootstrap servers in order (each resolved address in turn) until one connects, shakes
  // hands (TLS), negotiates versions (ApiVersions v3, falling back to what the broker offers) and logs
  // in (SASL). The error lists why each server failed.
  static Result<std::unique_ptr<AdminConnection>> connect(const ClientSettings& settings);
  ~AdminConnection();
  AdminConnection(const AdminConnection&) = delete;
  AdminConnection& operator=(const AdminConnection&) = delete;

  // One request/response round trip in the highest version both sides support. Errors: the broker
  // does not support the API (unsupported), I/O or timeout (io), a response that does not decode
  // (corrupt).
  template <class Request, class Response>
  Result<Response> call(const Request& request) {
    auto version = negotiate(Request::api_key, Request::lowest_supported_version, Request::highest_supported_version);
    if (!version.ok()) return version.error();
    ByteWriter body;
    request.encode(body, *version);
    auto reply = exchange(Request::api_key, *version, body.buffer());
    if (!reply.ok()) return reply.error();
    ByteReader reader(*reply);
    Response response;
    if (!response.decode(reader, *version)) return undecodable(Request::api_key, *version);
    return response;
  }

  // The version call() would use, or an error naming the API the broker lacks.
  Result<std::int16_t> negotiate(std::int16_t api_key, std::int16_t our_min, std::int16_t our_max) const;
  const BrokerVersions& broker_versions() const { return versions_; }
  const HostPort& broker() const { return broker_; }
  // Who we are to the broker, for messages: "User:alice" (SASL) or "the principal of certificate
  // `CN=admin-1`" (mTLS) or "ANONYMOUS" (neither).
  const std::string& identity() const { return identity_; }

  // Sends one request whose body is already encoded and returns the response body (header removed).
  Result<Bytes> exchange(std::int16_t api_key, std::int16_t api_version, const Bytes& body);

 private:
  struct Socket;
  AdminConnection();
  Error undecodable(std::int16_t api_key, std::int16_t version) const;
  Status negotiate_versions();
  Status authenticate(const SaslLogin& login);
  Result<Bytes> sasl_step(std::int16_t version, Bytes token);

  std::unique_ptr<Socket> socket_;
  ClientSettings settings_;
  HostPort broker_;
  BrokerVersions versions_;
  std::int32_t next_correlation_id_ = 1;
  std::string identity_ = "ANONYMOUS";
};

}  // namespace bulwark::client
