// `bulwark doctor -c server.properties` audits a broker config; `bulwark doctor --bootstrap-server
// HOST:PORT` a running cluster (doctor/doctor.h; every finding is explained in docs/doctor.md).
//
// Exit codes: 0 no finding at or above --fail-on, 1 findings at or above it, 2 a usage error or a
// config (or cluster) that could not be read.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "doctor/doctor.h"

namespace {

using namespace bulwark;

struct DoctorFlags {
  std::string config;
  client::ConnectionFlags connection;
  std::string fail_on{doctor::severity_name(doctor::kDefaultFailOn)};
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return cli::kUsageError;
}

int run_doctor(const DoctorFlags& f) {
  auto fail_on = doctor::parse_severity(f.fail_on);
  if (!fail_on) return usage_error("--fail-on: " + fail_on.error().message);
  if (f.config.empty() == f.connection.bootstrap_server.empty())
    return usage_error("give either -c FILE (a broker config) or --bootstrap-server HOST:PORT (a running cluster)");
  auto findings = f.config.empty() ? doctor::audit_cluster(f.connection) : doctor::audit_config_file(f.config);
  if (!findings) return usage_error(findings.error().message);
  std::fputs(doctor::render_text(*findings).c_str(), stdout);
  return doctor::exit_code(*findings, *fail_on);
}

void add_doctor_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("doctor", "Audit a broker config or a running cluster for security mistakes, "
                                           "each finding with its severity and fix");
  cmd->footer(
      "Severities: info < low < medium < high < critical.\n"
      "Exit codes: 0 no finding at or above --fail-on; 1 findings at or above --fail-on; 2 a usage error, or\n"
      "the config (or the cluster) could not be read. See docs/doctor.md for what each finding means.");
  auto flags = std::make_shared<DoctorFlags>();
  cmd->add_option("-c,--config", flags->config, "The broker config to audit (Kafka's server.properties)");
  cmd->add_option("--bootstrap-server", flags->connection.bootstrap_server,
                  "Audit the running broker at HOST:PORT instead (TLS probe, DescribeConfigs, ACLs)");
  cmd->add_option("--ca", flags->connection.ca, "PEM file of the CA that signed the broker certificate (means SSL)");
  cmd->add_option("--cert", flags->connection.cert, "PEM client certificate (with chain), an admin's for the "
                                                    "config and ACL checks; needs --ca and --key");
  cmd->add_option("--key", flags->connection.key, "PEM private key of --cert");
  cmd->add_option("--command-config", flags->connection.command_config,
                  "Kafka client properties file (security.protocol, ssl.*, sasl.*); librdkafka's ssl.*.location "
                  "keys work too");
  cmd->add_option("--fail-on", flags->fail_on, "Exit 1 when a finding is at or above this severity: info, low, "
                                               "medium, high or critical")
      ->capture_default_str();
  cli::set_action(cmd, [flags] { return run_doctor(*flags); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_doctor_command);
