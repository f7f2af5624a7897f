// The cryptography an ACME client needs (RFC 8555 section 6.2, RFC 7515/7517/7638): base64url, P-256
// keys, the account key's JWK and its thumbprint, and ES256 JWS in the flattened JSON form. Internal
// to src/acme.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/openssl.h"
#include "base/result.h"

namespace bulwark::acme {

using json = nlohmann::json;

// RFC 4648 section 5, without padding.
std::string base64url(std::string_view bytes);
Result<std::string> base64url_decode(std::string_view text);
std::string sha256(std::string_view bytes);  // the 32 raw bytes

// A new P-256 key: the account key and every certificate key.
Result<EvpPkeyPtr> generate_p256_key();
Result<EvpPkeyPtr> parse_p256_private_key(const std::string& pem, const std::string& source);
Result<std::string> private_key_pem(EVP_PKEY* key);

// {"crv":"P-256","kty":"EC","x":...,"y":...} of a P-256 key's public half.
Result<json> public_jwk(EVP_PKEY* key);
// RFC 7638: base64url(SHA-256(the required members in lexicographic order, no whitespace)).
Result<std::string> jwk_thumbprint(const json& jwk);

// ES256 over `signing_input`: the raw 64-byte r||s form JWS uses (RFC 7518 section 3.4), not DER.
Result<std::string> es256_sign(EVP_PKEY* key, std::string_view signing_input);

// A flattened JWS JSON body {"protected","payload","signature"}; an empty payload (POST-as-GET) stays
// the empty string rather than base64url("{}").
Result<std::string> sign_jws(EVP_PKEY* key, const json& protected_header, std::string_view payload);

// RFC 8555 section 8.1 and 8.4: token "." thumbprint, and the TXT value base64url(SHA-256(that)).
std::string key_authorization(std::string_view token, std::string_view thumbprint);
std::string dns01_txt_value(std::string_view key_authorization);

}  // namespace bulwark::acme
