// `bulwark pki verify`: checks a certificate the way a TLS peer will, and says what is wrong in plain
// words. The checks are pure functions of their inputs (certificates, key, anchors, host names, a
// time), so `bulwark probe` can run the same checks on what a broker actually served.
//
// Checks, each reported as findings with a status:
//   chain     builds and verifies the chain against the trust anchors (X509_verify_cert)
//   validity  not yet valid, expired, or expiring within `expiry_warning_days`
//   host      each requested host against the SANs (RFC 6125 wildcards; IPs only against IP SANs)
//   usage     extended key usage for the purpose, keyUsage, CA:TRUE on a leaf
//   key       the private key belongs to the certificate (when a key is given)
//   strength  RSA under 2048 bits, unusual curves, MD5/SHA-1 signatures
//
// Nothing here reads passwords into messages; loaders name the file and the problem only.
#pragma once

#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/openssl.h"
#include "base/result.h"

namespace bulwark::pki {

enum class Severity { ok, warning, error };
// "OK", "WARNING", "ERROR".
std::string_view severity_name(Severity severity);

struct Finding {
  Severity severity = Severity::ok;
  std::string check;    // "chain", "validity", "host", "usage", "key", "strength", "trust", ...
  std::string message;  // one line, plain words
};

// What the certificate is meant for: a TLS server (a broker listener), a TLS client, or whatever it
// allows (then the report says what it can be used for).
enum class Purpose { any, server, client };
Result<Purpose> parse_purpose(std::string_view text);

struct VerifyInput {
  // The certificate to check first, then whatever certificates came with it (intermediates, maybe the
  // root) in any order. Must not be empty.
  std::vector<X509Ptr> chain;
  EvpPkeyPtr key;                      // optional: checked against the leaf
  std::vector<X509Ptr> anchors;        // trusted roots (or any trusted CA)
  std::vector<X509Ptr> untrusted;      // extra intermediates that may help build the chain
  // CAs known only to explain a failure (an intermediate missing from the file versus a foreign root),
  // never used to build the chain: e.g. the PKI directory's CAs when --ca names another bundle.
  std::vector<X509Ptr> known_cas;
  std::string anchors_source;          // where the anchors came from, for messages ("ca.pem")
  std::vector<std::string> hosts;      // DNS names or IP addresses clients will connect to
  Purpose purpose = Purpose::any;
  std::optional<std::time_t> at;       // check time; now when unset
  int expiry_warning_days = 30;
};

// Runs every check. Never fails: problems with the input become ERROR findings.
std::vector<Finding> verify(const VerifyInput& input);

// The same for a CA certificate handed in on its own (e.g. an intermediate): chain, validity, that it is
// a CA allowed to sign, key match, strength; no host or TLS usage checks.
std::vector<Finding> verify_ca(const VerifyInput& input);
// True when every certificate is a CA (a CA bundle rather than a leaf with its chain).
bool only_ca_certificates(const std::vector<X509Ptr>& certs);

// For a CA certificate found in a truststore: is it a CA, is it within its validity window, is its
// key strong enough. `label` names it in messages (e.g. "trusted entry 'caroot'").
std::vector<Finding> verify_trusted_certificate(X509* cert, const std::string& label,
                                                std::optional<std::time_t> at = std::nullopt,
                                                int expiry_warning_days = 30);

bool has_error(const std::vector<Finding>& findings);

// ---- Loading what users hand to `pki verify` -------------------------------------------------------

// One certificate to check, with the certificates and key that came with it.
struct CertificateSet {
  std::string label;            // "" for a PEM/DER file; "entry 'alias'" for a keystore entry
  std::vector<X509Ptr> chain;   // leaf first, then the others as found
  EvpPkeyPtr key;               // may be null
};

struct TrustedCert {
  std::string alias;
  X509Ptr cert;
};

struct LoadedCertificates {
  std::string format;                 // "PEM", "DER", "JKS", "PKCS12"
  std::vector<CertificateSet> sets;   // PEM/DER: one; keystore: one per private key entry
  std::vector<TrustedCert> trusted;   // keystore trusted certificate entries
};

// Reads a PEM file (one certificate, a chain, or a key with its chain; encrypted keys need the
// password), a DER certificate, or a JKS/PKCS12 keystore, detected from the content. Errors say in
// plain words what is wrong (missing file, wrong password, no certificate inside).
Result<LoadedCertificates> load_certificates(const std::filesystem::path& path, std::string_view password);
// The same from bytes already read; `source` names them in messages.
Result<LoadedCertificates> parse_certificates(std::string_view data, const std::string& source,
                                              std::string_view password);

// Trust anchors from a PEM bundle, a DER certificate or a JKS/PKCS12 truststore (its trusted entries;
// a keystore without any is refused as "not a truststore").
Result<std::vector<X509Ptr>> load_trust_anchors(const std::filesystem::path& path, std::string_view password);

// A private key in PEM (plain, PKCS#8 or encrypted with `password`) or DER.
Result<EvpPkeyPtr> load_private_key(const std::filesystem::path& path, std::string_view password);

// Puts the leaf first: the certificate matching `key` when there is one, else the first certificate
// that signed none of the others. Keeps the rest in their order.
void order_leaf_first(std::vector<X509Ptr>& chain, EVP_PKEY* key);

// "2026-11-23", "2026-11-23T20:00:00Z" (or with a space) and "@<unix seconds>", all UTC.
Result<std::time_t> parse_time(std::string_view text);

// RFC 2253 text of a certificate's subject or issuer ("CN=kafka-1,O=Example").
std::string subject_of(X509* cert);
std::string issuer_of(X509* cert);

}  // namespace bulwark::pki
