// Dynamic broker configs: what `kafka-configs --alter --entity-type brokers` may change while the broker
// runs, with Kafka's rules (DynamicBrokerConfig) and messages, and the properties they make in force.
#include <algorithm>
#include <array>

#include "config/config.h"

namespace bulwark::config {
namespace {

constexpr std::string_view kListenerPrefix = "listener.name.";

// What Bulwark reconfigures at run time: a listener's TLS material (Kafka's SslConfigs.RECONFIGURABLE_CONFIGS,
// plus the CRL). Kafka takes these per broker and per listener only.
constexpr std::array<std::string_view, 11> kReconfigurableTls = {
    "ssl.keystore.type",   "ssl.keystore.location",   "ssl.keystore.password",   "ssl.key.password",
    "ssl.keystore.key",    "ssl.keystore.certificate.chain", "ssl.truststore.type", "ssl.truststore.location",
    "ssl.truststore.password", "ssl.truststore.certificates", "ssl.crl.location"};

// "listener.name.ssl.ssl.keystore.location" -> "ssl.keystore.location"; "" when there is no prefix.
std::string_view without_listener_prefix(std::string_view key) {
  if (!key.starts_with(kListenerPrefix)) return {};
  const auto rest = key.substr(kListenerPrefix.size());
  const auto dot = rest.find('.');
  return dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
}

bool reconfigurable(std::string_view base) {
  return std::find(kReconfigurableTls.begin(), kReconfigurableTls.end(), base) != kReconfigurableTls.end();
}

}  // namespace

bool is_sensitive_key(std::string_view key) {
  const auto base = without_listener_prefix(key);
  const auto* spec = find_key_spec(base.empty() ? key : base);
  return (spec != nullptr && spec->type == KeyType::password) || key.find("password") != std::string_view::npos ||
         key.find("jaas") != std::string_view::npos || key.find("keystore.key") != std::string_view::npos;
}

bool is_dynamic_tls_key(std::string_view key) {
  const auto base = without_listener_prefix(key);
  return reconfigurable(base.empty() ? key : base);
}

std::optional<std::string> dynamic_broker_config_error(std::string_view key, std::optional<std::string_view> value,
                                                       bool per_broker) {
  const std::string name(key);
  const auto base = without_listener_prefix(key);
  if (base.empty() && reconfigurable(key))
    return "These security configs can be dynamically updated only per-listener using the listener prefix: " + name;
  if (!reconfigurable(base))
    return "Cannot update these configs dynamically: " + name +
           " (Bulwark changes a listener's keystore, truststore and CRL while it runs; other keys take a restart)";
  if (!per_broker) return "Cannot update these configs at default cluster level, broker id must be specified: " + name;
  const auto* spec = find_key_spec(base);
  if (value && spec != nullptr) {
    if (auto why = check_key_value(*spec, *value)) return "Invalid value for " + name + ": " + *why;
  }
  return std::nullopt;
}

Properties with_dynamic_configs(Properties properties, const DynamicConfigs* cluster_defaults,
                                const DynamicConfigs* this_broker) {
  for (const auto* layer : {cluster_defaults, this_broker}) {
    if (layer == nullptr) continue;
    for (const auto& entry : *layer) {
      const std::string& key = entry.first;  // a named reference: clang 14 cannot capture a structured binding
      auto it = std::find_if(properties.entries.begin(), properties.entries.end(),
                             [&](const Property& p) { return p.key == key; });
      if (it != properties.entries.end()) it->value = entry.second;
      else properties.entries.push_back({key, entry.second, 0});
    }
  }
  return properties;
}

}  // namespace bulwark::config
