// OpenSSL work behind the PKI: keys, certificates, CSRs and CRLs. Internal to src/pki.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "base/openssl.h"
#include "base/result.h"
#include "pki/parse.h"

namespace bulwark::pki::crypto {

Result<EvpPkeyPtr> generate_key(KeyType type);
// The type of an existing key, or an error for key types the PKI does not issue for.
Result<KeyType> key_type_of(EVP_PKEY* key);

struct CertSpec {
  std::vector<SubjectField> subject;   // most specific first; used when subject_name is null
  X509_NAME* subject_name = nullptr;   // taken as is when set (CSR and renewal keep their subject)
  std::string serial_hex;
  std::time_t not_before = 0;
  std::time_t not_after = 0;
  bool is_ca = false;
  int path_len = -1;                   // for CAs
  bool server_auth = false;            // EKU serverAuth
  bool client_auth = false;            // EKU clientAuth
  SanList sans;
};

// Signs `spec` for `subject_key` with `issuer_key`; issuer == nullptr makes a self-signed certificate.
Result<X509Ptr> make_certificate(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key);

struct RevokedEntry {
  std::string serial_hex;
  std::time_t revoked_at = 0;
  int reason = 0;
};
Result<X509CrlPtr> make_crl(X509* issuer, EVP_PKEY* issuer_key, const std::vector<RevokedEntry>& revoked,
                           std::int64_t crl_number, std::time_t this_update, std::time_t next_update);

// A CSR in PEM (either header) or DER whose signature has been checked.
Result<X509ReqPtr> read_csr(const std::string& contents, const std::string& source_name);
// DNS and IP SANs from a CSR's extension request.
SanList csr_sans(X509_REQ* req);

// Reads PEM text.
Result<X509Ptr> parse_certificate(const std::string& pem, const std::string& source_name);
// An encrypted PEM key needs `password`; an encrypted key without one is ErrorKind::unauthenticated.
Result<EvpPkeyPtr> parse_private_key(const std::string& pem, const std::string& source_name,
                                     const std::string& password = {});
bool is_encrypted_private_key_pem(const std::string& pem);

// PEM text; a key is PKCS#8, AES-256-CBC encrypted when password is not empty.
Result<std::string> certificate_pem(X509* cert);
Result<std::string> private_key_pem(EVP_PKEY* key, const std::string& password = {});
Result<std::string> crl_pem(X509_CRL* crl);

// RFC 2253 text of a name ("CN=kafka-1,OU=DevOps,O=SLS,C=IR"), as Kafka's default principal shows it.
std::string name_rfc2253(const X509_NAME* name);
std::string common_name(const X509_NAME* name);
std::string serial_hex(X509* cert);
std::time_t not_after(X509* cert);
SanList certificate_sans(X509* cert);
// The subject fields of a name, most specific first.
std::vector<SubjectField> name_fields(const X509_NAME* name);

}  // namespace bulwark::pki::crypto
