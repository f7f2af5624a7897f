// Facts about the certificates a TLS context serves and trusts, and the rules a running listener's
// material is replaced by: Kafka's reload checks (KIP-226), validity and expiry, and CRLs.
//
// Pure functions of certificates and times; the broker decides when to call them (start-up, every
// hour, every reload) and logs what they find.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/openssl.h"
#include "base/result.h"
#include "tls/tls.h"

namespace bulwark::tls {

struct CertificateFacts {
  std::string subject;  // RFC 2253
  std::string issuer;   // RFC 2253
  std::string serial;   // upper-case hex, as `pki list` and `openssl x509 -serial` print it
  std::vector<std::string> sans;  // "DNS:kafka-1", "IP:10.0.0.1"
  std::int64_t not_before = 0;    // seconds since the epoch
  std::int64_t not_after = 0;
};
CertificateFacts certificate_facts(const X509* cert);
// "2027-12-01 17:00 UTC".
std::string format_utc(std::int64_t epoch_seconds);

// The trust anchors of a truststore: its trusted entries and the certificates of its key entries (Java
// trusts both when a keystore serves as a truststore).
std::vector<const X509*> trust_anchors(const keystore::KeyStore& truststore);

// The leaf the keystore's first key entry serves, or null.
const X509* served_certificate(const TlsSettings& settings);

// Kafka's checks before a listener's keystore or truststore is replaced while it runs.
struct ReplacementRules {
  bool allow_dn_changes = false;   // ssl.allow.dn.changes
  bool allow_san_changes = false;  // ssl.allow.san.changes
  // On the inter-broker and controller listeners the other nodes still hold the old material: the new
  // certificate must verify against the old truststore, and the old certificate against the new one.
  bool peers_must_verify = false;
};
// An error saying, in plain words, which rule the new material breaks.
Status check_replacement(const TlsSettings& in_force, const TlsSettings& next, const ReplacementRules& rules,
                         std::int64_t now);

enum class Severity { warning, error };
struct ValidityFinding {
  Severity severity = Severity::warning;
  std::string message;
};
// The served leaf not valid yet or expired is an error; it, the rest of its chain, the trusted CAs
// and the CRLs expiring within `warn_days` (or already, for all but the leaf) are warnings.
std::vector<ValidityFinding> check_validity(const TlsSettings& settings, std::int64_t now, int warn_days);

// CRLs from a file: one or more PEM CRLs, or one DER CRL.
Result<std::vector<X509CrlPtr>> load_crls(const std::filesystem::path& path);
// Each CRL must be signed by a CA of the truststore, or it could not be trusted to revoke anything.
Status check_crls_signed(const TlsSettings& settings);
// Whether a CRL issued by `cert`'s issuer lists its serial.
bool is_revoked(const std::vector<X509CrlPtr>& crls, const X509* cert);

}  // namespace bulwark::tls
