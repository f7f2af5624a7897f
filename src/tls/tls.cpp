#include "tls/tls.h"

#include <arpa/inet.h>
#include <ctime>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include <fmt/format.h>

#include "tls/certificates.h"

namespace bulwark::tls {
namespace {

// TLS 1.2 defaults: forward secrecy and AEAD only.
constexpr const char* kDefaultTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kDefaultTls13Ciphers = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Error ssl_error(std::string what) {
  std::string detail = openssl_errors();
  if (!detail.empty()) what += " (" + detail + ")";
  return make_error(ErrorKind::invalid_argument, std::move(what));
}

int notes_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// A CA without a CRL in ssl.crl.location is not checked; a CRL past its nextUpdate still revokes what it
// lists rather than locking out every client of its CA.
bool is_tolerated_crl_error(int error) {
  return error == X509_V_ERR_UNABLE_TO_GET_CRL || error == X509_V_ERR_CRL_HAS_EXPIRED ||
         error == X509_V_ERR_CRL_NOT_YET_VALID;
}

// Records where verification failed so explain_handshake_failure can name the certificate and issuer.
int verify_callback(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok) return 1;
  if (is_tolerated_crl_error(X509_STORE_CTX_get_error(store))) return 1;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) return 0;
  auto* notes = static_cast<HandshakeNotes*>(SSL_get_ex_data(ssl, notes_index()));
  if (notes != nullptr && notes->verify_error == X509_V_OK) {
    notes->verify_error = X509_STORE_CTX_get_error(store);
    if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
      const auto facts = certificate_facts(cert);
      notes->failing_subject = facts.subject;
      notes->failing_issuer = facts.issuer;
      notes->failing_serial = facts.serial;
      notes->failing_not_after = facts.not_after;
    }
  }
  return 0;
}

struct ProtocolRange {
  int min = 0, max = 0;
};

Result<ProtocolRange> protocol_range(const std::vector<std::string>& names) {
  if (names.empty()) {
    return make_error(ErrorKind::invalid_argument, "ssl.enabled.protocols is empty: enable TLSv1.2 and/or TLSv1.3");
  }
  ProtocolRange range{0, 0};
  for (const auto& name : names) {
    int version = 0;
    if (name == "TLSv1.2") {
      version = TLS1_2_VERSION;
    } else if (name == "TLSv1.3") {
      version = TLS1_3_VERSION;
    } else if (name == "TLSv1" || name == "TLSv1.1" || name == "SSLv3" || name == "SSLv2Hello" || name == "TLSv1.0") {
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("{} in ssl.enabled.protocols is not supported: Bulwark accepts only TLSv1.2 and "
                                    "TLSv1.3 (older versions are broken); remove it",
                                    name));
    } else {
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("unknown protocol \"{}\" in ssl.enabled.protocols (use TLSv1.2 and/or TLSv1.3)", name));
    }
    range.min = range.min == 0 ? version : std::min(range.min, version);
    range.max = std::max(range.max, version);
  }
  return range;
}

// Full handshakes from the same clients (reconnects, many connections of one client) present the
// same chain again and again. A server context remembers, for a few minutes, the chains it verified:
// keyed by the SHA-256 of every certificate the client sent, until the earliest notAfter in the built
// chain. The trust (anchors, CRLs, flags) is fixed for a context, and every reload builds a new one,
// so a remembered result never outlives the trust it was reached under. Only successes are kept; a
// failing chain is verified (and explained) every time. The client still proves its key in each
// handshake (CertificateVerify): the cache only skips re-checking the CA signatures and the path.
class VerifiedChains {
 public:
  static constexpr std::size_t kMaxEntries = 10000;
  static constexpr std::time_t kRememberSeconds = 300;

  bool fresh(const std::string& key, std::time_t now) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return false;
    if (it->second.until <= now) {
      entries_.erase(it);
      return false;
    }
    return true;
  }
  void remember(std::string key, std::time_t until, int error) {
    std::lock_guard lock(mutex_);
    if (entries_.size() >= kMaxEntries) entries_.clear();  // a flood of distinct chains: start over
    entries_[std::move(key)] = Entry{until, error};
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }
  int error_of(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    return it == entries_.end() ? X509_V_OK : it->second.error;
  }

 private:
  struct Entry {
    std::time_t until;
    int error;  // a tolerated CRL error OpenSSL reported with the success, reported again on a hit
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

int verified_chains_index() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<VerifiedChains*>(ptr);
      });
  return index;
}

// The SHA-256 of each certificate the peer sent, leaf first; empty when one cannot be hashed.
std::string presented_chain_key(X509_STORE_CTX* store) {
  std::string key;
  auto add = [&](X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (cert == nullptr || X509_digest(cert, EVP_sha256(), md, &len) != 1) return false;
    key.append(reinterpret_cast<const char*>(md), len);
    return true;
  };
  if (!add(X509_STORE_CTX_get0_cert(store))) return {};
  if (STACK_OF(X509)* sent = X509_STORE_CTX_get0_untrusted(store)) {
    for (int i = 0; i < sk_X509_num(sent); ++i)
      if (!add(sk_X509_value(sent, i))) return {};
  }
  return key;
}

// The earliest notAfter of the chain OpenSSL built (leaf to anchor), capped at kRememberSeconds from now.
std::time_t remember_until(X509_STORE_CTX* store, std::time_t now) {
  std::time_t until = now + VerifiedChains::kRememberSeconds;
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(store);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm) != 1) return now;
    until = std::min(until, timegm(&tm));
  }
  return until;
}

int verify_with_cache(X509_STORE_CTX* store, void* arg) {
  auto* cache = static_cast<VerifiedChains*>(arg);
  const std::time_t now = std::time(nullptr);
  std::string key = presented_chain_key(store);
  if (!key.empty() && cache->fresh(key, now)) {
    X509_STORE_CTX_set_error(store, cache->error_of(key));
    return 1;
  }
  const int ok = X509_verify_cert(store);
  if (ok == 1 && !key.empty()) cache->remember(std::move(key), remember_until(store, now), X509_STORE_CTX_get_error(store));
  return ok;
}

Status cache_verified_chains(SSL_CTX* ctx) {
  auto* cache = new VerifiedChains;
  if (SSL_CTX_set_ex_data(ctx, verified_chains_index(), cache) != 1) {
    delete cache;
    return ssl_error("cannot attach the verified-chain cache");
  }
  SSL_CTX_set_cert_verify_callback(ctx, verify_with_cache, cache);
  return Status::success();
}

// Protocols, ciphers, options shared by server and client contexts.
Status configure_common(SSL_CTX* ctx, const TlsSettings& settings) {
  auto range = protocol_range(settings.enabled_protocols);
  if (!range.ok()) return range.error();
  if (!SSL_CTX_set_min_proto_version(ctx, range->min) || !SSL_CTX_set_max_proto_version(ctx, range->max)) {
    return ssl_error("cannot set the TLS protocol versions");
  }
  std::string tls12, tls13;
  if (settings.cipher_suites.empty()) {
    tls12 = kDefaultTls12Ciphers;
    tls13 = kDefaultTls13Ciphers;
  } else {
    for (const auto& name : settings.cipher_suites) {
      auto mapped = map_cipher_suite(name);
      if (!mapped.ok()) return mapped.error();
      std::string& list = mapped->tls13 ? tls13 : tls12;
      if (!list.empty()) list += ':';
      list += mapped->openssl_name;
    }
    if (tls13.empty() && range->max == TLS1_3_VERSION && range->min == TLS1_3_VERSION) {
      return make_error(ErrorKind::invalid_argument,
                        "ssl.cipher.suites has no TLS 1.3 suite but only TLSv1.3 is enabled: add e.g. TLS_AES_128_GCM_SHA256");
    }
    if (tls12.empty() && range->min == TLS1_2_VERSION && range->max == TLS1_2_VERSION) {
      return make_error(ErrorKind::invalid_argument,
                        "ssl.cipher.suites has no TLS 1.2 suite but only TLSv1.2 is enabled: add e.g. "
                        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
    }
  }
  // An empty TLS 1.2 list is refused by OpenSSL; a suite list made only of TLS 1.3 names disables 1.2.
  if (!tls12.empty() && !SSL_CTX_set_cipher_list(ctx, tls12.c_str())) {
    return ssl_error("none of the TLS 1.2 cipher suites in ssl.cipher.suites is available: " + tls12);
  }
  if (tls12.empty() && range->min == TLS1_2_VERSION) {
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) return ssl_error("cannot set the TLS protocol versions");
  }
  if (!SSL_CTX_set_ciphersuites(ctx, tls13.c_str())) {
    return ssl_error("none of the TLS 1.3 cipher suites in ssl.cipher.suites is available: " + tls13);
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Release read/write buffers while idle: an idle connection then costs a few KiB instead of ~34 KiB.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return Status::success();
}

Status use_key(SSL_CTX* ctx, const keystore::PrivateKeyEntry& entry) {
  if (!entry.key || entry.chain.empty()) {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("keystore entry \"{}\" has no private key or no certificate", entry.alias));
  }
  if (SSL_CTX_use_certificate(ctx, entry.chain[0].get()) != 1) {
    return ssl_error(fmt::format("cannot use the certificate of keystore entry \"{}\"", entry.alias));
  }
  if (SSL_CTX_use_PrivateKey(ctx, entry.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return ssl_error(fmt::format("the private key of keystore entry \"{}\" does not match its certificate", entry.alias));
  }
  for (std::size_t i = 1; i < entry.chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, entry.chain[i].get()) != 1) {
      return ssl_error(fmt::format("cannot add the chain of keystore entry \"{}\"", entry.alias));
    }
  }
  return Status::success();
}

// Every truststore certificate (and the CA certificates of its key entries, as Java does for a
// truststore given as a keystore) is an anchor; partial chains make trusted intermediates anchors too.
Result<std::size_t> use_truststore(SSL_CTX* ctx, const TlsSettings& settings, bool send_ca_list) {
  X509StorePtr store(X509_STORE_new());
  if (!store) return ssl_error("out of memory");
  const auto anchors = trust_anchors(settings.truststore);
  for (const X509* anchor : anchors) {
    X509* cert = const_cast<X509*>(anchor);
    if (X509_STORE_add_cert(store.get(), cert) != 1) {
      unsigned long err = ERR_peek_last_error();
      if (ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) return ssl_error("cannot add a trusted certificate");
      ERR_clear_error();
    }
    if (send_ca_list && SSL_CTX_add_client_CA(ctx, cert) != 1) return ssl_error("cannot add to the client CA list");
  }
  unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
  for (const auto& crl : settings.crls) {
    if (X509_STORE_add_crl(store.get(), crl.get()) != 1) return ssl_error("cannot add a CRL");
    flags |= X509_V_FLAG_CRL_CHECK;  // the leaf's issuer's CRL; see is_tolerated_crl_error
  }
  X509_STORE_set_flags(store.get(), flags);
  SSL_CTX_set_cert_store(ctx, store.release());
  return anchors.size();
}

Result<std::shared_ptr<SSL_CTX>> build_server_ctx(const TlsSettings& settings) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return ssl_error("cannot create a TLS context");
  BULWARK_TRY(configure_common(ctx.get(), settings));
  if (settings.keystore.keys.empty()) {
    return make_error(ErrorKind::invalid_argument,
                      "the keystore has no private key entry: a TLS listener needs the broker's key and certificate");
  }
  BULWARK_TRY(use_key(ctx.get(), settings.keystore.keys.front()));
  BULWARK_TRY(check_crls_signed(settings));
  const bool verify = settings.client_auth != ClientAuth::none;
  auto anchors = use_truststore(ctx.get(), settings, verify);
  if (!anchors.ok()) return anchors.error();
  if (verify && *anchors == 0) {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("ssl.client.auth={} but the truststore has no certificates: no client could be "
                                  "verified; set ssl.truststore.location",
                                  to_string(settings.client_auth)));
  }
  int mode = SSL_VERIFY_NONE;
  if (settings.client_auth == ClientAuth::requested) mode = SSL_VERIFY_PEER;
  if (settings.client_auth == ClientAuth::required) mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx.get(), mode, verify ? verify_callback : nullptr);
  SSL_CTX_set_verify_depth(ctx.get(), 10);
  if (verify) BULWARK_TRY(cache_verified_chains(ctx.get()));
  // Resumption: a server-side cache keyed by this id; one ticket per handshake is enough for clients.
  static const unsigned char kSessionId[] = "bulwark";
  SSL_CTX_set_session_id_context(ctx.get(), kSessionId, sizeof kSessionId - 1);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(ctx.get(), 10000);
  SSL_CTX_set_timeout(ctx.get(), 3600);
  SSL_CTX_set_num_tickets(ctx.get(), 1);
  // Read whole socket buffers at once instead of one record header at a time (half the syscalls);
  // the event loop drains what OpenSSL buffered before it waits on epoll again.
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  // With read-ahead, one read() can bring in many small records (librdkafka sends two per produced
  // message); RELEASE_BUFFERS still frees this buffer when the connection goes idle.
  SSL_CTX_set_default_read_buffer_len(ctx.get(), 64 * 1024);
  return ctx;
}

constexpr std::size_t kTicketKeysSize = 80;  // OpenSSL's layout: 16 name, 32 HMAC, 32 AES

bool same_trust(const TlsSettings& a, const TlsSettings& b) {
  const auto x = trust_anchors(a.truststore), y = trust_anchors(b.truststore);
  if (a.client_auth != b.client_auth || x.size() != y.size()) return false;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (X509_cmp(x[i], y[i]) != 0) return false;
  return true;
}

bool is_ip_literal(std::string_view host) {
  std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool starts_with(const HandshakeNotes* notes, std::string_view prefix) {
  if (notes == nullptr || notes->first_bytes_len < prefix.size()) return false;
  return std::memcmp(notes->first_bytes, prefix.data(), prefix.size()) == 0;
}

std::string tls_version_name(unsigned v) {
  switch (v) {
    case 0x0300: return "SSLv3";
    case 0x0301: return "TLSv1";
    case 0x0302: return "TLSv1.1";
    case 0x0303: return "TLSv1.2";
    case 0x0304: return "TLSv1.3";
    default: return fmt::format("an unknown version 0x{:04x}", v);
  }
}

bool is_untrusted_issuer(long err) {
  return err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
         err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN || err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
         err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

bool is_alert_about_our_certificate(int reason) {
  return reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA || reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
         reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN || reason == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE ||
         reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED || reason == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED ||
         reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR;
}

std::int64_t clock_or(std::int64_t now) { return now != 0 ? now : static_cast<std::int64_t>(std::time(nullptr)); }

// We verified the peer's certificate and it failed: say which class of failure, with its fix.
std::string explain_rejected_peer(const HandshakeFailure& f, long verify) {
  const HandshakeNotes* notes = f.notes;
  const char* peer = f.server_side ? "client" : "server";
  const std::string subject = notes != nullptr && !notes->failing_subject.empty() ? notes->failing_subject : "?";
  const std::string issuer = notes != nullptr && !notes->failing_issuer.empty() ? notes->failing_issuer : "?";
  const std::string serial = notes != nullptr && !notes->failing_serial.empty() ? notes->failing_serial : "?";
  if (is_untrusted_issuer(verify)) {
    return fmt::format("the {}'s certificate ({}) was issued by {}, which is not in the truststore (add that CA to "
                       "the truststore, or give the {} a certificate from a CA it holds)",
                       peer, subject, issuer, peer);
  }
  if (verify == X509_V_ERR_CERT_HAS_EXPIRED) {
    const std::string when = notes != nullptr && notes->failing_not_after != 0 ? " on " + format_utc(notes->failing_not_after) : "";
    return fmt::format("the {}'s certificate ({}, serial {}) expired{}: the {} needs a renewed certificate", peer, subject,
                       serial, when, peer);
  }
  if (verify == X509_V_ERR_CERT_NOT_YET_VALID) {
    return fmt::format("the {}'s certificate ({}) is not valid yet (check the clocks)", peer, subject);
  }
  if (verify == X509_V_ERR_CERT_REVOKED) {
    return fmt::format("the {}'s certificate ({}, serial {}) is revoked: the CRL of {} lists it, so the {} needs a new "
                       "certificate",
                       peer, subject, serial, issuer, peer);
  }
  if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return fmt::format("the {}'s certificate ({}) does not name the host that was dialled in its SAN", peer, subject);
  }
  return fmt::format("the {}'s certificate ({}) was rejected: {}", peer, subject, X509_verify_cert_error_string(verify));
}

// The peer refused the certificate we presented: its alert, held against what we know of that certificate.
std::string explain_refused_by_peer(const HandshakeFailure& f, int reason) {
  const char* peer = f.server_side ? "client" : "server";
  const auto own = certificate_facts(f.own_certificate);
  const std::string ours = f.own_certificate != nullptr ? fmt::format("our certificate ({}, serial {})", own.subject, own.serial)
                                                        : std::string("our certificate");
  const std::int64_t now = clock_or(f.now);
  if (f.own_certificate != nullptr && own.not_after <= now) {
    return fmt::format("the {} refused {}, which expired on {}: renew it (bulwark pki renew)",
                       peer, ours, format_utc(own.not_after));
  }
  if (f.own_certificate != nullptr && own.not_before > now) {
    return fmt::format("the {} refused {}, which is not valid until {}: check this machine's clock", peer, ours,
                       format_utc(own.not_before));
  }
  if (reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED) {
    return fmt::format("the {} says {} has expired, but it is valid until {}: check the {}'s clock", peer, ours,
                       format_utc(own.not_after), peer);
  }
  if (reason == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED) {
    return fmt::format("the {} says {} is revoked: issue a new certificate (bulwark pki renew)", peer, ours);
  }
  if (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA) {
    return fmt::format("the {} does not trust {}, the CA that issued {}: add that CA to the {}'s truststore", peer,
                       own.issuer.empty() ? "the CA" : own.issuer, ours, peer);
  }
  std::string sans;
  for (const auto& san : own.sans) sans += (sans.empty() ? "" : ", ") + san;
  const char* alert = ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, reason));  // null before OpenSSL loads its strings
  return fmt::format("the {} refused {} ({}): most often the host it dialled is not among our SANs ({}), or it does not "
                     "trust our CA ({})",
                     peer, ours, alert != nullptr ? alert : "an alert about our certificate",
                     sans.empty() ? "none" : sans, own.issuer.empty() ? "?" : own.issuer);
}

}  // namespace

Result<ClientAuth> parse_client_auth(std::string_view value) {
  std::string v = lower(value);
  if (v == "none" || v.empty()) return ClientAuth::none;
  if (v == "requested") return ClientAuth::requested;
  if (v == "required") return ClientAuth::required;
  return make_error(ErrorKind::invalid_argument,
                    fmt::format("ssl.client.auth=\"{}\" is not valid: use none, requested or required", value));
}

std::string_view to_string(ClientAuth auth) {
  switch (auth) {
    case ClientAuth::none: return "none";
    case ClientAuth::requested: return "requested";
    case ClientAuth::required: return "required";
  }
  return "none";
}

TlsSettings share_settings(const TlsSettings& settings) {
  TlsSettings copy;
  auto share_store = [](const keystore::KeyStore& from, keystore::KeyStore& to) {
    for (const auto& entry : from.keys) {
      keystore::PrivateKeyEntry shared{entry.alias, entry.key ? share(entry.key.get()) : EvpPkeyPtr(), {}};
      for (const auto& cert : entry.chain) shared.chain.push_back(share(cert.get()));
      to.keys.push_back(std::move(shared));
    }
    for (const auto& entry : from.trusted) to.trusted.push_back({entry.alias, entry.cert ? share(entry.cert.get()) : X509Ptr()});
  };
  share_store(settings.keystore, copy.keystore);
  share_store(settings.truststore, copy.truststore);
  copy.client_auth = settings.client_auth;
  copy.enabled_protocols = settings.enabled_protocols;
  copy.cipher_suites = settings.cipher_suites;
  for (const auto& crl : settings.crls) {
    X509_CRL_up_ref(crl.get());
    copy.crls.emplace_back(crl.get());
  }
  return copy;
}

Result<TlsSettings> load_tls_settings(const TlsFileSettings& files) {
  TlsSettings settings;
  if (!files.keystore_location.empty()) {
    auto store = keystore::load(files.keystore_location, files.keystore_type, files.keystore_password, files.key_password);
    if (!store.ok()) return store.error();
    settings.keystore = std::move(store.value());
  }
  if (!files.truststore_location.empty()) {
    auto store = keystore::load(files.truststore_location, files.truststore_type, files.truststore_password);
    if (!store.ok()) return store.error();
    settings.truststore = std::move(store.value());
  }
  if (!files.crl_location.empty()) {
    auto crls = load_crls(files.crl_location);
    if (!crls.ok()) return crls.error();
    settings.crls = std::move(*crls);
  }
  settings.client_auth = files.client_auth;
  settings.enabled_protocols = files.enabled_protocols;
  settings.cipher_suites = files.cipher_suites;
  return settings;
}

Result<MappedCipher> map_cipher_suite(std::string_view iana_name) {
  std::string name(iana_name);
  name.erase(std::remove_if(name.begin(), name.end(), [](unsigned char c) { return std::isspace(c); }), name.end());
  // Java still spells some suites with the SSL_ prefix; the IANA name uses TLS_.
  if (name.rfind("SSL_", 0) == 0) name = "TLS_" + name.substr(4);
  static const char* const kTls13[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                                       "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"};
  for (const char* suite : kTls13) {
    if (name == suite) return MappedCipher{name, true};
  }
  const char* openssl_name = OPENSSL_cipher_name(name.c_str());
  if (openssl_name == nullptr || std::string_view(openssl_name) == "(NONE)") {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("unknown cipher suite \"{}\" in ssl.cipher.suites (use IANA names such as "
                                  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or TLS_AES_128_GCM_SHA256)",
                                  iana_name));
  }
  return MappedCipher{openssl_name, false};
}

std::shared_ptr<SSL_CTX> ServerTlsContext::current() const {
  std::lock_guard lock(mutex_);
  return ctx_;
}

ClientAuth ServerTlsContext::client_auth() const {
  std::lock_guard lock(mutex_);
  return settings_ ? settings_->client_auth : ClientAuth::none;
}

std::shared_ptr<const TlsSettings> ServerTlsContext::settings() const {
  std::lock_guard lock(mutex_);
  return settings_;
}

Status ServerTlsContext::reload(const TlsSettings& settings) {
  auto ctx = build_server_ctx(settings);
  if (!ctx.ok()) return ctx.error();
  auto kept = std::make_shared<const TlsSettings>(share_settings(settings));
  std::lock_guard lock(mutex_);
  // A ticket vouches for a verification done under the trust in force then; new trust, new keys.
  if (!settings_ || !same_trust(*settings_, settings)) {
    ticket_keys_.assign(kTicketKeysSize, 0);
    if (RAND_bytes(ticket_keys_.data(), static_cast<int>(ticket_keys_.size())) != 1)
      return ssl_error("cannot make session ticket keys");
  }
  if (SSL_CTX_set_tlsext_ticket_keys(ctx->get(), ticket_keys_.data(), static_cast<long>(ticket_keys_.size())) != 1)
    return ssl_error("cannot set the session ticket keys");
  ctx_ = std::move(ctx.value());
  settings_ = std::move(kept);
  return Status::success();
}

bool ServerTlsContext::revoked(const X509* cert) const {
  auto in_force = settings();
  return in_force && cert != nullptr && is_revoked(in_force->crls, cert);
}

std::size_t remembered_client_chains(SSL_CTX* ctx) {
  auto* cache = static_cast<VerifiedChains*>(SSL_CTX_get_ex_data(ctx, verified_chains_index()));
  return cache == nullptr ? 0 : cache->size();
}

Result<std::shared_ptr<ServerTlsContext>> make_server_context(const TlsSettings& settings) {
  auto context = std::make_shared<ServerTlsContext>();
  BULWARK_TRY(context->reload(settings));
  return context;
}

namespace {
Result<std::shared_ptr<SSL_CTX>> build_client_ctx(const TlsSettings& settings) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return ssl_error("cannot create a TLS context");
  BULWARK_TRY(configure_common(ctx.get(), settings));
  if (!settings.keystore.keys.empty()) BULWARK_TRY(use_key(ctx.get(), settings.keystore.keys.front()));
  auto anchors = use_truststore(ctx.get(), settings, false);
  if (!anchors.ok()) return anchors.error();
  if (*anchors == 0) {
    return make_error(ErrorKind::invalid_argument,
                      "the truststore has no certificates: the server's certificate could not be verified");
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, verify_callback);
  SSL_CTX_set_verify_depth(ctx.get(), 10);
  return ctx;
}
}  // namespace

Result<std::shared_ptr<ClientTlsContext>> make_client_context(const TlsSettings& settings) {
  auto ctx = build_client_ctx(settings);
  if (!ctx.ok()) return ctx.error();
  return std::make_shared<ClientTlsContext>(std::move(*ctx));
}

std::shared_ptr<SSL_CTX> ClientTlsContext::current() const {
  std::lock_guard lock(mutex_);
  return ctx_;
}

Status ClientTlsContext::reload(const TlsSettings& settings) {
  auto ctx = build_client_ctx(settings);
  if (!ctx.ok()) return ctx.error();
  std::lock_guard lock(mutex_);
  ctx_ = std::move(*ctx);
  return Status::success();
}

Result<SslPtr> ClientTlsContext::new_ssl(std::string_view host) const {
  SslPtr ssl(SSL_new(current().get()));
  if (!ssl) return ssl_error("cannot create a TLS connection");
  std::string h(host);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (is_ip_literal(host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, h.c_str()) != 1) return ssl_error("invalid IP address " + h);
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, h.c_str(), h.size()) != 1) return ssl_error("invalid host name " + h);
    if (SSL_set_tlsext_host_name(ssl.get(), h.c_str()) != 1) return ssl_error("cannot set SNI to " + h);
  }
  return ssl;
}

std::string name_rfc2253(const X509_NAME* name) {
  if (name == nullptr) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  // Java prints non-ASCII characters as they are, so keep UTF-8 bytes instead of \XX escapes.
  const unsigned long flags = XN_FLAG_RFC2253 & ~static_cast<unsigned long>(ASN1_STRFLGS_ESC_MSB);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, flags) < 0) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string subject_rfc2253(const X509* cert) {
  return cert == nullptr ? std::string() : name_rfc2253(X509_get_subject_name(cert));
}

void attach_notes(SSL* ssl, HandshakeNotes* notes) { SSL_set_ex_data(ssl, notes_index(), notes); }

std::string_view failure_class(const HandshakeFailure& f) {
  const HandshakeNotes* notes = f.notes;
  if (f.server_side && notes != nullptr && notes->first_bytes_len > 0 && notes->first_bytes[0] != 0x16) return "plaintext";
  const int reason = f.error_code != 0 ? ERR_GET_REASON(f.error_code) : 0;
  if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_VERSION_TOO_LOW || reason == SSL_R_WRONG_SSL_VERSION ||
      reason == SSL_R_NO_PROTOCOLS_AVAILABLE || reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION)
    return "protocol_version";
  if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE || reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
    return "no_client_certificate";
  const long verify = notes != nullptr && notes->verify_error != X509_V_OK ? notes->verify_error : f.verify_result;
  if (verify != X509_V_OK && (reason == SSL_R_CERTIFICATE_VERIFY_FAILED || reason == 0 || notes != nullptr)) {
    if (is_untrusted_issuer(verify)) return "unknown_ca";
    if (verify == X509_V_ERR_CERT_HAS_EXPIRED) return "expired";
    if (verify == X509_V_ERR_CERT_NOT_YET_VALID) return "not_yet_valid";
    if (verify == X509_V_ERR_CERT_REVOKED) return "revoked";
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) return "hostname";
    return "other";
  }
  if (reason == SSL_R_NO_SHARED_CIPHER) return "no_shared_cipher";
  if (is_alert_about_our_certificate(reason)) return "refused_by_peer";
  if (f.ssl_error == SSL_ERROR_ZERO_RETURN || (f.ssl_error == SSL_ERROR_SYSCALL && f.error_code == 0)) return "closed";
  return "other";
}

std::string explain_handshake_failure(const HandshakeFailure& f) {
  const HandshakeNotes* notes = f.notes;
  const char* peer = f.server_side ? "client" : "server";
  // What the peer sent first tells plaintext and HTTP apart from TLS.
  if (f.server_side && notes != nullptr && notes->first_bytes_len > 0 && notes->first_bytes[0] != 0x16) {
    for (const char* verb : {"GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC", "CONN", "PRI ", "HTTP"}) {
      if (starts_with(notes, verb)) return "the peer sent an HTTP request to a TLS port (it speaks plain HTTP, not TLS)";
    }
    if (notes->first_bytes_len >= 6 && notes->first_bytes[0] == 0) {
      const std::uint16_t api_key = static_cast<std::uint16_t>(notes->first_bytes[4] << 8 | notes->first_bytes[5]);
      if (api_key < 100) {
        return "the peer speaks plaintext on a TLS port (its first bytes are a Kafka request: is the client set to "
               "security.protocol=PLAINTEXT instead of SSL?)";
      }
    }
    if (starts_with(notes, "SSH-")) return "the peer speaks SSH, not TLS";
    return fmt::format("the peer speaks plaintext on a TLS port (its first byte is 0x{:02x}, not a TLS handshake)",
                       notes->first_bytes[0]);
  }
  const int reason = f.error_code != 0 ? ERR_GET_REASON(f.error_code) : 0;
  if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_VERSION_TOO_LOW || reason == SSL_R_WRONG_SSL_VERSION ||
      reason == SSL_R_NO_PROTOCOLS_AVAILABLE || reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION) {
    if (f.server_side && notes != nullptr && notes->first_bytes_len >= 11 && notes->first_bytes[5] == 1) {
      const unsigned offered = static_cast<unsigned>(notes->first_bytes[9] << 8 | notes->first_bytes[10]);
      if (offered < 0x0303) {
        return fmt::format("no shared TLS version: the client offered only {} (Bulwark accepts TLSv1.2 and TLSv1.3)",
                           tls_version_name(offered));
      }
    }
    return fmt::format("no shared TLS version with the {} (Bulwark accepts TLSv1.2 and TLSv1.3; check "
                       "ssl.enabled.protocols on both sides)",
                       peer);
  }
  if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    return "the client sent no certificate but ssl.client.auth=required";
  }
  long verify = notes != nullptr && notes->verify_error != X509_V_OK ? notes->verify_error : f.verify_result;
  if (verify != X509_V_OK && (reason == SSL_R_CERTIFICATE_VERIFY_FAILED || reason == 0 || notes != nullptr)) {
    return explain_rejected_peer(f, verify);
  }
  if (reason == SSL_R_NO_SHARED_CIPHER) {
    return fmt::format("no shared cipher suite: the {} offers none of the enabled ssl.cipher.suites", peer);
  }
  if (is_alert_about_our_certificate(reason)) return explain_refused_by_peer(f, reason);
  if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED) {
    return "the server requires a client certificate (ssl.client.auth=required) and none was sent";
  }
  if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_HTTP_REQUEST || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
      reason == SSL_R_UNKNOWN_PROTOCOL) {
    const char* text = ERR_reason_error_string(f.error_code);
    return fmt::format("the {} does not speak TLS ({})", peer, text != nullptr ? text : "not a TLS record");
  }
  if (f.ssl_error == SSL_ERROR_ZERO_RETURN || (f.ssl_error == SSL_ERROR_SYSCALL && f.error_code == 0)) {
    if (f.sys_errno == ECONNRESET) return fmt::format("the {} reset the connection during the TLS handshake", peer);
    if (f.sys_errno != 0) {
      return fmt::format("the connection failed during the TLS handshake: {}", std::strerror(f.sys_errno));
    }
    return fmt::format("the {} closed the connection during the TLS handshake", peer);
  }
  if (f.error_code != 0) {
    const char* text = ERR_reason_error_string(f.error_code);
    return fmt::format("the TLS handshake failed: {}", text != nullptr ? text : "unknown OpenSSL error");
  }
  return "the TLS handshake failed for an unknown reason";
}

}  // namespace bulwark::tls
