// `bulwark probe`: connects to one broker as a Kafka client would and says, one step at a time, what
// works and what does not, with the fix for each failing step: TCP, TLS (version, cipher), the broker's
// certificate against our trust, its SANs against the host dialled, the client certificate (asked for?
// accepted?), ApiVersions, SASL (mechanisms offered, login), Metadata, and the principal we are.
//
// A probe opens two connections. The first is driven here step by step, so that each step can be
// observed on its own: the broker's chain is recorded and judged after the handshake (every problem is
// named, not just the first), and after a TLS 1.3 handshake the broker's verdict on our certificate
// arrives with the answer to ApiVersions. No credential is sent on it. The second is an ordinary
// AdminConnection: the SASL login, Metadata and DescribeCluster, made only once the first has shown the
// broker's certificate verifies.
//
// Bulwark reports no principal on the wire, so the principal is derived as the broker derives it: the
// SASL username, or our certificate subject (RFC 2253) through ssl.principal.mapping.rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/openssl.h"
#include "base/result.h"
#include "client/client.h"

namespace bulwark::client {

enum class ProbeStatus { ok, warn, fail, skip };
std::string_view probe_status_word(ProbeStatus status);  // "ok", "warn", "FAIL", "skip"

// Where a failure lies. `bulwark probe` exits with the value of its first failing step (0: none
// failed; 2 is the CLI's usage error).
enum class ProbeFailure : int {
  none = 0,
  tcp = 3,                 // the name does not resolve, nothing listens, no route
  tls = 4,                 // TLS against plaintext, version or cipher, the broker's certificate, host name
  client_certificate = 5,  // the broker wants a certificate we do not send, or refuses ours
  sasl = 6,                // SASL against not, the mechanism, the login
  kafka = 7,               // ApiVersions or Metadata did not work
  authorization = 8,       // the broker says our principal may not (Metadata of a --topic)
};

struct ProbeStep {
  std::string name;  // "TCP", "TLS", "certificate", "host name", "client cert", ...
  ProbeStatus status = ProbeStatus::ok;
  std::string message;  // what was found
  std::string fix;      // what to do about it (warn and fail only)
  ProbeFailure failure = ProbeFailure::none;
};

struct ProbeReport {
  std::string broker;  // host:port probed
  std::vector<ProbeStep> steps;
  std::string principal;         // "User:alice"; empty when the probe did not get that far
  std::string principal_source;  // how it was derived
  int exit_code() const;         // the first failing step's ProbeFailure, 0 if none
};

struct ProbeOptions {
  ClientSettings settings;                          // exactly one bootstrap server: the broker probed
  std::vector<std::string> topics;                  // Metadata for these (authorization per topic); empty = every topic
  std::string principal_mapping_rules = "DEFAULT";  // the broker's ssl.principal.mapping.rules
};

// settings_from_flags, plus librdkafka's PEM keys in the --command-config file (ssl.ca.location,
// ssl.certificate.location, ssl.key.location), which Kafka's Java tools do not know: a probe is often
// run with the file of a librdkafka client. They act as --ca, --cert and --key.
Result<ClientSettings> probe_settings_from_flags(ConnectionFlags flags);

// Errors only for settings that cannot be used at all (a keystore that does not load, bad mapping
// rules, more than one broker): what the broker says is in the report.
Result<ProbeReport> run_probe(const ProbeOptions& options);

// One line per step ("ok    TCP          127.0.0.1:9093 connected in 0.4 ms", "FAIL  ... -> fix") and a
// summary line.
std::string render_probe_text(const ProbeReport& report);
std::string render_probe_json(const ProbeReport& report);

// ---- Pure pieces, exposed for tests -------------------------------------------------------------

// Whether the certificate names `host` in its SAN (DNS names with wildcards, IP SANs for IP literals),
// as the client's TLS check decides it.
bool certificate_names_host(const X509* cert, std::string_view host);
// The "host name" step for the broker's leaf certificate.
ProbeStep judge_host_name(const X509* leaf, std::string_view host, bool verify_hostname);
// "DESCRIBE, ALTER" from a Kafka authorized-operations bit field; "none" when empty.
std::string render_authorized_operations(std::int32_t bits);

}  // namespace bulwark::client
