// TLS contexts built from a plain settings struct (keystores already in memory), hot-swappable server
// contexts, RFC 2253 subjects as Kafka prints them, and plain-words explanations of failed handshakes.
//
// Thread safety: a ServerTlsContext may be shared by every event loop; current() and reload() may be
// called from any thread. An SSL_CTX taken by current() stays valid while a caller holds it (SSL
// objects keep their own reference), so a reload never touches established connections.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/openssl.h"
#include "base/result.h"
#include "security/keystore.h"

namespace bulwark::tls {

// Kafka's ssl.client.auth.
enum class ClientAuth { none, requested, required };
Result<ClientAuth> parse_client_auth(std::string_view value);
std::string_view to_string(ClientAuth auth);

struct TlsSettings {
  keystore::KeyStore keystore;    // our key + chain (required for servers, optional for clients)
  keystore::KeyStore truststore;  // trust anchors for the peer's certificate
  ClientAuth client_auth = ClientAuth::none;
  std::vector<std::string> enabled_protocols{"TLSv1.2", "TLSv1.3"};
  // Kafka's ssl.cipher.suites in IANA/Java names (TLS_AES_128_GCM_SHA256,
  // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); empty = secure defaults.
  std::vector<std::string> cipher_suites;
  // ssl.crl.location: a peer certificate that a CRL of its issuer lists is refused. A peer whose issuer
  // has no CRL here is not checked (revocation is opt-in per CA, as the CRL file says which CAs).
  std::vector<X509CrlPtr> crls;
};

// A copy that shares the keys, certificates and CRLs (OpenSSL reference counts).
TlsSettings share_settings(const TlsSettings& settings);

// Where the keystores live, as Kafka's ssl.* keys name them. Passwords are never logged.
struct TlsFileSettings {
  std::filesystem::path keystore_location;        // empty = no keystore (clients only)
  std::optional<keystore::Format> keystore_type;  // nullopt = detect
  std::string keystore_password;
  std::string key_password;
  std::filesystem::path truststore_location;  // empty = no truststore
  std::optional<keystore::Format> truststore_type;
  std::string truststore_password;
  ClientAuth client_auth = ClientAuth::none;
  std::vector<std::string> enabled_protocols{"TLSv1.2", "TLSv1.3"};
  std::vector<std::string> cipher_suites;
  std::filesystem::path crl_location;  // empty = no CRL
};
Result<TlsSettings> load_tls_settings(const TlsFileSettings& files);

// Maps one IANA/Java cipher suite name to OpenSSL's name; tls13 tells which list it belongs to.
struct MappedCipher {
  std::string openssl_name;
  bool tls13 = false;
};
Result<MappedCipher> map_cipher_suite(std::string_view iana_name);

class ServerTlsContext {
 public:
  // The context for new connections (never null once made by make_server_context).
  std::shared_ptr<SSL_CTX> current() const;
  ClientAuth client_auth() const;
  // What current() was built from (the reload checks compare against it).
  std::shared_ptr<const TlsSettings> settings() const;
  // Builds a new SSL_CTX from settings and swaps it in for new connections; on error the old one stays.
  // Session tickets issued before stay good when the trust (truststore, client auth) is unchanged, so
  // a renewed certificate or a new CRL costs the clients no full handshakes; see revoked().
  Status reload(const TlsSettings& settings);
  // Whether a CRL in force lists `cert`. A resumed session skips certificate verification, so the
  // server asks this after every resumed handshake.
  bool revoked(const X509* cert) const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<SSL_CTX> ctx_;
  std::shared_ptr<const TlsSettings> settings_;
  std::vector<unsigned char> ticket_keys_;  // name, HMAC and AES keys of the session tickets
};

Result<std::shared_ptr<ServerTlsContext>> make_server_context(const TlsSettings& settings);
// Client chains a server context verified and remembers (a full handshake presenting one of them
// again skips re-verifying it; see VerifiedChains in tls.cpp).
std::size_t remembered_client_chains(SSL_CTX* ctx);

class ClientTlsContext {
 public:
  explicit ClientTlsContext(std::shared_ptr<SSL_CTX> ctx) : ctx_(std::move(ctx)) {}
  // A new client SSL for `host` (a DNS name or an IP literal): sets SNI for names and checks the
  // server certificate's SAN against the host (IP SAN for IP literals).
  Result<SslPtr> new_ssl(std::string_view host) const;
  // Swaps in new material for later connections (the node's renewed certificate); on error the old stays.
  Status reload(const TlsSettings& settings);
  std::shared_ptr<SSL_CTX> current() const;  // the context new_ssl uses now

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<SSL_CTX> ctx_;
};

// The server is verified against settings.truststore; a client certificate is sent when
// settings.keystore has a key.
Result<std::shared_ptr<ClientTlsContext>> make_client_context(const TlsSettings& settings);

// The subject DN as Java's X500Principal.getName() prints it (RFC 2253: most specific RDN first, no
// spaces after commas), e.g. "CN=admin-1,OU=DevOps,O=SLS,L=Tehran,ST=Tehran,C=IR".
std::string subject_rfc2253(const X509* cert);
std::string name_rfc2253(const X509_NAME* name);

// Notes a connection keeps during its handshake so a failure can be explained afterwards. Attach with
// attach_notes() before the handshake starts; the verify callback fills them in.
struct HandshakeNotes {
  std::uint8_t first_bytes[11] = {};  // what the peer sent first (peeked before the handshake)
  std::uint8_t first_bytes_len = 0;
  int verify_error = 0;               // X509_V_OK when the peer's chain verified or none was checked
  std::string failing_subject;        // the certificate verification stopped at
  std::string failing_issuer;
  std::string failing_serial;
  std::int64_t failing_not_after = 0;  // seconds since the epoch
};
void attach_notes(SSL* ssl, HandshakeNotes* notes);

struct HandshakeFailure {
  bool server_side = true;
  int ssl_error = 0;              // SSL_get_error()
  unsigned long error_code = 0;   // first code of OpenSSL's error queue (0 if none)
  int sys_errno = 0;
  long verify_result = X509_V_OK; // SSL_get_verify_result()
  ClientAuth client_auth = ClientAuth::none;
  const HandshakeNotes* notes = nullptr;
  const X509* own_certificate = nullptr;  // what we presented (explains the peer's alerts about it)
  std::int64_t now = 0;                   // seconds since the epoch; 0 = the clock
};

// One sentence for a log line or a user: why the handshake failed, in plain words. Never secrets.
std::string explain_handshake_failure(const HandshakeFailure& failure);
// The same failure as a short class for metrics: plaintext, protocol_version, no_client_certificate,
// unknown_ca, expired, not_yet_valid, revoked, hostname, no_shared_cipher, refused_by_peer, closed, other.
std::string_view failure_class(const HandshakeFailure& failure);

}  // namespace bulwark::tls
