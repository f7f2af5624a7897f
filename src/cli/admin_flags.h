// What the admin tools (`bulwark acl`, `scram`, `topics`, `groups`, ...) share: the connection flags of Kafka's admin tools
// (--bootstrap-server, PEM --ca/--cert/--key, or --command-config with Kafka client properties), the
// connection made from them, and the exit codes.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "client/client.h"

namespace bulwark::cli {

inline constexpr int kBrokerError = 1;  // the broker or the connection failed
inline constexpr int kUsageError = 2;   // bad flags or settings

inline void add_admin_connection_flags(CLI::App* cmd, client::ConnectionFlags& f, const std::string& kafka_tool) {
  cmd->add_option("--bootstrap-server", f.bootstrap_server, "Broker(s) to talk to: host:port[,host:port...]")->required();
  cmd->add_option("--ca", f.ca, "PEM file of the CA that signed the broker certificate (means SSL; the broker's "
                                "host name is checked)");
  cmd->add_option("--cert", f.cert, "PEM client certificate (with chain) for mutual TLS; needs --ca and --key");
  cmd->add_option("--key", f.key, "PEM private key of --cert");
  cmd->add_option("--command-config", f.command_config,
                  "Kafka client properties file (security.protocol, ssl.*, sasl.*), as " + kafka_tool + " takes it");
}

// Prints the error and returns the exit code it deserves: bad flags or settings are usage errors;
// everything after we started talking is the broker's side.
inline int fail(const Error& error) {
  std::fprintf(stderr, "error: %s\n", error.message.c_str());
  return error.kind == ErrorKind::invalid_argument ? kUsageError : kBrokerError;
}

// The settings the flags make; notes about ignored properties go to stderr.
inline Result<client::ClientSettings> admin_settings(const client::ConnectionFlags& flags) {
  auto settings = client::settings_from_flags(flags);
  if (settings) {
    for (const auto& note : settings->notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  }
  return settings;
}

// Connects to one broker. exit_code says whose fault a failure is.
inline Result<std::unique_ptr<client::AdminConnection>> connect_admin(const client::ConnectionFlags& flags,
                                                                      int& exit_code) {
  auto settings = admin_settings(flags);
  if (!settings) {
    exit_code = kUsageError;
    return settings.error();
  }
  auto connection = client::AdminConnection::connect(*settings);
  if (!connection) exit_code = kBrokerError;
  return connection;
}

}  // namespace bulwark::cli
