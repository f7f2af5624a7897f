// Certificates for the tls and net tests, made in memory with OpenSSL: a CA, a server certificate
// with IP SAN 127.0.0.1, a client certificate from the CA and one from another CA.
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "security/keystore.h"
#include "tls/tls.h"

namespace bulwark::testing {

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) {
    ADD_FAILURE() << "extension " << OBJ_nid2sn(nid) << " = " << value;
    return;
  }
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// rdns in DER order, e.g. {{"C","IR"},{"ST","Tehran"},...,{"CN","admin-1"}}. issuer == nullptr: self-signed.
inline X509Ptr make_cert(const std::vector<std::pair<std::string, std::string>>& rdns, EVP_PKEY* key, X509* issuer,
                         EVP_PKEY* issuer_key, bool ca, long serial, const char* san = nullptr) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& [type, value] : rdns) {
    X509_NAME_add_entry_by_txt(name, type.c_str(), MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()),
                               -1, -1, 0);
  }
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(cert.get(), key);
  X509* issuer_cert = issuer ? issuer : cert.get();
  add_ext(cert.get(), issuer_cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(cert.get(), issuer_cert, NID_key_usage,
          ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  add_ext(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  add_ext(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  if (!ca) add_ext(cert.get(), issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
  if (san != nullptr) add_ext(cert.get(), issuer_cert, NID_subject_alt_name, san);
  EXPECT_GT(X509_sign(cert.get(), issuer ? issuer_key : key, EVP_sha256()), 0);
  return cert;
}

struct TestPki {
  EvpPkeyPtr ca_key, server_key, client_key, other_ca_key, other_client_key;
  X509Ptr ca, server, client, other_ca, other_client;
};

// One PKI per test binary (EC P-256 keys: quick to make).
inline const TestPki& test_pki() {
  static const TestPki* instance = [] {
    auto* p = new TestPki;
    p->ca_key.reset(EVP_EC_gen("P-256"));
    p->server_key.reset(EVP_EC_gen("P-256"));
    p->client_key.reset(EVP_EC_gen("P-256"));
    p->other_ca_key.reset(EVP_EC_gen("P-256"));
    p->other_client_key.reset(EVP_EC_gen("P-256"));
    p->ca = make_cert({{"O", "Bulwark Test"}, {"CN", "Test CA"}}, p->ca_key.get(), nullptr, nullptr, true, 1);
    p->server = make_cert({{"O", "Bulwark Test"}, {"CN", "broker-1"}}, p->server_key.get(), p->ca.get(),
                          p->ca_key.get(), false, 2, "IP:127.0.0.1,DNS:localhost");
    p->client = make_cert({{"C", "IR"}, {"ST", "Tehran"}, {"L", "Tehran"}, {"O", "SLS"}, {"OU", "DevOps"}, {"CN", "admin-1"}},
                          p->client_key.get(), p->ca.get(), p->ca_key.get(), false, 3);
    p->other_ca = make_cert({{"O", "Elsewhere"}, {"CN", "Other CA"}}, p->other_ca_key.get(), nullptr, nullptr, true, 4);
    p->other_client = make_cert({{"O", "Elsewhere"}, {"CN", "intruder"}}, p->other_client_key.get(), p->other_ca.get(),
                                p->other_ca_key.get(), false, 5);
    return p;
  }();
  return *instance;
}

inline keystore::KeyStore key_store(EVP_PKEY* key, std::vector<X509*> chain) {
  keystore::KeyStore store;
  keystore::PrivateKeyEntry entry;
  entry.alias = "key";
  entry.key = share(key);
  for (X509* c : chain) entry.chain.push_back(share(c));
  store.keys.push_back(std::move(entry));
  return store;
}

inline keystore::KeyStore trust_store(X509* ca) {
  keystore::KeyStore store;
  store.trusted.push_back(keystore::TrustedCertEntry{"ca", share(ca)});
  return store;
}

inline tls::TlsSettings server_settings(tls::ClientAuth auth = tls::ClientAuth::none) {
  const TestPki& p = test_pki();
  tls::TlsSettings s;
  s.keystore = key_store(p.server_key.get(), {p.server.get(), p.ca.get()});
  s.truststore = trust_store(p.ca.get());
  s.client_auth = auth;
  return s;
}

enum class ClientCert { none, good, other_ca };

inline tls::TlsSettings client_settings(ClientCert cert = ClientCert::none) {
  const TestPki& p = test_pki();
  tls::TlsSettings s;
  s.truststore = trust_store(p.ca.get());
  if (cert == ClientCert::good) s.keystore = key_store(p.client_key.get(), {p.client.get()});
  if (cert == ClientCert::other_ca) s.keystore = key_store(p.other_client_key.get(), {p.other_client.get()});
  return s;
}

inline std::string pem_cert(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

inline std::string pem_key(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("bulwark-net-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return path_ / name;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Runs a handshake between a client and a server SSL over a memory BIO pair; returns the server's and
// client's SSL_get_error results (SSL_ERROR_NONE on success).
struct PairResult {
  bool ok = false;
  int server_error = 0, client_error = 0;
  unsigned long server_code = 0, client_code = 0;
};

inline PairResult handshake_pair(SSL* server, SSL* client) {
  BIO *server_bio = nullptr, *client_bio = nullptr;
  BIO_new_bio_pair(&server_bio, 0, &client_bio, 0);
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_accept_state(server);
  SSL_set_connect_state(client);
  PairResult result;
  bool server_done = false, client_done = false;
  for (int i = 0; i < 100 && !(server_done && client_done); ++i) {
    if (!client_done) {
      int r = SSL_do_handshake(client);
      if (r == 1) {
        client_done = true;
      } else {
        int e = SSL_get_error(client, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          result.client_error = e;
          result.client_code = ERR_peek_error();
          ERR_clear_error();
          return result;
        }
      }
    }
    if (!server_done) {
      int r = SSL_do_handshake(server);
      if (r == 1) {
        server_done = true;
      } else {
        int e = SSL_get_error(server, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          result.server_error = e;
          result.server_code = ERR_peek_error();
          ERR_clear_error();
          return result;
        }
      }
    }
  }
  // TLS 1.3: the server checks the client certificate after the client finished; exchange data so a
  // rejection reaches both sides.
  char byte = 'x';
  SSL_write(client, &byte, 1);
  char in;
  int r = SSL_read(server, &in, 1);
  if (r <= 0) {
    result.server_error = SSL_get_error(server, r);
    result.server_code = ERR_peek_error();
    ERR_clear_error();
    return result;
  }
  result.ok = server_done && client_done;
  return result;
}

}  // namespace bulwark::testing
