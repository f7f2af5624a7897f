// libFuzzer target for stored SCRAM credentials: the JSON file the broker reads at start-up and the
// --add-scram / kafka-configs style "SCRAM-SHA-256=[name=..,password=..]" values. Byte 0 picks which.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "security/sasl.h"

using namespace bulwark::security::sasl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    (void)parse_add_scram(text);
    return 0;
  }
  auto credentials = decode_scram_credentials(text);
  if (credentials.ok()) {
    // What decodes re-encodes to a file that decodes to the same credentials.
    auto again = decode_scram_credentials(encode_scram_credentials(*credentials));
    if (!again.ok() || *again != *credentials) __builtin_trap();
  }
  return 0;
}
