// PKCS12 as keytool 17 writes it (PBES2 + HMAC-SHA256) or in the legacy 3DES/RC2 + SHA-1 form, built
// bag by bag so trusted certificates carry Oracle's trusted-key-usage attribute that Java requires.
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

#include "security/keystore.h"
#include "security/keystore_internal.h"

namespace bulwark::keystore {
namespace {

using namespace detail;

// Java's trustedKeyUsage bag attribute; OpenSSL 3.0 has no name for it.
constexpr const char* kOracleTrustedKeyUsageOid = "2.16.840.1.113894.746875.1.1";
constexpr const char* kAnyExtendedKeyUsageOid = "2.5.29.37.0";
constexpr int kModernIterations = 10000;    // keytool 17 for keys, certificates and the MAC
constexpr int kLegacyPbeIterations = 50000;  // Java 8's values for the old form
constexpr int kLegacyMacIterations = 100000;
constexpr int kMaxBagNesting = 4;

using SafeBagPtr = std::unique_ptr<PKCS12_SAFEBAG, OpenSslDeleter<PKCS12_SAFEBAG_free>>;
using P8InfoPtr = std::unique_ptr<PKCS8_PRIV_KEY_INFO, OpenSslDeleter<PKCS8_PRIV_KEY_INFO_free>>;
using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT_free>>;

struct SafeBagsDeleter {
  void operator()(STACK_OF(PKCS12_SAFEBAG) * bags) const { sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free); }
};
using SafeBagsPtr = std::unique_ptr<STACK_OF(PKCS12_SAFEBAG), SafeBagsDeleter>;
struct Pkcs7StackDeleter {
  void operator()(STACK_OF(PKCS7) * safes) const { sk_PKCS7_pop_free(safes, PKCS7_free); }
};
using Pkcs7StackPtr = std::unique_ptr<STACK_OF(PKCS7), Pkcs7StackDeleter>;

// A library context of our own with the default and legacy providers, so RC2-40 (legacy PKCS12
// certificates) works without changing the process-wide default context other code relies on.
struct CryptoContext {
  OSSL_LIB_CTX* ctx = nullptr;
  bool has_rc2 = false;
};

const CryptoContext& crypto_context() {
  static const CryptoContext context = [] {
    CryptoContext c;
    c.ctx = OSSL_LIB_CTX_new();
    if (!c.ctx || !OSSL_PROVIDER_load(c.ctx, "default")) {
      OSSL_LIB_CTX_free(c.ctx);
      c.ctx = nullptr;  // fall back to the default context (no RC2 unless configured there)
    } else if (OSSL_PROVIDER_load(c.ctx, "legacy")) {
      EVP_CIPHER* rc2 = EVP_CIPHER_fetch(c.ctx, "RC2-40-CBC", nullptr);
      c.has_rc2 = rc2 != nullptr;
      EVP_CIPHER_free(rc2);
    }
    ERR_clear_error();
    return c;
  }();
  return context;
}

Error encode_failure(const std::string& what) {
  return make_error(ErrorKind::internal, with_openssl_detail("cannot build the PKCS12 " + what));
}

Status add_attributes(PKCS12_SAFEBAG* bag, const std::string& friendly_name, const Bytes* local_key_id) {
  if (!friendly_name.empty() &&
      PKCS12_add_friendlyname_utf8(bag, friendly_name.c_str(), static_cast<int>(friendly_name.size())) != 1) {
    return encode_failure("friendlyName attribute");
  }
  if (local_key_id && PKCS12_add_localkeyid(bag, const_cast<unsigned char*>(local_key_id->data()),
                                            static_cast<int>(local_key_id->size())) != 1) {
    return encode_failure("localKeyId attribute");
  }
  return Status::success();
}

Status add_trusted_usage(PKCS12_SAFEBAG* bag) {
  Asn1ObjectPtr any_usage(OBJ_txt2obj(kAnyExtendedKeyUsageOid, 1));
  if (!any_usage || PKCS12_add1_attr_by_txt(bag, kOracleTrustedKeyUsageOid, V_ASN1_OBJECT,
                                            reinterpret_cast<const unsigned char*>(any_usage.get()), -1) != 1) {
    return encode_failure("trusted key usage attribute");
  }
  return Status::success();
}

Result<Bytes> local_key_id_for(X509* leaf, std::size_t index) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (X509_digest(leaf, EVP_sha1(), digest, &len) != 1) return encode_failure("localKeyId");
  Bytes id(digest, digest + len);
  id.push_back(static_cast<std::uint8_t>(index));  // distinct even if two entries share a certificate
  return id;
}

Result<SafeBagPtr> cert_bag(X509* cert) {
  SafeBagPtr bag(PKCS12_SAFEBAG_create_cert(cert));
  if (!bag) return encode_failure("certificate bag");
  return bag;
}

bool push_bag(STACK_OF(PKCS12_SAFEBAG) * bags, SafeBagPtr bag) {
  if (!sk_PKCS12_SAFEBAG_push(bags, bag.get())) return false;
  bag.release();
  return true;
}

// --- reading ---

long pbe_iterations(const X509_ALGOR* algorithm) {
  const ASN1_OBJECT* oid = nullptr;
  int param_type = 0;
  const void* param = nullptr;
  X509_ALGOR_get0(&oid, &param_type, &param, algorithm);
  if (param_type != V_ASN1_SEQUENCE || !param) return -1;
  const ASN1_TYPE* type = algorithm->parameter;
  long iterations = -1;
  if (OBJ_obj2nid(oid) == NID_pbes2) {
    auto* pbe2 = static_cast<PBE2PARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), type));
    if (pbe2 && pbe2->keyfunc && OBJ_obj2nid(pbe2->keyfunc->algorithm) == NID_id_pbkdf2 && pbe2->keyfunc->parameter) {
      auto* kdf = static_cast<PBKDF2PARAM*>(
          ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter));
      if (kdf) iterations = ASN1_INTEGER_get(kdf->iter);
      PBKDF2PARAM_free(kdf);
    }
    PBE2PARAM_free(pbe2);
  } else {
    auto* pbe = static_cast<PBEPARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), type));
    if (pbe) iterations = ASN1_INTEGER_get(pbe->iter);
    PBEPARAM_free(pbe);
  }
  ERR_clear_error();
  return iterations;
}

Status check_iterations(const X509_ALGOR* algorithm, const std::string& what) {
  const long iterations = pbe_iterations(algorithm);
  if (iterations <= 0 || iterations > kMaxIterations) {
    return corrupt(what + " has an unusable PBE iteration count or unknown parameters");
  }
  return Status::success();
}

struct CertBag {
  X509Ptr cert;
  std::string friendly_name;
  Bytes local_key_id;
  bool trusted = false;
};
struct KeyBag {
  EvpPkeyPtr key;
  std::string friendly_name;
  Bytes local_key_id;
};
struct Contents {
  std::vector<CertBag> certs;
  std::vector<KeyBag> keys;
};

std::string friendly_name_of(PKCS12_SAFEBAG* bag) {
  char* name = PKCS12_get_friendlyname(bag);
  std::string out = name ? name : "";
  OPENSSL_free(name);
  ERR_clear_error();
  return out;
}

Bytes local_key_id_of(const PKCS12_SAFEBAG* bag) {
  const ASN1_TYPE* id = PKCS12_get_attr_gen(PKCS12_SAFEBAG_get0_attrs(bag), NID_localKeyID);
  if (!id || id->type != V_ASN1_OCTET_STRING || !id->value.octet_string) return {};
  const auto* octets = id->value.octet_string;
  return Bytes(ASN1_STRING_get0_data(octets), ASN1_STRING_get0_data(octets) + ASN1_STRING_length(octets));
}

bool has_trusted_usage(const PKCS12_SAFEBAG* bag) {
  const STACK_OF(X509_ATTRIBUTE)* attrs = PKCS12_SAFEBAG_get0_attrs(bag);
  Asn1ObjectPtr trusted(OBJ_txt2obj(kOracleTrustedKeyUsageOid, 1));
  if (!attrs || !trusted) return false;
  for (int i = 0; i < sk_X509_ATTRIBUTE_num(attrs); ++i) {
    if (OBJ_cmp(X509_ATTRIBUTE_get0_object(sk_X509_ATTRIBUTE_value(attrs, i)), trusted.get()) == 0) return true;
  }
  return false;
}

Status read_bags(const STACK_OF(PKCS12_SAFEBAG) * bags, const std::string& password, int depth, Contents& out) {
  if (depth > kMaxBagNesting) return corrupt("safe contents are nested too deeply");
  for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); ++i) {
    PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags, i);
    switch (PKCS12_SAFEBAG_get_nid(bag)) {
      case NID_keyBag: {
        const PKCS8_PRIV_KEY_INFO* p8 = PKCS12_SAFEBAG_get0_p8inf(bag);
        EvpPkeyPtr key(p8 ? EVP_PKCS82PKEY(p8) : nullptr);
        if (!key) return corrupt(with_openssl_detail("a private key bag holds no valid key"));
        out.keys.push_back(KeyBag{std::move(key), friendly_name_of(bag), local_key_id_of(bag)});
        break;
      }
      case NID_pkcs8ShroudedKeyBag: {
        const X509_SIG* sig = PKCS12_SAFEBAG_get0_pkcs8(bag);
        const X509_ALGOR* algorithm = nullptr;
        if (!sig) return corrupt("a shrouded key bag is empty");
        X509_SIG_get0(sig, &algorithm, nullptr);
        const std::string name = friendly_name_of(bag);
        BULWARK_TRY(check_iterations(algorithm, "the private key '" + name + "'"));
        P8InfoPtr p8(PKCS8_decrypt_ex(sig, password.c_str(), static_cast<int>(password.size()), crypto_context().ctx,
                                      nullptr));
        if (!p8) {
          ERR_clear_error();
          return make_error(ErrorKind::unauthenticated, "the private key '" + name +
                                                            "' cannot be decrypted with the store password "
                                                            "(a different key password, or an unsupported cipher)");
        }
        EvpPkeyPtr key(EVP_PKCS82PKEY(p8.get()));
        if (!key) return corrupt(with_openssl_detail("the private key '" + name + "' is not a valid key"));
        out.keys.push_back(KeyBag{std::move(key), name, local_key_id_of(bag)});
        break;
      }
      case NID_certBag: {
        if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate) break;  // SDSI certificates: ignored
        X509Ptr cert(PKCS12_SAFEBAG_get1_cert(bag));
        if (!cert) return corrupt(with_openssl_detail("a certificate bag holds no valid certificate"));
        out.certs.push_back(CertBag{std::move(cert), friendly_name_of(bag), local_key_id_of(bag), has_trusted_usage(bag)});
        break;
      }
      case NID_safeContentsBag:
        BULWARK_TRY(read_bags(PKCS12_SAFEBAG_get0_safes(bag), password, depth + 1, out));
        break;
      default:  // CRL and secret bags have no place in a Kafka keystore
        break;
    }
  }
  return Status::success();
}

Status read_authsafe(PKCS7* p7, const std::string& password, Contents& out) {
  SafeBagsPtr bags;
  if (PKCS7_type_is_data(p7)) {
    bags.reset(PKCS12_unpack_p7data(p7));
    if (!bags) return corrupt(with_openssl_detail("a PKCS12 content block is not valid"));
  } else if (PKCS7_type_is_encrypted(p7)) {
    if (!p7->d.encrypted || !p7->d.encrypted->enc_data || !p7->d.encrypted->enc_data->algorithm ||
        !p7->d.encrypted->enc_data->enc_data) {
      return corrupt("an encrypted PKCS12 content block is incomplete");
    }
    const X509_ALGOR* algorithm = p7->d.encrypted->enc_data->algorithm;
    BULWARK_TRY(check_iterations(algorithm, "the encrypted certificates"));
    const int nid = OBJ_obj2nid(algorithm->algorithm);
    if (nid == NID_pbe_WithSHA1And40BitRC2_CBC || nid == NID_pbe_WithSHA1And128BitRC2_CBC) {
      if (!crypto_context().has_rc2) {
        return make_error(ErrorKind::unsupported,
                          "the certificates are encrypted with RC2, and OpenSSL's legacy provider is not available");
      }
    }
    bags.reset(static_cast<STACK_OF(PKCS12_SAFEBAG)*>(PKCS12_item_decrypt_d2i_ex(
        algorithm, ASN1_ITEM_rptr(PKCS12_SAFEBAGS), password.c_str(), static_cast<int>(password.size()),
        p7->d.encrypted->enc_data->enc_data, 1, crypto_context().ctx, nullptr)));
    if (!bags) {
      return make_error(ErrorKind::unauthenticated,
                        with_openssl_detail("the certificates cannot be decrypted with the store password"));
    }
  } else {
    return make_error(ErrorKind::unsupported, "PKCS12 content protected with public keys is not supported");
  }
  return read_bags(bags.get(), password, 0, out);
}

std::string alias_or(const std::string& name, X509* cert) {
  if (!name.empty()) return name;
  const std::string subject = subject_text(cert);
  return subject.empty() ? std::string("certificate") : subject;
}

}  // namespace

Result<Bytes> encode_pkcs12(const KeyStore& store, std::string_view password_view, Pkcs12Style style) {
  BULWARK_TRY(check_for_encoding(store));
  const std::string password(password_view);
  const CryptoContext& context = crypto_context();
  const bool modern = style == Pkcs12Style::modern;
  const int key_pbe = modern ? NID_aes_256_cbc : NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
  // Without the legacy provider there is no RC2: the legacy form then encrypts certificates with
  // 3DES too, which every Java and OpenSSL reads.
  const int cert_pbe = modern            ? NID_aes_256_cbc
                       : context.has_rc2 ? NID_pbe_WithSHA1And40BitRC2_CBC
                                         : NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
  const int pbe_iterations = modern ? kModernIterations : kLegacyPbeIterations;
  const int mac_iterations = modern ? kModernIterations : kLegacyMacIterations;
  const EVP_MD* mac_digest = modern ? EVP_sha256() : EVP_sha1();

  SafeBagsPtr key_bags(sk_PKCS12_SAFEBAG_new_null());
  SafeBagsPtr cert_bags(sk_PKCS12_SAFEBAG_new_null());
  if (!key_bags || !cert_bags) return encode_failure("bag lists");

  for (std::size_t i = 0; i < store.keys.size(); ++i) {
    const auto& entry = store.keys[i];
    auto key_id = local_key_id_for(entry.chain.front().get(), i);
    if (!key_id.ok()) return key_id.error();
    P8InfoPtr p8(EVP_PKEY2PKCS8(entry.key.get()));
    if (!p8) return encode_failure("private key");
    SafeBagPtr key_bag(PKCS12_SAFEBAG_create_pkcs8_encrypt_ex(key_pbe, password.c_str(),
                                                              static_cast<int>(password.size()), nullptr, 0,
                                                              pbe_iterations, p8.get(), context.ctx, nullptr));
    if (!key_bag) return encode_failure("shrouded key bag");
    BULWARK_TRY(add_attributes(key_bag.get(), entry.alias, &*key_id));
    if (!push_bag(key_bags.get(), std::move(key_bag))) return encode_failure("key bag list");

    for (std::size_t c = 0; c < entry.chain.size(); ++c) {
      auto bag = cert_bag(entry.chain[c].get());
      if (!bag.ok()) return bag.error();
      // As keytool does: the leaf carries the alias and the key id; the rest are named by subject.
      if (c == 0) {
        BULWARK_TRY(add_attributes(bag->get(), entry.alias, &*key_id));
      } else {
        BULWARK_TRY(add_attributes(bag->get(), subject_text(entry.chain[c].get()), nullptr));
      }
      if (!push_bag(cert_bags.get(), std::move(*bag))) return encode_failure("certificate bag list");
    }
  }
  for (const auto& entry : store.trusted) {
    auto bag = cert_bag(entry.cert.get());
    if (!bag.ok()) return bag.error();
    BULWARK_TRY(add_attributes(bag->get(), entry.alias, nullptr));
    BULWARK_TRY(add_trusted_usage(bag->get()));  // without it Java lists no entry
    if (!push_bag(cert_bags.get(), std::move(*bag))) return encode_failure("certificate bag list");
  }

  Pkcs7StackPtr safes(sk_PKCS7_new_null());
  if (!safes) return encode_failure("content list");
  if (sk_PKCS12_SAFEBAG_num(cert_bags.get()) > 0) {
    PKCS7* p7 = PKCS12_pack_p7encdata_ex(cert_pbe, password.c_str(), static_cast<int>(password.size()), nullptr, 0,
                                         pbe_iterations, cert_bags.get(), context.ctx, nullptr);
    if (!p7 || !sk_PKCS7_push(safes.get(), p7)) {
      PKCS7_free(p7);
      return encode_failure("encrypted certificates");
    }
  }
  if (sk_PKCS12_SAFEBAG_num(key_bags.get()) > 0) {
    PKCS7* p7 = PKCS12_pack_p7data(key_bags.get());
    if (!p7 || !sk_PKCS7_push(safes.get(), p7)) {
      PKCS7_free(p7);
      return encode_failure("key content");
    }
  }
  Pkcs12Ptr p12(PKCS12_add_safes_ex(safes.get(), NID_pkcs7_data, context.ctx, nullptr));
  if (!p12) return encode_failure("container");
  if (PKCS12_set_mac(p12.get(), password.c_str(), static_cast<int>(password.size()), nullptr, 0, mac_iterations,
                     mac_digest) != 1) {
    return encode_failure("MAC");
  }
  unsigned char* out = nullptr;
  const int len = i2d_PKCS12(p12.get(), &out);
  if (len <= 0) return encode_failure("encoding");
  Bytes der(out, out + len);
  OPENSSL_free(out);
  return der;
}

Result<KeyStore> decode_pkcs12(ByteView data, std::string_view password_view) {
  if (data.empty()) return corrupt("the keystore is empty");
  if (data.size() > kMaxStoreBytes) return corrupt("the keystore is too large");
  const std::string password(password_view);
  const unsigned char* p = data.data();
  Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(data.size())));
  if (!p12) {
    ERR_clear_error();
    return corrupt("not a PKCS12 keystore, or the file is truncated or corrupt");
  }

  if (PKCS12_mac_present(p12.get())) {
    const ASN1_INTEGER* iterations = nullptr;
    PKCS12_get0_mac(nullptr, nullptr, nullptr, &iterations, p12.get());
    // A missing count means 1 (the DEFAULT in RFC 7292).
    const long count = iterations ? ASN1_INTEGER_get(iterations) : 1;
    if (count <= 0 || count > kMaxIterations) return corrupt("the keystore MAC has an unusable iteration count");
    bool verified = PKCS12_verify_mac(p12.get(), password.c_str(), static_cast<int>(password.size())) == 1;
    if (!verified && password.empty()) verified = PKCS12_verify_mac(p12.get(), nullptr, 0) == 1;
    if (!verified) {
      ERR_clear_error();
      return make_error(ErrorKind::unauthenticated,
                        "the keystore password is incorrect, or the keystore was modified");
    }
  }

  Pkcs7StackPtr safes(PKCS12_unpack_authsafes(p12.get()));
  if (!safes) return corrupt(with_openssl_detail("the PKCS12 contents are not valid"));
  Contents contents;
  for (int i = 0; i < sk_PKCS7_num(safes.get()); ++i) {
    BULWARK_TRY(read_authsafe(sk_PKCS7_value(safes.get(), i), password, contents));
  }

  std::vector<X509*> pool;
  for (const auto& bag : contents.certs) pool.push_back(bag.cert.get());
  std::vector<bool> in_chain(contents.certs.size(), false);
  auto index_of = [&](X509* cert) {
    for (std::size_t i = 0; i < contents.certs.size(); ++i) {
      if (contents.certs[i].cert.get() == cert) return i;
    }
    return contents.certs.size();
  };

  KeyStore store;
  for (std::size_t k = 0; k < contents.keys.size(); ++k) {
    auto& key = contents.keys[k];
    // The leaf is the certificate with the key's localKeyId; failing that, the one with its public key.
    X509* leaf = nullptr;
    if (!key.local_key_id.empty()) {
      for (const auto& bag : contents.certs) {
        if (bag.local_key_id == key.local_key_id && key_matches_cert(key.key.get(), bag.cert.get())) {
          leaf = bag.cert.get();
          break;
        }
      }
    }
    for (std::size_t i = 0; !leaf && i < contents.certs.size(); ++i) {
      if (key_matches_cert(key.key.get(), contents.certs[i].cert.get())) leaf = contents.certs[i].cert.get();
    }
    std::string alias = key.friendly_name;
    if (alias.empty() && leaf) alias = contents.certs[index_of(leaf)].friendly_name;
    if (alias.empty()) alias = std::to_string(k + 1);
    if (!leaf) return corrupt("the private key '" + alias + "' has no matching certificate");
    PrivateKeyEntry entry{alias, std::move(key.key), {}};
    for (X509* cert : chain_from(leaf, pool)) {
      // Mark every copy: a certificate may be both in a chain bag and in a trusted bag.
      for (std::size_t i = 0; i < contents.certs.size(); ++i) {
        if (X509_cmp(contents.certs[i].cert.get(), cert) == 0) in_chain[i] = true;
      }
      entry.chain.push_back(share(cert));
    }
    store.keys.push_back(std::move(entry));
  }
  // Java lists only certificates with the trusted-key-usage attribute. A store with no such attribute
  // at all was made by OpenSSL (`pkcs12 -export -nokeys`); there the certificates in no chain are the
  // trust anchors, as OpenSSL-based clients treat them.
  const bool java_style =
      std::any_of(contents.certs.begin(), contents.certs.end(), [](const CertBag& bag) { return bag.trusted; });
  for (std::size_t i = 0; i < contents.certs.size(); ++i) {
    auto& bag = contents.certs[i];
    if (java_style ? bag.trusted : !in_chain[i]) {
      store.trusted.push_back(TrustedCertEntry{alias_or(bag.friendly_name, bag.cert.get()), share(bag.cert.get())});
    }
  }
  return store;
}

}  // namespace bulwark::keystore
