#include "acme/jws.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <array>

namespace bulwark::acme {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

Error crypto_error(const std::string& what) {
  std::string detail = openssl_errors();
  return make_error(ErrorKind::internal, what + (detail.empty() ? "" : ": " + detail));
}

Status require_p256(EVP_PKEY* key, const std::string& source) {
  char group[32] = {};
  std::size_t length = 0;
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) != 1 ||
      std::string_view(group, length) != "prime256v1") {
    ERR_clear_error();
    return make_error(ErrorKind::invalid_argument, source + " is not a P-256 (ES256) key");
  }
  return Status::success();
}

Result<std::string> coordinate(EVP_PKEY* key, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return crypto_error("cannot read the public key");
  BignumPtr value(raw);
  std::string out(32, '\0');
  if (BN_bn2binpad(value.get(), reinterpret_cast<unsigned char*>(out.data()), 32) != 32)
    return crypto_error("the public key coordinate does not fit 32 bytes");
  return out;
}

}  // namespace

std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 0x3f];
  return out;
}

Result<std::string> base64url_decode(std::string_view text) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const char* at = std::char_traits<char>::find(kAlphabet, 64, c);
    if (!at) return make_error(ErrorKind::corrupt, "not base64url text");
    buffer = (buffer << 6) | static_cast<std::uint32_t>(at - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

std::string sha256(std::string_view bytes) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

Result<EvpPkeyPtr> generate_p256_key() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!key) return crypto_error("cannot generate a P-256 key");
  return EvpPkeyPtr(key);
}

Result<EvpPkeyPtr> parse_p256_private_key(const std::string& pem, const std::string& source) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();  // the message must not carry anything of the key
    return make_error(ErrorKind::corrupt, source + " is not a PEM private key");
  }
  BULWARK_TRY(require_p256(key.get(), source));
  return key;
}

Result<std::string> private_key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return crypto_error("cannot write the key as PEM");
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

Result<json> public_jwk(EVP_PKEY* key) {
  BULWARK_TRY(require_p256(key, "the account key"));
  auto x = coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X);
  if (!x) return x.error();
  auto y = coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y);
  if (!y) return y.error();
  return json{{"crv", "P-256"}, {"kty", "EC"}, {"x", base64url(*x)}, {"y", base64url(*y)}};
}

Result<std::string> jwk_thumbprint(const json& jwk) {
  static const std::array<std::pair<const char*, std::array<const char*, 4>>, 3> kRequired{{
      {"EC", {"crv", "kty", "x", "y"}},
      {"RSA", {"e", "kty", "n", nullptr}},
      {"OKP", {"crv", "kty", "x", nullptr}},
  }};
  const std::string kty = jwk.value("kty", "");
  for (const auto& [type, members] : kRequired) {
    if (kty != type) continue;
    json canonical = json::object();  // an object keeps its keys sorted, and dump() adds no whitespace
    for (const char* member : members) {
      if (!member) break;
      if (!jwk.contains(member) || !jwk[member].is_string())
        return make_error(ErrorKind::invalid_argument, std::string("the JWK lacks its \"") + member + "\" member");
      canonical[member] = jwk[member];
    }
    return base64url(sha256(canonical.dump()));
  }
  return make_error(ErrorKind::unsupported, "no RFC 7638 thumbprint for a JWK of type \"" + kty + "\"");
}

Result<std::string> es256_sign(EVP_PKEY* key, std::string_view signing_input) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t length = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1)
    return crypto_error("cannot sign the ACME request");
  std::string der(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &length,
                     reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1)
    return crypto_error("cannot sign the ACME request");
  const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, OpenSslDeleter<ECDSA_SIG_free>> signature(
      d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(length)));
  if (!signature) return crypto_error("cannot read the ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(signature.get(), &r, &s);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32)
    return crypto_error("the ECDSA signature does not fit 64 bytes");
  return raw;
}

Result<std::string> sign_jws(EVP_PKEY* key, const json& protected_header, std::string_view payload) {
  std::string protected_b64 = base64url(protected_header.dump());
  std::string payload_b64 = base64url(payload);
  auto signature = es256_sign(key, protected_b64 + "." + payload_b64);
  if (!signature) return signature.error();
  return json{{"protected", protected_b64}, {"payload", payload_b64}, {"signature", base64url(*signature)}}.dump();
}

std::string key_authorization(std::string_view token, std::string_view thumbprint) {
  return std::string(token) + "." + std::string(thumbprint);
}

std::string dns01_txt_value(std::string_view key_authorization) { return base64url(sha256(key_authorization)); }

}  // namespace bulwark::acme
