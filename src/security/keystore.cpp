// Format names and detection, loading from files, and the helpers the three codecs share.
#include "security/keystore.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "base/files.h"
#include "security/keystore_internal.h"

namespace bulwark::keystore {
namespace detail {

std::string with_openssl_detail(std::string message) {
  const std::string detail = openssl_errors();
  if (!detail.empty()) message += " (" + detail + ")";
  return message;
}

Result<X509Ptr> cert_from_der(ByteView der, std::string_view what) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != der.data() + der.size()) {
    return corrupt(with_openssl_detail(std::string(what) + " is not a valid X.509 certificate"));
  }
  return cert;
}

Result<Bytes> cert_to_der(X509* cert) {
  unsigned char* out = nullptr;
  const int len = i2d_X509(cert, &out);
  if (len <= 0) return make_error(ErrorKind::internal, with_openssl_detail("cannot encode a certificate"));
  Bytes der(out, out + len);
  OPENSSL_free(out);
  return der;
}

Result<Bytes> key_to_pkcs8_der(EVP_PKEY* key) {
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, OpenSslDeleter<PKCS8_PRIV_KEY_INFO_free>> p8(EVP_PKEY2PKCS8(key));
  unsigned char* out = nullptr;
  const int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &out) : -1;
  if (len <= 0) return make_error(ErrorKind::internal, with_openssl_detail("cannot encode a private key as PKCS#8"));
  Bytes der(out, out + len);
  OPENSSL_clear_free(out, static_cast<std::size_t>(len));
  return der;
}

Result<EvpPkeyPtr> key_from_pkcs8_der(ByteView der, std::string_view what) {
  const unsigned char* p = der.data();
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, OpenSslDeleter<PKCS8_PRIV_KEY_INFO_free>> p8(
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  EvpPkeyPtr key(p8 ? EVP_PKCS82PKEY(p8.get()) : nullptr);
  if (!key) return corrupt(with_openssl_detail(std::string(what) + " is not a valid PKCS#8 private key"));
  return key;
}

bool key_matches_cert(EVP_PKEY* key, X509* cert) {
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  const bool same = pub != nullptr && EVP_PKEY_eq(pub, key) == 1;
  ERR_clear_error();
  return same;
}

std::vector<X509*> chain_from(X509* leaf, const std::vector<X509*>& pool) {
  std::vector<X509*> chain{leaf};
  X509* current = leaf;
  while (chain.size() < kMaxChainLength) {
    if (X509_check_issued(current, current) == X509_V_OK) break;  // self-issued: the top
    X509* issuer = nullptr;
    for (X509* candidate : pool) {
      if (std::find(chain.begin(), chain.end(), candidate) != chain.end()) continue;
      if (X509_cmp(candidate, current) == 0) continue;  // the same certificate listed twice
      if (X509_check_issued(candidate, current) == X509_V_OK) {
        issuer = candidate;
        break;
      }
    }
    if (!issuer) break;
    chain.push_back(issuer);
    current = issuer;
  }
  ERR_clear_error();
  return chain;
}

Status check_for_encoding(const KeyStore& store) {
  for (const auto& entry : store.keys) {
    if (entry.alias.empty()) return make_error(ErrorKind::invalid_argument, "a private key entry has no alias");
    if (!entry.key) return make_error(ErrorKind::invalid_argument, "entry '" + entry.alias + "' has no private key");
    if (entry.chain.empty() || !entry.chain.front()) {
      return make_error(ErrorKind::invalid_argument, "entry '" + entry.alias + "' has no certificate chain");
    }
    for (const auto& cert : entry.chain) {
      if (!cert) return make_error(ErrorKind::invalid_argument, "entry '" + entry.alias + "' has an empty chain slot");
    }
    if (!key_matches_cert(entry.key.get(), entry.chain.front().get())) {
      return make_error(ErrorKind::invalid_argument,
                        "the private key of entry '" + entry.alias + "' does not match its leaf certificate");
    }
  }
  for (const auto& entry : store.trusted) {
    if (entry.alias.empty()) return make_error(ErrorKind::invalid_argument, "a trusted certificate entry has no alias");
    if (!entry.cert) return make_error(ErrorKind::invalid_argument, "entry '" + entry.alias + "' has no certificate");
  }
  return Status::success();
}

bool utf8_to_utf16(std::string_view text, std::u16string& out) {
  out.clear();
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    std::uint32_t cp = 0;
    std::size_t extra = 0;
    if (b0 < 0x80) {
      cp = b0;
    } else if ((b0 & 0xe0) == 0xc0) {
      cp = b0 & 0x1f;
      extra = 1;
    } else if ((b0 & 0xf0) == 0xe0) {
      cp = b0 & 0x0f;
      extra = 2;
    } else if ((b0 & 0xf8) == 0xf0) {
      cp = b0 & 0x07;
      extra = 3;
    } else {
      return false;
    }
    if (i + extra >= text.size() && extra > 0) return false;  // sequence cut short
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    static constexpr std::uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xd800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xdc00 + (cp & 0x3ff)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    i += extra + 1;
  }
  return true;
}

Bytes password_utf16be(std::string_view password) {
  std::u16string units;
  if (!utf8_to_utf16(password, units)) {
    units.clear();
    for (char c : password) units.push_back(static_cast<char16_t>(static_cast<unsigned char>(c)));
  }
  Bytes out;
  out.reserve(units.size() * 2);
  for (char16_t u : units) {
    out.push_back(static_cast<std::uint8_t>(u >> 8));
    out.push_back(static_cast<std::uint8_t>(u & 0xff));
  }
  return out;
}

std::string subject_text(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

}  // namespace detail

Result<Format> parse_format(std::string_view name) {
  std::string upper;
  for (char c : name) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (upper == "JKS") return Format::jks;
  if (upper == "PKCS12" || upper == "P12" || upper == "PFX") return Format::pkcs12;
  if (upper == "PEM") return Format::pem;
  return make_error(ErrorKind::invalid_argument,
                    "unknown keystore type '" + std::string(name) + "' (expected JKS, PKCS12 or PEM)");
}

std::optional<Format> detect_format(ByteView data) {
  if (data.size() >= 4) {
    const std::uint32_t magic = (std::uint32_t{data[0]} << 24) | (std::uint32_t{data[1]} << 16) |
                                (std::uint32_t{data[2]} << 8) | data[3];
    if (magic == 0xFEEDFEEDu || magic == 0xCECECECEu) return Format::jks;  // JCEKS is rejected by decode_jks
  }
  if (data.size() >= 2 && data[0] == 0x30 && (data[1] & 0x80) != 0) return Format::pkcs12;
  // PEM: text, possibly with comments or "Bag Attributes" lines before the first block.
  const std::string_view text = as_chars(data.first(std::min<std::size_t>(data.size(), 64 * 1024)));
  if (text.find('\0') == std::string_view::npos && text.find("-----BEGIN ") != std::string_view::npos) {
    return Format::pem;
  }
  return std::nullopt;
}

Result<KeyStore> load(const std::filesystem::path& path, std::optional<Format> format, std::string_view store_password,
                      std::string_view key_password) {
  const std::string name = path.string();
  auto contents = read_file(path);
  if (!contents.ok()) return contents.error();
  const std::string& data = *contents;
  if (data.empty()) return make_error(ErrorKind::corrupt, "keystore " + name + " is empty");
  if (data.size() > detail::kMaxStoreBytes) {
    return make_error(ErrorKind::corrupt, "keystore " + name + " is too large to be a keystore (" +
                                              std::to_string(data.size()) + " bytes)");
  }
  const ByteView bytes = as_bytes(data);
  const auto detected = detect_format(bytes);
  if (!format) {
    format = detected;
    if (!format) {
      return make_error(ErrorKind::corrupt, "keystore " + name + " is not a JKS, PKCS12 or PEM keystore");
    }
  } else if (detected && *format != Format::pem && *detected != Format::pem && *detected != *format) {
    // Java (keystore.type.compat) loads a JKS file declared PKCS12 and vice versa; keytool 17 writes
    // PKCS12 even into a file named *.jks unless told -storetype JKS, so users have both everywhere.
    format = detected;
  }
  Result<KeyStore> store = make_error(ErrorKind::internal, "unreachable");
  const char* type = "";
  switch (*format) {
    case Format::jks:
      type = "JKS";
      store = decode_jks(bytes, store_password, key_password);
      break;
    case Format::pkcs12:
      type = "PKCS12";
      store = decode_pkcs12(bytes, store_password);
      break;
    case Format::pem:
      type = "PEM";
      store = decode_pem(data, key_password);
      break;
  }
  if (!store.ok()) {
    return make_error(store.error().kind, std::string(type) + " keystore " + name + ": " + store.error().message);
  }
  if (store->keys.empty() && store->trusted.empty()) {
    return make_error(ErrorKind::corrupt, std::string(type) + " keystore " + name + " contains no entries");
  }
  return store;
}

}  // namespace bulwark::keystore
