// Certificates the TLS benchmarks make in memory: a CA (no issuer) or a leaf it signs.
#pragma once

#include <openssl/x509v3.h>

#include "base/openssl.h"

namespace bulwark::bench {

// A self-signed CA when issuer is null, else a leaf signed by it with `san` (e.g. "IP:127.0.0.1").
// A self-signed CA when `issuer` is null; `ca` makes an issued certificate an intermediate CA.
inline X509Ptr make_cert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, long serial, const char* san,
                         bool ca = false) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600L * 24);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(cert.get()));
  X509_set_pubkey(cert.get(), key);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, issuer && !ca ? "critical,CA:FALSE" : "critical,CA:TRUE");
  if (san) add(NID_subject_alt_name, san);
  X509_sign(cert.get(), issuer ? issuer_key : key, EVP_sha256());
  return cert;
}

}  // namespace bulwark::bench

