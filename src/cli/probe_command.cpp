// `bulwark probe HOST:PORT`: connects as a client would and says, one line per step, what works and
// what does not, with the fix for each failing step (the steps are in client/probe.h, docs/probe.md).
//
// Exit codes: 0 every step works (warnings allowed), 2 bad flags or settings, otherwise the first
// failing step's: 3 TCP, 4 TLS (plaintext against TLS, the broker's certificate, host name),
// 5 client certificate, 6 SASL, 7 ApiVersions or Metadata, 8 authorization.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/client.h"
#include "client/probe.h"

namespace {

using namespace bulwark;

struct ProbeFlags {
  std::string broker;
  client::ConnectionFlags connection;
  std::vector<std::string> topics;
  std::string principal_mapping_rules = "DEFAULT";
  long long timeout_ms = 0;  // 0: request.timeout.ms from --command-config, else 30 s
  bool json = false;
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return cli::kUsageError;
}

int run_probe_command(ProbeFlags f) {
  f.connection.bootstrap_server = f.broker;
  auto settings = client::probe_settings_from_flags(f.connection);
  if (!settings) return usage_error(settings.error().message);
  for (const auto& note : settings->notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  settings->client_id = "bulwark-probe";
  if (f.timeout_ms > 0) settings->timeout = std::chrono::milliseconds(f.timeout_ms);

  client::ProbeOptions options;
  options.settings = std::move(*settings);
  options.topics = f.topics;
  options.principal_mapping_rules = f.principal_mapping_rules;
  auto report = client::run_probe(options);
  if (!report) return usage_error(report.error().message);
  const std::string text = f.json ? client::render_probe_json(*report) : client::render_probe_text(*report);
  std::fputs(text.c_str(), stdout);
  return report->exit_code();
}

void add_probe_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("probe",
                                 "Connect to one broker as a client would and say, step by step, what works "
                                 "and what does not, with the fix");
  cmd->footer(
      "Exit codes: 0 every step works (warnings allowed); 2 a usage error; otherwise the first failing "
      "step's:\n3 TCP, 4 TLS (plaintext against TLS, the broker's certificate, host name), 5 client "
      "certificate,\n6 SASL, 7 ApiVersions or Metadata, 8 authorization. See docs/probe.md.");
  auto flags = std::make_shared<ProbeFlags>();
  cmd->add_option("broker", flags->broker, "The broker to probe: HOST:PORT (IPv6 as [::1]:9092)")->required();
  cmd->add_option("--ca", flags->connection.ca,
                  "PEM file of the CA that signed the broker certificate (means SSL; the host name is checked)");
  cmd->add_option("--cert", flags->connection.cert,
                  "PEM client certificate (with chain) for mutual TLS; needs --ca and --key");
  cmd->add_option("--key", flags->connection.key, "PEM private key of --cert");
  cmd->add_option("--command-config", flags->connection.command_config,
                  "Kafka client properties file (security.protocol, ssl.*, sasl.*), as Kafka's tools take it; "
                  "librdkafka's ssl.ca.location, ssl.certificate.location and ssl.key.location work too");
  cmd->add_option("--topic", flags->topics,
                  "Ask Metadata for this topic (repeatable): shows whether our principal may Describe it");
  cmd->add_option("--principal-mapping-rules", flags->principal_mapping_rules,
                  "The broker's ssl.principal.mapping.rules, to derive our principal from our certificate as it does")
      ->default_str("DEFAULT");
  cmd->add_option("--timeout-ms", flags->timeout_ms, "Wait at most this long for each connect, read and write")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", flags->json, "Print the steps as JSON");
  cli::set_action(cmd, [flags] { return run_probe_command(*flags); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_probe_command);
