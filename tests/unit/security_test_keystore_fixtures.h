// Keys, a root -> intermediate -> leaf chain and temporary directories for the keystore tests, all
// made with OpenSSL at test time.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

#include "security/keystore.h"

namespace bulwark::keystore::testing {

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << "extension " << OBJ_nid2sn(nid);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// issuer == nullptr makes a self-signed root.
inline X509Ptr make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                         long serial) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Bulwark Test"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(cert.get(), key);
  X509* issuer_cert = issuer ? issuer : cert.get();
  add_extension(cert.get(), issuer_cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(cert.get(), issuer_cert, NID_key_usage,
                ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  add_extension(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  EXPECT_GT(X509_sign(cert.get(), issuer ? issuer_key : key, EVP_sha256()), 0);
  return cert;
}

struct Pki {
  EvpPkeyPtr root_key, inter_key, rsa_key, ec_key;
  X509Ptr root, inter, rsa_leaf, ec_leaf;
};

// One PKI for the whole binary: RSA-2048 generation is slow.
inline const Pki& pki() {
  static const Pki* instance = [] {
    auto* p = new Pki;
    p->root_key.reset(EVP_EC_gen("P-256"));
    p->inter_key.reset(EVP_EC_gen("P-256"));
    p->rsa_key.reset(EVP_RSA_gen(2048));
    p->ec_key.reset(EVP_EC_gen("P-256"));
    p->root = make_cert("Test Root CA", p->root_key.get(), nullptr, nullptr, true, 1);
    p->inter = make_cert("Test Intermediate CA", p->inter_key.get(), p->root.get(), p->root_key.get(), true, 2);
    p->rsa_leaf = make_cert("broker-rsa", p->rsa_key.get(), p->inter.get(), p->inter_key.get(), false, 3);
    p->ec_leaf = make_cert("broker-ec", p->ec_key.get(), p->inter.get(), p->inter_key.get(), false, 4);
    return p;
  }();
  return *instance;
}

enum class LeafKind { rsa, ec };

inline PrivateKeyEntry key_entry(LeafKind kind, std::string alias = "broker") {
  const Pki& p = pki();
  PrivateKeyEntry entry;
  entry.alias = std::move(alias);
  entry.key = share(kind == LeafKind::rsa ? p.rsa_key.get() : p.ec_key.get());
  entry.chain.push_back(share(kind == LeafKind::rsa ? p.rsa_leaf.get() : p.ec_leaf.get()));
  entry.chain.push_back(share(p.inter.get()));
  entry.chain.push_back(share(p.root.get()));
  return entry;
}

inline TrustedCertEntry trusted_root(std::string alias = "ca-root") {
  return TrustedCertEntry{std::move(alias), share(pki().root.get())};
}

inline KeyStore keystore_with(LeafKind kind) {
  KeyStore store;
  store.keys.push_back(key_entry(kind));
  return store;
}

inline KeyStore truststore() {
  KeyStore store;
  store.trusted.push_back(trusted_root());
  return store;
}

inline X509* leaf_of(LeafKind kind) { return kind == LeafKind::rsa ? pki().rsa_leaf.get() : pki().ec_leaf.get(); }
inline EVP_PKEY* key_of(LeafKind kind) { return kind == LeafKind::rsa ? pki().rsa_key.get() : pki().ec_key.get(); }

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("bulwark-keystore-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& path, std::string_view data) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
  std::fclose(f);
}

inline std::string read_all(const std::filesystem::path& path) {
  std::string out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

inline std::string pem_of(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

inline std::string subject_cn(X509* cert) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

// Checks a decoded key entry against the fixture: same key, chain leaf -> intermediate -> root.
inline void expect_entry_matches(const PrivateKeyEntry& entry, LeafKind kind) {
  ASSERT_TRUE(entry.key);
  EXPECT_EQ(EVP_PKEY_eq(entry.key.get(), key_of(kind)), 1) << "the private key changed";
  ASSERT_EQ(entry.chain.size(), 3u);
  EXPECT_EQ(X509_cmp(entry.chain[0].get(), leaf_of(kind)), 0) << "leaf first";
  EXPECT_EQ(X509_cmp(entry.chain[1].get(), pki().inter.get()), 0) << "then the intermediate";
  EXPECT_EQ(X509_cmp(entry.chain[2].get(), pki().root.get()), 0) << "then the root";
}

}  // namespace bulwark::keystore::testing
