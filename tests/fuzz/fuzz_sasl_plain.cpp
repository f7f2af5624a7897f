// libFuzzer target for SASL PLAIN (RFC 4616): the token a client sends in SaslAuthenticate before it
// is authenticated, and the mechanism name of SaslHandshake.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "security/sasl.h"

using namespace bulwark::security::sasl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto credentials = parse_plain_token({data, size});
  if (credentials.ok()) {
    // An accepted token has a user and a password and is re-encodable to a token that parses the same.
    if (credentials->username.empty() || credentials->password.empty()) __builtin_trap();
    auto again = parse_plain_token(plain_token(credentials->username, credentials->password));
    if (!again.ok() || again->username != credentials->username || again->password != credentials->password)
      __builtin_trap();
  }
  auto mechanism = mechanism_from(std::string_view(reinterpret_cast<const char*>(data), size));
  if (mechanism.ok() && name_of(*mechanism) != std::string_view(reinterpret_cast<const char*>(data), size))
    __builtin_trap();
  return 0;
}
