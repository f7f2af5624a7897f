// libFuzzer target for java.util.Properties files (server.properties, meta.properties) and the typed
// readers the broker applies to their values: every known key's validator, topic configs, listeners,
// the listener security protocol map and controller.quorum.voters.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"
#include "config/meta_properties.h"

using namespace bulwark::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)parse_meta_properties(text, "meta.properties");
  auto properties = parse_properties(text, "server.properties");
  if (!properties.ok()) return 0;
  const std::map<std::string, SecurityProtocol> protocols = {
      {"PLAINTEXT", SecurityProtocol::plaintext}, {"SSL", SecurityProtocol::ssl},
      {"SASL_PLAINTEXT", SecurityProtocol::sasl_plaintext}, {"SASL_SSL", SecurityProtocol::sasl_ssl}};
  for (const Property& p : properties->entries) {
    if (properties->find(p.key) != &p) __builtin_trap();  // one entry per key
    if (const KeySpec* spec = find_key_spec(p.key)) (void)check_key_value(*spec, p.value);
    (void)topic_config_error(p.key, p.value);
    (void)parse_listeners(p.value, protocols);
    (void)parse_security_protocol_map(p.value);
    (void)parse_quorum_voters(p.value);
  }
  return 0;
}
