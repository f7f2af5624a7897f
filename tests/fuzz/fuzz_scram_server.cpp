// libFuzzer target for the server side of SCRAM-SHA-256/512: the client-first and client-final
// messages an unauthenticated client sends. Input: byte 0 picks the mechanism, the rest is
// client-first NUL client-final. The server nonce is fixed, so a seed with the right proof for
// alice/alice-secret (tests/fuzz/corpus/fuzz_scram_server, made by gen_seeds.py) reaches server-final.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "security/sasl.h"
#include "security/sasl_internal.h"

using namespace bulwark;
using namespace bulwark::security::sasl;

namespace {

const ScramCredential& credential_for(Mechanism mechanism) {
  static const std::uint8_t salt[] = {'f', 'u', 'z', 'z', '-', 's', 'a', 'l', 't'};
  static const ScramCredential sha256 =
      *make_scram_credential(Mechanism::scram_sha_256, "alice-secret", kMinScramIterations, salt);
  static const ScramCredential sha512 =
      *make_scram_credential(Mechanism::scram_sha_512, "alice-secret", kMinScramIterations, salt);
  return mechanism == Mechanism::scram_sha_256 ? sha256 : sha512;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Mechanism mechanism = data[0] & 1 ? Mechanism::scram_sha_512 : Mechanism::scram_sha_256;
  ByteView rest(data + 1, size - 1);
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(rest.data(), 0, rest.size()));
  ByteView first = nul ? rest.first(static_cast<std::size_t>(nul - rest.data())) : rest;
  ByteView final = nul ? rest.subspan(first.size() + 1) : ByteView{};

  internal::ScopedNonceForTesting fixed_nonce("fuzzservernonce");
  ScramServer server(mechanism, [&](const std::string& user) -> std::optional<ScramCredential> {
    if (user == "alice") return credential_for(mechanism);
    return std::nullopt;
  });
  auto server_first = server.step(first);
  if (!server_first.ok() || !nul) return 0;
  auto server_final = server.step(final);
  if (server_final.ok() != server.complete()) __builtin_trap();
  if (server.complete() && server.username() != "alice") __builtin_trap();
  if (server.step(final).ok()) __builtin_trap();  // no step after the last
  return 0;
}
