// libFuzzer target for Kafka JAAS config strings (sasl.jaas.config and its per-listener forms).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "security/sasl.h"

using namespace bulwark::security::sasl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto config = parse_jaas_config(std::string_view(reinterpret_cast<const char*>(data), size));
  if (config.ok()) {
    if (config->login_module.empty() || config->control_flag.empty()) __builtin_trap();
    for (const auto& [user, password] : plain_users(*config)) {
      if (config->options.find("user_" + user) == config->options.end()) __builtin_trap();
      (void)password;
    }
  }
  return 0;
}
