// libFuzzer target for PKCS12 keystores and truststores (keytool's modern and legacy forms, and
// `openssl pkcs12 -export` files), decoded with the seeds' password "changeit".
#include <cstddef>
#include <cstdint>

#include "security/keystore.h"

using namespace bulwark;
using namespace bulwark::keystore;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView bytes(data, size);
  (void)detect_format(bytes);
  auto store = decode_pkcs12(bytes, "changeit");
  if (store.ok()) {
    for (const auto& entry : store->keys)
      if (!entry.key || entry.chain.empty()) __builtin_trap();  // a key entry always has a key and a leaf
  }
  return 0;
}
