// libFuzzer target for the client side of SCRAM (what `bulwark` commands read from a broker they log
// in to): server-first, then server-final. Input: byte 0 picks the mechanism, the rest is
// server-first NUL server-final. The client nonce is fixed ("fuzzclientnonce").
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "security/sasl.h"
#include "security/sasl_internal.h"

using namespace bulwark;
using namespace bulwark::security::sasl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Mechanism mechanism = data[0] & 1 ? Mechanism::scram_sha_512 : Mechanism::scram_sha_256;
  ByteView rest(data + 1, size - 1);
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(rest.data(), 0, rest.size()));
  ByteView first = nul ? rest.first(static_cast<std::size_t>(nul - rest.data())) : rest;
  ByteView final = nul ? rest.subspan(first.size() + 1) : ByteView{};

  internal::ScopedNonceForTesting fixed_nonce("fuzzclientnonce");
  ScramClient client(mechanism, "alice", "alice-secret");
  (void)client.first_message();
  auto client_final = client.final_message(first);
  if (!client_final.ok() || !nul) return 0;
  (void)client.verify_server_final(final);
  return 0;
}
