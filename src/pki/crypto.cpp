#include "pki/crypto.h"

#include <arpa/inet.h>
#include <openssl/pem.h>

#include <cstring>

namespace bulwark::pki::crypto {
namespace {

Error ssl_error(std::string what) {
  auto detail = openssl_errors();
  if (!detail.empty()) what += " (" + detail + ")";
  return make_error(ErrorKind::internal, std::move(what));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, size > 0 ? static_cast<std::size_t>(size) : 0);
}

const EVP_MD* digest_for(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448: return nullptr;  // EdDSA signs the message itself
    case EVP_PKEY_EC: return EVP_PKEY_get_bits(key) > 256 ? EVP_sha384() : EVP_sha256();
    default: return EVP_sha256();
  }
}

Asn1IntegerPtr serial_from_hex(const std::string& hex) {
  BIGNUM* raw = nullptr;
  if (BN_hex2bn(&raw, hex.c_str()) == 0) return nullptr;
  BignumPtr bn(raw);
  return Asn1IntegerPtr(BN_to_ASN1_INTEGER(bn.get(), nullptr));
}

Status add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (!ext) return ssl_error("cannot build certificate extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!added) return ssl_error("cannot add certificate extension " + std::string(OBJ_nid2sn(nid)));
  return Status::success();
}

void append_general_names(GENERAL_NAMES* names, SanList& sans) {
  if (!names) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* s = name->d.dNSName;
      sans.dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                            static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int length = ASN1_STRING_length(s);
      if (length == 4) inet_ntop(AF_INET, ASN1_STRING_get0_data(s), text, sizeof text);
      else if (length == 16) inet_ntop(AF_INET6, ASN1_STRING_get0_data(s), text, sizeof text);
      else continue;
      sans.ips.emplace_back(text);
    }
  }
}

}  // namespace

Result<EvpPkeyPtr> generate_key(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case KeyType::ec_p256: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case KeyType::ec_p384: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"); break;
    case KeyType::rsa_2048: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)); break;
    case KeyType::rsa_4096: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(4096)); break;
    case KeyType::ed25519: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"); break;
  }
  if (!key) return ssl_error("cannot generate a " + key_type_name(type) + " key");
  return EvpPkeyPtr(key);
}

Result<KeyType> key_type_of(EVP_PKEY* key) {
  int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      if (bits < 2048) return make_error(ErrorKind::invalid_argument, "the RSA key has " + std::to_string(bits) +
                                                                           " bits; at least 2048 are needed");
      return bits >= 4096 ? KeyType::rsa_4096 : KeyType::rsa_2048;
    case EVP_PKEY_EC:
      if (bits == 256) return KeyType::ec_p256;
      if (bits == 384) return KeyType::ec_p384;
      return make_error(ErrorKind::invalid_argument,
                        "the EC key is on a " + std::to_string(bits) + "-bit curve; use P-256 or P-384");
    case EVP_PKEY_ED25519: return KeyType::ed25519;
    default:
      return make_error(ErrorKind::invalid_argument, "the key is neither RSA, EC (P-256/P-384) nor Ed25519");
  }
}

Result<X509Ptr> make_certificate(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return ssl_error("cannot create a certificate");
  auto serial = serial_from_hex(spec.serial_hex);
  if (!serial || !X509_set_serialNumber(cert.get(), serial.get())) return ssl_error("cannot set the serial number");
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), spec.not_before) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), spec.not_after))
    return ssl_error("cannot set the validity dates");

  if (spec.subject_name) {
    if (!X509_set_subject_name(cert.get(), spec.subject_name)) return ssl_error("cannot set the subject");
  } else {
    X509NamePtr name(X509_NAME_new());
    // Encoded least specific first, so RFC 2253 (and Kafka's principal) prints CN first.
    for (auto it = spec.subject.rbegin(); it != spec.subject.rend(); ++it) {
      if (!X509_NAME_add_entry_by_txt(name.get(), it->type.c_str(), MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(it->value.c_str()), -1, -1, 0))
        return ssl_error("cannot put " + it->type + "=" + it->value + " into the subject");
    }
    if (!X509_set_subject_name(cert.get(), name.get())) return ssl_error("cannot set the subject");
  }
  if (!X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(cert.get())))
    return ssl_error("cannot set the issuer");
  if (!X509_set_pubkey(cert.get(), subject_key)) return ssl_error("cannot set the public key");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  if (spec.is_ca) {
    std::string bc = "critical,CA:TRUE";
    if (spec.path_len >= 0) bc += ",pathlen:" + std::to_string(spec.path_len);
    BULWARK_TRY(add_extension(cert.get(), &ctx, NID_basic_constraints, bc));
    BULWARK_TRY(add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    BULWARK_TRY(add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    std::string usage = "critical,digitalSignature";
    if (EVP_PKEY_get_base_id(subject_key) == EVP_PKEY_RSA) usage += ",keyEncipherment";
    BULWARK_TRY(add_extension(cert.get(), &ctx, NID_key_usage, usage));
    std::string eku;
    if (spec.server_auth) eku = "serverAuth";
    if (spec.client_auth) eku += std::string(eku.empty() ? "" : ",") + "clientAuth";
    if (!eku.empty()) BULWARK_TRY(add_extension(cert.get(), &ctx, NID_ext_key_usage, eku));
  }
  BULWARK_TRY(add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  BULWARK_TRY(add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!spec.sans.empty()) {
    std::string san;
    for (const auto& dns : spec.sans.dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + dns;
    for (const auto& ip : spec.sans.ips) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
    BULWARK_TRY(add_extension(cert.get(), &ctx, NID_subject_alt_name, san));
  }
  if (X509_sign(cert.get(), issuer_key, digest_for(issuer_key)) <= 0) return ssl_error("cannot sign the certificate");
  return cert;
}

Result<X509CrlPtr> make_crl(X509* issuer, EVP_PKEY* issuer_key, const std::vector<RevokedEntry>& revoked,
                           std::int64_t crl_number, std::time_t this_update, std::time_t next_update) {
  X509CrlPtr crl(X509_CRL_new());
  if (!crl || !X509_CRL_set_version(crl.get(), 1) || !X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer)))
    return ssl_error("cannot create a CRL");
  std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME_free>> last(ASN1_TIME_set(nullptr, this_update));
  std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME_free>> next(ASN1_TIME_set(nullptr, next_update));
  if (!last || !next || !X509_CRL_set1_lastUpdate(crl.get(), last.get()) ||
      !X509_CRL_set1_nextUpdate(crl.get(), next.get()))
    return ssl_error("cannot set the CRL dates");
  for (const auto& entry : revoked) {
    X509_REVOKED* item = X509_REVOKED_new();
    auto serial = serial_from_hex(entry.serial_hex);
    std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME_free>> when(ASN1_TIME_set(nullptr, entry.revoked_at));
    bool ok = item && serial && when && X509_REVOKED_set_serialNumber(item, serial.get()) &&
              X509_REVOKED_set_revocationDate(item, when.get());
    if (ok && entry.reason != 0) {  // RFC 5280: leave the reason out rather than say "unspecified"
      std::unique_ptr<ASN1_ENUMERATED, OpenSslDeleter<ASN1_ENUMERATED_free>> code(ASN1_ENUMERATED_new());
      ok = code && ASN1_ENUMERATED_set(code.get(), entry.reason) &&
           X509_REVOKED_add1_ext_i2d(item, NID_crl_reason, code.get(), 0, 0);
    }
    if (!ok || !X509_CRL_add0_revoked(crl.get(), item)) {
      X509_REVOKED_free(item);
      return ssl_error("cannot add serial " + entry.serial_hex + " to the CRL");
    }
  }
  X509_CRL_sort(crl.get());
  Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!number || !ASN1_INTEGER_set_int64(number.get(), crl_number) ||
      !X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0))
    return ssl_error("cannot set the CRL number");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, nullptr, nullptr, crl.get(), 0);
  X509_EXTENSION* aki = X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always");
  if (!aki) return ssl_error("cannot build the CRL's authority key identifier");
  int added = X509_CRL_add_ext(crl.get(), aki, -1);
  X509_EXTENSION_free(aki);
  if (!added) return ssl_error("cannot add the CRL's authority key identifier");
  if (X509_CRL_sign(crl.get(), issuer_key, digest_for(issuer_key)) <= 0) return ssl_error("cannot sign the CRL");
  return crl;
}

Result<X509ReqPtr> read_csr(const std::string& contents, const std::string& source_name) {
  X509ReqPtr req;
  if (contents.find("-----BEGIN") != std::string::npos) {
    BioPtr bio(BIO_new_mem_buf(contents.data(), static_cast<int>(contents.size())));
    req.reset(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  } else {
    auto* p = reinterpret_cast<const unsigned char*>(contents.data());
    req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(contents.size())));
  }
  if (!req) {
    openssl_errors();
    return make_error(ErrorKind::corrupt, source_name + " is not a certificate signing request (PEM or DER)");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (!key) {
    openssl_errors();
    return make_error(ErrorKind::corrupt, "the CSR in " + source_name + " has no readable public key");
  }
  if (X509_REQ_verify(req.get(), key) != 1) {
    openssl_errors();
    return make_error(ErrorKind::unauthenticated,
                      "the CSR in " + source_name +
                          " has a bad signature: it was changed after it was signed, or it is corrupt; "
                          "make a new CSR");
  }
  return req;
}

SanList csr_sans(X509_REQ* req) {
  SanList sans;
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  if (!exts) return sans;
  auto* names = static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
  append_general_names(names, sans);
  GENERAL_NAMES_free(names);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return sans;
}

Result<X509Ptr> parse_certificate(const std::string& pem, const std::string& source_name) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    openssl_errors();
    return make_error(ErrorKind::corrupt, source_name + " holds no PEM certificate");
  }
  return cert;
}

bool is_encrypted_private_key_pem(const std::string& pem) {
  return pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos ||
         pem.find("Proc-Type: 4,ENCRYPTED") != std::string::npos;
}

Result<EvpPkeyPtr> parse_private_key(const std::string& pem, const std::string& source_name,
                                     const std::string& password) {
  const bool encrypted = is_encrypted_private_key_pem(pem);
  if (encrypted && password.empty())
    return make_error(ErrorKind::unauthenticated, source_name + " is encrypted and no password was given for it");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // With no callback, OpenSSL takes the last argument as the NUL-terminated passphrase.
  std::string passphrase = password;
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, passphrase.data()));
  OPENSSL_cleanse(passphrase.data(), passphrase.size());
  if (!key) {
    openssl_errors();
    if (encrypted)
      return make_error(ErrorKind::unauthenticated, "cannot decrypt " + source_name + ": wrong password");
    return make_error(ErrorKind::corrupt, source_name + " holds no readable (unencrypted PEM) private key");
  }
  return key;
}

Result<std::string> certificate_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return ssl_error("cannot write a certificate as PEM");
  return bio_text(bio.get());
}

Result<std::string> private_key_pem(EVP_PKEY* key, const std::string& password) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  int ok = password.empty()
               ? PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
               : PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), password.data(),
                                               static_cast<int>(password.size()), nullptr, nullptr);
  if (!ok) return ssl_error("cannot write a private key as PEM");
  return bio_text(bio.get());
}

Result<std::string> crl_pem(X509_CRL* crl) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_CRL(bio.get(), crl)) return ssl_error("cannot write the CRL as PEM");
  return bio_text(bio.get());
}

std::string name_rfc2253(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  return bio_text(bio.get());
}

std::string common_name(const X509_NAME* name) {
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  return out;
}

std::string serial_hex(X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex ? hex : "");
  OPENSSL_free(hex);
  return out;
}

std::time_t not_after(X509* cert) {
  std::tm tm{};
  if (!ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm)) return 0;
  return timegm(&tm);
}

SanList certificate_sans(X509* cert) {
  SanList sans;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  append_general_names(names, sans);
  GENERAL_NAMES_free(names);
  return sans;
}

std::vector<SubjectField> name_fields(const X509_NAME* name) {
  std::vector<SubjectField> fields;
  for (int i = X509_NAME_entry_count(name) - 1; i >= 0; --i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (length < 0) continue;
    fields.push_back({nid == NID_undef ? "?" : OBJ_nid2sn(nid),
                      std::string(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length))});
    OPENSSL_free(utf8);
  }
  return fields;
}

}  // namespace bulwark::pki::crypto
