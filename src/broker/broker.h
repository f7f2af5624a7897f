// `bulwark broker`: one node serving the Kafka protocol on the listeners of a server.properties.
//
// Lifecycle: create() checks the formatted storage, opens the logs and the topic registry and builds
// the TLS contexts (every error names the key or file at fault); start() binds the listeners;
// stop() closes them and flushes the logs. Thread safety: start/stop from one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "config/config.h"
#include "security/sasl.h"

namespace bulwark::broker {

struct BrokerState;
class Router;

class Broker {
 public:
  static Result<std::unique_ptr<Broker>> create(config::BrokerConfig config);
  ~Broker();

  Status start();
  void stop();
  // Reads every TLS listener's keystore, truststore and CRL again (SIGHUP); each listener logs the outcome.
  void reload_certificates(std::string_view reason);
  // The port a listener is bound to (useful when the configured port is 0).
  std::uint16_t port(const std::string& listener) const;

 private:
  Broker();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Stores SCRAM credentials where the node's broker reads them (kafka-storage.sh format --add-scram):
// the first users of a SASL/SCRAM cluster, before any client can log in to add more.
Status add_scram_credentials(const config::BrokerConfig& config, const std::vector<security::sasl::ScramSpec>& specs);

}  // namespace bulwark::broker
