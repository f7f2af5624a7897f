// `bulwark doctor`: audits a broker configuration (server.properties) or a running cluster for the
// mistakes that leave a Kafka-compatible broker open or broken: plaintext listeners beyond loopback,
// listeners that do not ask for the certificates their principals come from, authorization left open,
// super users no certificate can be, old TLS versions and weak ciphers, certificates near or past their
// end, private keys readable by others, PLAIN passwords sent in clear, misspelt keys.
//
// Every finding says what is wrong in plain words, how bad it is, and how to fix it. What each one
// means is in docs/doctor.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "client/client.h"
#include "config/config.h"

namespace bulwark::doctor {

// Ordered: a finding at or above `--fail-on` makes doctor exit 1.
enum class Severity { info, low, medium, high, critical };
std::string_view severity_name(Severity severity);  // "info", "low", "medium", "high", "critical"
Result<Severity> parse_severity(std::string_view text);
// The default of --fail-on: what an attacker or a wrong principal can use today.
inline constexpr Severity kDefaultFailOn = Severity::high;

struct Finding {
  Severity severity = Severity::info;
  std::string check;    // short stable name: "plaintext-listener", "client-auth", "weak-tls-version", ...
  std::string where;    // "server.properties:12", "listener SSL", "127.0.0.1:9093"; may be empty
  std::string message;  // what is wrong, one sentence
  std::string fix;      // what to do about it (empty for info)
};

struct ConfigAuditOptions {
  std::int64_t now = 0;  // seconds since the epoch; 0 = the clock
  // Read the keystores, truststores and key files the config names (off for configs read from a
  // running broker: its passwords are hidden and its files are on its host).
  bool check_files = true;
  // The config comes from a running broker (DescribeConfigs): it evidently started, so what would
  // stop a start is not reported.
  bool running = false;
  // Certificate subjects (RFC 2253) seen elsewhere, e.g. the certificate a running broker serves,
  // that super.users may be mapped from.
  std::vector<std::string> extra_subjects;
};

// Audits properties already read. Never fails: what cannot be checked becomes a finding.
std::vector<Finding> audit_properties(const config::Properties& properties, const ConfigAuditOptions& options = {});
// Reads and audits a server.properties file. An error only when the file cannot be read or parsed.
Result<std::vector<Finding>> audit_config_file(const std::filesystem::path& path,
                                               const ConfigAuditOptions& options = {});

// Audits a running cluster through its bootstrap broker: the TLS probe of that listener (versions and
// ciphers it accepts, whether it answers without a client certificate), the config checks on what
// DescribeConfigs returns for that broker, and its ACLs. An error when the broker cannot be reached.
Result<std::vector<Finding>> audit_cluster(const client::ConnectionFlags& flags);

// The findings worst first, one block each, then a summary line.
std::string render_text(const std::vector<Finding>& findings);
// 1 when a finding is at or above fail_on, else 0.
int exit_code(const std::vector<Finding>& findings, Severity fail_on);

}  // namespace bulwark::doctor
