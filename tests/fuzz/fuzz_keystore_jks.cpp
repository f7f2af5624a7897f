// libFuzzer target for JKS keystores and truststores (ssl.keystore.location with type JKS). Decoded
// with the seeds' password "changeit" and with no password (a truststore without
// ssl.truststore.password: no integrity check, so mutated stores reach the entry parser).
#include <cstddef>
#include <cstdint>

#include "security/keystore.h"

using namespace bulwark;
using namespace bulwark::keystore;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView bytes(data, size);
  (void)detect_format(bytes);
  (void)decode_jks(bytes, "changeit");
  auto store = decode_jks(bytes, "");
  if (store.ok()) {
    // Whatever reads must write back to a store that reads the same entries.
    auto encoded = encode_jks(*store, "changeit");
    if (encoded.ok()) {
      auto again = decode_jks(*encoded, "changeit");
      if (!again.ok() || again->keys.size() != store->keys.size() || again->trusted.size() != store->trusted.size())
        __builtin_trap();
    }
  }
  return 0;
}
