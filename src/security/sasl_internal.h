// Pieces shared by src/security/sasl*.cpp and their unit tests. Not part of the public SASL surface.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "security/sasl.h"

namespace bulwark::security::sasl::internal {

// The text every failed SCRAM/PLAIN credential check reports, whatever the reason, so a client
// cannot tell an unknown user from a wrong password.
inline constexpr std::string_view kInvalidCredentials = "Authentication failed: Invalid user credentials";

// Standard base64 (RFC 4648 alphabet, '=' padding).
std::string base64_encode(ByteView data);
// Strict decoding: only the standard alphabet, canonical padding and zero unused bits, so every
// byte string has exactly one accepted encoding. With padding_optional, a missing "=" tail is
// accepted too (Java's Base64 decoder, which Kafka's --add-scram parser uses, allows that).
std::optional<Bytes> base64_decode(std::string_view text, bool padding_optional = false);

// Hash output size of a SCRAM mechanism (32 for SHA-256, 64 for SHA-512); 0 for PLAIN.
std::size_t digest_size(Mechanism mechanism);

// RFC 5802 saslname escaping: '=' -> "=3D", ',' -> "=2C".
std::string escape_username(std::string_view username);
// The reverse; nullopt for any other '=' sequence or a raw ','.
std::optional<std::string> unescape_username(std::string_view saslname);

// A random nonce of printable characters (no ','), as both SCRAM sides append to the exchange.
// Empty only if the system random generator failed.
std::string random_nonce();

// Test hook: while an instance lives, random_nonce() on this thread returns `nonce` instead of
// random characters (RFC 7677's test vector needs fixed client and server nonces).
class ScopedNonceForTesting {
 public:
  explicit ScopedNonceForTesting(std::string nonce);
  ~ScopedNonceForTesting();
  ScopedNonceForTesting(const ScopedNonceForTesting&) = delete;
  ScopedNonceForTesting& operator=(const ScopedNonceForTesting&) = delete;

 private:
  std::optional<std::string> previous_;
};

}  // namespace bulwark::security::sasl::internal
