// libFuzzer target for PEM keystores and truststores (KIP-651: ssl.keystore.type=PEM files and the
// ssl.keystore.key / certificate chain values in the config itself), plain and encrypted keys.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "security/keystore.h"

using namespace bulwark;
using namespace bulwark::keystore;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)detect_format(ByteView(data, size));
  (void)parse_format(text);
  (void)decode_pem(text, "changeit");
  auto store = decode_pem(text);
  if (store.ok()) {
    auto encoded = encode_pem(*store);
    if (encoded.ok()) {
      auto again = decode_pem(*encoded);
      if (!again.ok() || again->keys.size() != store->keys.size() || again->trusted.size() != store->trusted.size())
        __builtin_trap();
    }
  }
  return 0;
}
