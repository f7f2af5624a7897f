// JKS, byte for byte as sun.security.provider.JavaKeyStore writes it (version 2), with private keys
// protected by sun.security.provider.KeyProtector.
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "security/keystore.h"
#include "security/keystore_internal.h"

namespace bulwark::keystore {
namespace {

using namespace detail;

constexpr std::uint32_t kJksMagic = 0xFEEDFEEDu;
constexpr std::uint32_t kJceksMagic = 0xCECECECEu;
constexpr std::uint32_t kJksVersion = 2;
constexpr std::uint32_t kTagPrivateKey = 1;
constexpr std::uint32_t kTagTrustedCert = 2;
constexpr std::size_t kSha1Len = 20;
constexpr std::size_t kSaltLen = 20;
constexpr const char* kKeyProtectorOid = "1.3.6.1.4.1.42.2.17.1.1";
// Chain length Java would never write more of; caps loops over corrupt counts.
constexpr std::uint32_t kMaxChainCerts = kMaxChainLength;

const std::string_view kWhitener = "Mighty Aphrodite";

class Sha1 {
 public:
  Sha1() : ctx_(EVP_MD_CTX_new()) { ok_ = ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha1(), nullptr) == 1; }
  void update(ByteView data) { ok_ = ok_ && EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) == 1; }
  bool finish(std::uint8_t (&out)[kSha1Len]) {
    unsigned len = 0;
    ok_ = ok_ && EVP_DigestFinal_ex(ctx_.get(), out, &len) == 1 && len == kSha1Len;
    return ok_;
  }

 private:
  EvpMdCtxPtr ctx_;
  bool ok_ = false;
};

Error digest_failure() { return make_error(ErrorKind::internal, with_openssl_detail("SHA-1 is unavailable")); }

// Java's DataOutputStream.writeUTF: modified UTF-8 of the UTF-16 units, u16 byte length first.
Status write_java_utf(ByteWriter& w, std::string_view text) {
  std::u16string units;
  if (!utf8_to_utf16(text, units)) return make_error(ErrorKind::invalid_argument, "alias is not valid UTF-8");
  Bytes encoded;
  for (char16_t u : units) {
    if (u >= 0x0001 && u <= 0x007f) {
      encoded.push_back(static_cast<std::uint8_t>(u));
    } else if (u <= 0x07ff) {  // includes U+0000, which Java writes as C0 80
      encoded.push_back(static_cast<std::uint8_t>(0xc0 | (u >> 6)));
      encoded.push_back(static_cast<std::uint8_t>(0x80 | (u & 0x3f)));
    } else {
      encoded.push_back(static_cast<std::uint8_t>(0xe0 | (u >> 12)));
      encoded.push_back(static_cast<std::uint8_t>(0x80 | ((u >> 6) & 0x3f)));
      encoded.push_back(static_cast<std::uint8_t>(0x80 | (u & 0x3f)));
    }
  }
  if (encoded.size() > 0xffff) return make_error(ErrorKind::invalid_argument, "alias is longer than 65535 bytes");
  w.write_u16(static_cast<std::uint16_t>(encoded.size()));
  w.write_bytes(encoded);
  return Status::success();
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// DataInputStream.readUTF, returning ordinary UTF-8 (lone surrogates become U+FFFD).
bool read_java_utf(ByteReader& r, std::string& out) {
  std::uint16_t len = 0;
  ByteView raw;
  if (!r.read_u16(len) || !r.read_bytes(len, raw)) return false;
  std::u16string units;
  for (std::size_t i = 0; i < raw.size();) {
    const std::uint8_t b0 = raw[i];
    if (b0 < 0x80) {
      units.push_back(b0);
      i += 1;
    } else if ((b0 & 0xe0) == 0xc0) {
      if (i + 1 >= raw.size() || (raw[i + 1] & 0xc0) != 0x80) return false;
      units.push_back(static_cast<char16_t>(((b0 & 0x1f) << 6) | (raw[i + 1] & 0x3f)));
      i += 2;
    } else if ((b0 & 0xf0) == 0xe0) {
      if (i + 2 >= raw.size() || (raw[i + 1] & 0xc0) != 0x80 || (raw[i + 2] & 0xc0) != 0x80) return false;
      units.push_back(static_cast<char16_t>(((b0 & 0x0f) << 12) | ((raw[i + 1] & 0x3f) << 6) | (raw[i + 2] & 0x3f)));
      i += 3;
    } else {
      return false;
    }
  }
  out.clear();
  for (std::size_t i = 0; i < units.size(); ++i) {
    const std::uint32_t u = units[i];
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < units.size() && units[i + 1] >= 0xdc00 && units[i + 1] <= 0xdfff) {
      append_utf8(out, 0x10000 + ((u - 0xd800) << 10) + (units[i + 1] - 0xdc00));
      ++i;
    } else if (u >= 0xd800 && u <= 0xdfff) {
      append_utf8(out, 0xfffd);
    } else {
      append_utf8(out, u);
    }
  }
  return true;
}

// KeyProtector's keystream: SHA1(password || salt), then SHA1(password || previous digest), ...
bool key_protector_stream(const Bytes& password, ByteView salt, std::size_t length, Bytes& stream) {
  stream.clear();
  std::uint8_t digest[kSha1Len];
  ByteView previous = salt;
  while (stream.size() < length) {
    Sha1 sha;
    sha.update(password);
    sha.update(previous);
    if (!sha.finish(digest)) return false;
    const std::size_t take = std::min(kSha1Len, length - stream.size());
    stream.insert(stream.end(), digest, digest + take);
    previous = ByteView(digest, kSha1Len);
  }
  return true;
}

bool key_protector_check(const Bytes& password, ByteView plain, std::uint8_t (&out)[kSha1Len]) {
  Sha1 sha;
  sha.update(password);
  sha.update(plain);
  return sha.finish(out);
}

using X509SigPtr = std::unique_ptr<X509_SIG, OpenSslDeleter<X509_SIG_free>>;

Result<Bytes> protect_key(EVP_PKEY* key, const Bytes& password) {
  auto plain = key_to_pkcs8_der(key);
  if (!plain.ok()) return plain.error();
  Bytes protected_key(kSaltLen);
  if (RAND_bytes(protected_key.data(), static_cast<int>(kSaltLen)) != 1) {
    return make_error(ErrorKind::internal, with_openssl_detail("no random bytes for the key salt"));
  }
  Bytes stream;
  std::uint8_t check[kSha1Len];
  if (!key_protector_stream(password, ByteView(protected_key.data(), kSaltLen), plain->size(), stream) ||
      !key_protector_check(password, *plain, check)) {
    OPENSSL_cleanse(plain->data(), plain->size());
    return digest_failure();
  }
  for (std::size_t i = 0; i < plain->size(); ++i) protected_key.push_back((*plain)[i] ^ stream[i]);
  OPENSSL_cleanse(plain->data(), plain->size());
  OPENSSL_cleanse(stream.data(), stream.size());
  protected_key.insert(protected_key.end(), check, check + kSha1Len);

  // EncryptedPrivateKeyInfo { AlgorithmIdentifier { KeyProtector OID, NULL }, OCTET STRING }.
  X509SigPtr sig(X509_SIG_new());
  X509_ALGOR* algorithm = nullptr;
  ASN1_OCTET_STRING* data = nullptr;
  if (sig) X509_SIG_getm(sig.get(), &algorithm, &data);
  ASN1_OBJECT* oid = OBJ_txt2obj(kKeyProtectorOid, 1);
  if (!sig || !oid || X509_ALGOR_set0(algorithm, oid, V_ASN1_NULL, nullptr) != 1) {
    ASN1_OBJECT_free(oid);
    return make_error(ErrorKind::internal, with_openssl_detail("cannot build EncryptedPrivateKeyInfo"));
  }
  if (ASN1_OCTET_STRING_set(data, protected_key.data(), static_cast<int>(protected_key.size())) != 1) {
    return make_error(ErrorKind::internal, with_openssl_detail("cannot build EncryptedPrivateKeyInfo"));
  }
  unsigned char* out = nullptr;
  const int len = i2d_X509_SIG(sig.get(), &out);
  if (len <= 0) return make_error(ErrorKind::internal, with_openssl_detail("cannot encode EncryptedPrivateKeyInfo"));
  Bytes der(out, out + len);
  OPENSSL_free(out);
  return der;
}

Result<EvpPkeyPtr> recover_key(ByteView der, const Bytes& password, const std::string& alias) {
  const std::string what = "the private key of entry '" + alias + "'";
  const unsigned char* p = der.data();
  X509SigPtr sig(d2i_X509_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig || p != der.data() + der.size()) {
    ERR_clear_error();
    return corrupt(what + " is not an EncryptedPrivateKeyInfo");
  }
  const X509_ALGOR* algorithm = nullptr;
  const ASN1_OCTET_STRING* data = nullptr;
  X509_SIG_get0(sig.get(), &algorithm, &data);
  const ASN1_OBJECT* oid = nullptr;
  X509_ALGOR_get0(&oid, nullptr, nullptr, algorithm);
  char oid_text[80] = {};
  OBJ_obj2txt(oid_text, sizeof oid_text, oid, 1);
  if (std::string_view(oid_text) != kKeyProtectorOid) {
    return make_error(ErrorKind::unsupported, what + " is protected with algorithm " + oid_text +
                                                  ", not Sun's JKS key protector");
  }
  const ByteView encrypted(ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
  if (encrypted.size() <= kSaltLen + kSha1Len) return corrupt(what + " is too short");
  const ByteView salt = encrypted.first(kSaltLen);
  const ByteView cipher = encrypted.subspan(kSaltLen, encrypted.size() - kSaltLen - kSha1Len);
  const ByteView expected_check = encrypted.last(kSha1Len);
  Bytes stream;
  if (!key_protector_stream(password, salt, cipher.size(), stream)) return digest_failure();
  Bytes plain(cipher.size());
  for (std::size_t i = 0; i < cipher.size(); ++i) plain[i] = cipher[i] ^ stream[i];
  OPENSSL_cleanse(stream.data(), stream.size());
  std::uint8_t check[kSha1Len];
  const bool digest_ok = key_protector_check(password, plain, check);
  const bool password_ok = digest_ok && CRYPTO_memcmp(check, expected_check.data(), kSha1Len) == 0;
  Result<EvpPkeyPtr> key = make_error(ErrorKind::internal, "unreachable");
  if (password_ok) key = key_from_pkcs8_der(plain, what);
  OPENSSL_cleanse(plain.data(), plain.size());
  if (!digest_ok) return digest_failure();
  if (!password_ok) {
    return make_error(ErrorKind::unauthenticated, "the key password is incorrect for entry '" + alias + "'");
  }
  return key;
}

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Status write_cert(ByteWriter& w, X509* cert) {
  BULWARK_TRY(write_java_utf(w, "X.509"));
  auto der = cert_to_der(cert);
  if (!der.ok()) return der.error();
  w.write_u32(static_cast<std::uint32_t>(der->size()));
  w.write_bytes(*der);
  return Status::success();
}

Result<X509Ptr> read_cert(ByteReader& r, const std::string& what) {
  std::string type;
  std::uint32_t len = 0;
  ByteView der;
  if (!read_java_utf(r, type) || !r.read_u32(len) || !r.read_bytes(len, der)) {
    return corrupt("the keystore is truncated or corrupt in " + what);
  }
  if (type != "X.509") return make_error(ErrorKind::unsupported, what + " has certificate type '" + type + "', not X.509");
  return cert_from_der(der, what);
}

// SHA-1 over the UTF-16BE password, "Mighty Aphrodite" and the store bytes.
bool integrity_digest(std::string_view store_password, ByteView body, std::uint8_t (&out)[kSha1Len]) {
  Sha1 sha;
  sha.update(password_utf16be(store_password));
  sha.update(as_bytes(kWhitener));
  sha.update(body);
  return sha.finish(out);
}

}  // namespace

Result<Bytes> encode_jks(const KeyStore& store, std::string_view store_password, std::string_view key_password) {
  BULWARK_TRY(check_for_encoding(store));
  if (store_password.empty()) return make_error(ErrorKind::invalid_argument, "a JKS keystore needs a store password");
  // JavaKeyStore lower-cases aliases when entries are added; write them as it would.
  std::set<std::string> aliases;
  auto claim = [&](const std::string& alias) -> Status {
    if (!aliases.insert(lower_ascii(alias)).second) {
      return make_error(ErrorKind::invalid_argument, "alias '" + alias + "' is used twice (JKS aliases ignore case)");
    }
    return Status::success();
  };
  const Bytes key_pass = password_utf16be(key_password.empty() ? store_password : key_password);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  ByteWriter w;
  w.write_u32(kJksMagic);
  w.write_u32(kJksVersion);
  w.write_u32(static_cast<std::uint32_t>(store.keys.size() + store.trusted.size()));
  for (const auto& entry : store.keys) {
    BULWARK_TRY(claim(entry.alias));
    w.write_u32(kTagPrivateKey);
    BULWARK_TRY(write_java_utf(w, lower_ascii(entry.alias)));
    w.write_i64(now_ms);
    auto protected_key = protect_key(entry.key.get(), key_pass);
    if (!protected_key.ok()) return protected_key.error();
    w.write_u32(static_cast<std::uint32_t>(protected_key->size()));
    w.write_bytes(*protected_key);
    w.write_u32(static_cast<std::uint32_t>(entry.chain.size()));
    for (const auto& cert : entry.chain) BULWARK_TRY(write_cert(w, cert.get()));
  }
  for (const auto& entry : store.trusted) {
    BULWARK_TRY(claim(entry.alias));
    w.write_u32(kTagTrustedCert);
    BULWARK_TRY(write_java_utf(w, lower_ascii(entry.alias)));
    w.write_i64(now_ms);
    BULWARK_TRY(write_cert(w, entry.cert.get()));
  }
  std::uint8_t digest[kSha1Len];
  if (!integrity_digest(store_password, w.buffer(), digest)) return digest_failure();
  w.write_bytes(ByteView(digest, kSha1Len));
  return w.take();
}

Result<KeyStore> decode_jks(ByteView data, std::string_view store_password, std::string_view key_password) {
  if (data.empty()) return corrupt("the keystore is empty");
  if (data.size() > kMaxStoreBytes) return corrupt("the keystore is too large");
  ByteReader r(data);
  std::uint32_t magic = 0, version = 0, count = 0;
  if (!r.read_u32(magic) || !r.read_u32(version) || !r.read_u32(count)) {
    return corrupt(data.size() >= 4 && data[0] == 0xFE ? "the keystore is truncated" : "not a JKS keystore");
  }
  if (magic == kJceksMagic) {
    return make_error(ErrorKind::unsupported,
                      "JCEKS keystores are not supported; convert it with keytool -importkeystore -deststoretype PKCS12");
  }
  if (magic != kJksMagic) return corrupt("not a JKS keystore (bad magic number)");
  if (version != kJksVersion) {
    return make_error(ErrorKind::unsupported, "JKS version " + std::to_string(version) + " is not supported");
  }
  if (data.size() < 12 + kSha1Len) return corrupt("the keystore is truncated");

  // Parse first (structure errors say "truncated"/"corrupt"), then check the digest over the bytes
  // read, then decrypt keys only once the store is known to be authentic.
  struct PendingKey {
    std::string alias;
    ByteView protected_key;
    std::vector<X509Ptr> chain;
  };
  std::vector<PendingKey> pending;
  KeyStore store;
  const ByteView body = data.first(data.size() - kSha1Len);
  ByteReader entries(body);
  entries.skip(12);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::string where = "entry " + std::to_string(i + 1);
    std::uint32_t tag = 0;
    std::string alias;
    std::int64_t date = 0;
    if (!entries.read_u32(tag) || !read_java_utf(entries, alias) || !entries.read_i64(date)) {
      return corrupt("the keystore is truncated or corrupt in " + where);
    }
    if (tag == kTagPrivateKey) {
      PendingKey key;
      key.alias = alias;
      std::uint32_t key_len = 0, chain_count = 0;
      if (!entries.read_u32(key_len) || !entries.read_bytes(key_len, key.protected_key) ||
          !entries.read_u32(chain_count)) {
        return corrupt("the keystore is truncated or corrupt in entry '" + alias + "'");
      }
      if (chain_count == 0 || chain_count > kMaxChainCerts) {
        return corrupt("entry '" + alias + "' has " + std::to_string(chain_count) + " certificates in its chain");
      }
      for (std::uint32_t c = 0; c < chain_count; ++c) {
        auto cert = read_cert(entries, "certificate " + std::to_string(c + 1) + " of entry '" + alias + "'");
        if (!cert.ok()) return cert.error();
        key.chain.push_back(std::move(*cert));
      }
      pending.push_back(std::move(key));
    } else if (tag == kTagTrustedCert) {
      auto cert = read_cert(entries, "entry '" + alias + "'");
      if (!cert.ok()) return cert.error();
      store.trusted.push_back(TrustedCertEntry{alias, std::move(*cert)});
    } else if (tag == 3) {
      return make_error(ErrorKind::unsupported, "entry '" + alias + "' is a secret key, which JKS cannot hold");
    } else {
      return corrupt("the keystore is corrupt: " + where + " has unknown type " + std::to_string(tag));
    }
  }
  if (!entries.at_end()) {
    return corrupt("the keystore is corrupt: " + std::to_string(entries.remaining()) +
                   " unexpected bytes after the last entry");
  }

  // Kafka semantics: without a truststore password the integrity check is skipped.
  if (!store_password.empty()) {
    std::uint8_t digest[kSha1Len];
    if (!integrity_digest(store_password, body, digest)) return digest_failure();
    if (CRYPTO_memcmp(digest, data.last(kSha1Len).data(), kSha1Len) != 0) {
      return make_error(ErrorKind::unauthenticated,
                        "the keystore password is incorrect, or the keystore was modified");
    }
  }
  if (!pending.empty() && store_password.empty() && key_password.empty()) {
    return make_error(ErrorKind::unauthenticated,
                      "the keystore holds private keys, and no store or key password was given");
  }
  const Bytes key_pass = password_utf16be(key_password.empty() ? store_password : key_password);
  for (auto& key : pending) {
    auto recovered = recover_key(key.protected_key, key_pass, key.alias);
    if (!recovered.ok()) return recovered.error();
    if (!key_matches_cert(recovered->get(), key.chain.front().get())) {
      return corrupt("the private key of entry '" + key.alias + "' does not match its certificate");
    }
    store.keys.push_back(PrivateKeyEntry{std::move(key.alias), std::move(*recovered), std::move(key.chain)});
  }
  return store;
}

}  // namespace bulwark::keystore
