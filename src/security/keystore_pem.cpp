// PEM keystores and truststores as Kafka reads them (KIP-651): PKCS#8 keys, plain or encrypted,
// certificates in any order. Traditional "RSA/EC PRIVATE KEY" blocks are read too.
#include <openssl/pem.h>

#include <cstring>

#include "security/keystore.h"
#include "security/keystore_internal.h"

namespace bulwark::keystore {
namespace {

using namespace detail;

struct Block {
  std::string label;
  std::string_view text;  // from BEGIN through the END line
  std::size_t number = 0;  // 1-based position among blocks, for messages
};

Result<std::vector<Block>> split_blocks(std::string_view text) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  std::vector<Block> blocks;
  std::size_t pos = 0;
  while ((pos = text.find(kBegin, pos)) != std::string_view::npos) {
    const std::size_t label_start = pos + kBegin.size();
    const std::size_t label_end = text.find("-----", label_start);
    const std::size_t line_end = text.find('\n', label_start);
    if (label_end == std::string_view::npos || (line_end != std::string_view::npos && label_end > line_end)) {
      return corrupt("PEM block " + std::to_string(blocks.size() + 1) + " has a malformed BEGIN line");
    }
    Block block;
    block.label = std::string(text.substr(label_start, label_end - label_start));
    block.number = blocks.size() + 1;
    const std::string end_marker = "-----END " + block.label + "-----";
    const std::size_t end = text.find(end_marker, label_end);
    if (end == std::string_view::npos) {
      return corrupt("PEM block " + std::to_string(block.number) + " (" + block.label +
                     ") has no END line; the file is truncated");
    }
    const std::size_t stop = end + end_marker.size();
    block.text = text.substr(pos, stop - pos);
    blocks.push_back(std::move(block));
    pos = stop;
  }
  return blocks;
}

int password_callback(char* buf, int size, int /*rwflag*/, void* user) {
  const auto* password = static_cast<const std::string_view*>(user);
  if (password->empty() || password->size() > static_cast<std::size_t>(size)) return -1;
  std::memcpy(buf, password->data(), password->size());
  return static_cast<int>(password->size());
}

BioPtr bio_of(std::string_view text) { return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))); }

bool is_key_label(const std::string& label) {
  return label == "PRIVATE KEY" || label == "ENCRYPTED PRIVATE KEY" || label == "RSA PRIVATE KEY" ||
         label == "EC PRIVATE KEY" || label == "DSA PRIVATE KEY";
}

Result<EvpPkeyPtr> read_key(const Block& block, std::string_view key_password) {
  const bool encrypted = block.label == "ENCRYPTED PRIVATE KEY" ||
                         block.text.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
  const std::string where = "the private key in PEM block " + std::to_string(block.number);
  if (encrypted && key_password.empty()) {
    return make_error(ErrorKind::unauthenticated, where + " is encrypted and no key password was given");
  }
  BioPtr bio = bio_of(block.text);
  std::string_view password = key_password;
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, password_callback, &password) : nullptr);
  if (!key) {
    if (encrypted) {
      ERR_clear_error();
      return make_error(ErrorKind::unauthenticated, "the key password is incorrect for " + where +
                                                        " (or the key is corrupt)");
    }
    return corrupt(with_openssl_detail(where + " is not a valid private key"));
  }
  return key;
}

Result<X509Ptr> read_cert(const Block& block) {
  BioPtr bio = bio_of(block.text);
  X509Ptr cert;
  if (bio) {
    cert.reset(block.label == "TRUSTED CERTIFICATE" ? PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr)
                                                    : PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  }
  if (!cert) {
    return corrupt(with_openssl_detail("PEM block " + std::to_string(block.number) + " is not a valid certificate"));
  }
  return cert;
}

Status write_cert(BIO* bio, X509* cert) {
  if (PEM_write_bio_X509(bio, cert) != 1) {
    return make_error(ErrorKind::internal, with_openssl_detail("cannot write a certificate as PEM"));
  }
  return Status::success();
}

}  // namespace

Result<std::string> encode_pem(const KeyStore& store, std::string_view key_password) {
  return encode_pem(store, key_password, PemKeyCipher::aes256_pbes2);
}

Result<std::string> encode_pem(const KeyStore& store, std::string_view key_password, PemKeyCipher cipher) {
  BULWARK_TRY(check_for_encoding(store));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return make_error(ErrorKind::internal, "out of memory");
  const std::string password(key_password);
  for (const auto& entry : store.keys) {
    // PKCS#8; with a password, PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) or PKCS#12 PBE with 3DES.
    int written = 0;
    if (password.empty()) {
      written = PEM_write_bio_PKCS8PrivateKey(bio.get(), entry.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    } else if (cipher == PemKeyCipher::aes256_pbes2) {
      written = PEM_write_bio_PKCS8PrivateKey(bio.get(), entry.key.get(), EVP_aes_256_cbc(), password.c_str(),
                                              static_cast<int>(password.size()), nullptr, nullptr);
    } else {
      written = PEM_write_bio_PKCS8PrivateKey_nid(bio.get(), entry.key.get(), NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                                                  password.c_str(), static_cast<int>(password.size()), nullptr,
                                                  nullptr);
    }
    if (written != 1) {
      return make_error(ErrorKind::internal, with_openssl_detail("cannot write the private key of entry '" +
                                                                 entry.alias + "' as PEM"));
    }
    for (const auto& cert : entry.chain) BULWARK_TRY(write_cert(bio.get(), cert.get()));
  }
  for (const auto& entry : store.trusted) BULWARK_TRY(write_cert(bio.get(), entry.cert.get()));
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  std::string out(data ? data : "", len > 0 ? static_cast<std::size_t>(len) : 0);
  // The memory BIO held the key; wipe it before it is freed.
  if (data && len > 0) OPENSSL_cleanse(data, static_cast<std::size_t>(len));
  return out;
}

Result<KeyStore> decode_pem(std::string_view text, std::string_view key_password) {
  if (text.empty()) return corrupt("the PEM file is empty");
  if (text.size() > kMaxStoreBytes) return corrupt("the PEM file is too large");
  auto blocks = split_blocks(text);
  if (!blocks.ok()) return blocks.error();
  if (blocks->empty()) return corrupt("no PEM blocks (-----BEGIN ...-----) found");

  std::vector<EvpPkeyPtr> keys;
  std::vector<X509Ptr> certs;
  for (const auto& block : *blocks) {
    if (is_key_label(block.label)) {
      auto key = read_key(block, key_password);
      if (!key.ok()) return key.error();
      keys.push_back(std::move(*key));
    } else if (block.label == "CERTIFICATE" || block.label == "X509 CERTIFICATE" ||
               block.label == "TRUSTED CERTIFICATE") {
      auto cert = read_cert(block);
      if (!cert.ok()) return cert.error();
      certs.push_back(std::move(*cert));
    }
    // Other blocks (EC PARAMETERS, PUBLIC KEY, X509 CRL) carry nothing a keystore holds.
  }
  if (keys.empty() && certs.empty()) return corrupt("the PEM file holds no private key and no certificate");

  std::vector<X509*> pool;
  for (const auto& cert : certs) pool.push_back(cert.get());
  std::vector<bool> in_chain(certs.size(), false);
  KeyStore store;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    X509* leaf = nullptr;
    for (X509* cert : pool) {
      if (key_matches_cert(keys[k].get(), cert)) {
        leaf = cert;
        break;
      }
    }
    if (!leaf) {
      return corrupt("private key " + std::to_string(k + 1) + " has no matching certificate in the PEM file");
    }
    // Kafka's PEM store names its key entry "kafka".
    PrivateKeyEntry entry{k == 0 ? "kafka" : "kafka-" + std::to_string(k + 1), std::move(keys[k]), {}};
    for (X509* cert : chain_from(leaf, pool)) {
      for (std::size_t i = 0; i < pool.size(); ++i) {
        if (X509_cmp(pool[i], cert) == 0) in_chain[i] = true;  // duplicates in the file too
      }
      entry.chain.push_back(share(cert));
    }
    store.keys.push_back(std::move(entry));
  }
  for (std::size_t i = 0; i < certs.size(); ++i) {
    if (!in_chain[i]) {
      store.trusted.push_back(TrustedCertEntry{"kafka" + std::to_string(store.trusted.size()), share(certs[i].get())});
    }
  }
  return store;
}

}  // namespace bulwark::keystore
