// Pieces shared by the JKS, PKCS12 and PEM codecs. Private to src/security/keystore*.cpp.
#pragma once

#include <openssl/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "security/keystore.h"

namespace bulwark::keystore::detail {

// Largest input any decoder accepts; keystores are a few KiB, so this only stops absurd files.
constexpr std::size_t kMaxStoreBytes = 16u << 20;
// Longest chain followed or accepted (real chains are 2-4 certificates).
constexpr std::size_t kMaxChainLength = 16;
// Highest PBE/MAC iteration count read from a file (Java's own cap), so a crafted store cannot make
// us spin for minutes.
constexpr long kMaxIterations = 5'000'000;

inline Error corrupt(std::string message) { return make_error(ErrorKind::corrupt, std::move(message)); }

// OpenSSL error text appended as "(...)" when there is any; never includes secrets.
std::string with_openssl_detail(std::string message);

Result<X509Ptr> cert_from_der(ByteView der, std::string_view what);
Result<Bytes> cert_to_der(X509* cert);
Result<Bytes> key_to_pkcs8_der(EVP_PKEY* key);
Result<EvpPkeyPtr> key_from_pkcs8_der(ByteView der, std::string_view what);

bool key_matches_cert(EVP_PKEY* key, X509* cert);

// The chain from leaf to the top following issuer links (name and key identifier) through pool,
// leaf first, whatever order pool is in. Stops at a self-issued certificate, a missing issuer or
// kMaxChainLength.
std::vector<X509*> chain_from(X509* leaf, const std::vector<X509*>& pool);

// Checks what every encoder needs: aliases present, each key has a chain whose leaf matches it.
Status check_for_encoding(const KeyStore& store);

// UTF-8 to UTF-16 code units; false when text is not valid UTF-8.
bool utf8_to_utf16(std::string_view text, std::u16string& out);
// Password characters as Java sees them, two bytes each, big-endian. Invalid UTF-8 falls back to one
// character per byte.
Bytes password_utf16be(std::string_view password);

std::string subject_text(X509* cert);

}  // namespace bulwark::keystore::detail
