// `bulwark pki acme issue|renew`: certificates from an ACME server (RFC 8555, DNS-01). The verbs only
// parse flags and print; the work is in src/acme (acme/acme.h). Guide: docs/acme.md.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "acme/acme.h"
#include "base/log.h"
#include "cli/command.h"
#include "pki/pki.h"

namespace {

using namespace bulwark;
namespace fs = std::filesystem;

volatile std::sig_atomic_t stop_requested = 0;
void request_stop(int) { stop_requested = 1; }

int fail(const Error& error) {
  std::fprintf(stderr, "error: %s\n", error.message.c_str());
  return 1;
}

void print(const pki::Outcome& outcome) {
  for (const auto& line : outcome.messages) std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

struct AcmeFlags {
  std::string name, dir = "./pki", server, server_ca, hook, rfc2136, tsig_key, zone, email;
  std::string export_format, export_out, password_file;
  std::vector<std::string> domains;
  int dns_wait = 0, timeout = 300, check_interval = 3600;
  bool force = false, legacy = false, watch = false;
  CLI::Option *server_ca_option = nullptr, *hook_option = nullptr, *rfc2136_option = nullptr, *tsig_option = nullptr,
              *zone_option = nullptr, *email_option = nullptr, *export_option = nullptr;
};

void add_common_flags(CLI::App* cmd, AcmeFlags& f, bool renewing) {
  cmd->add_option("name", f.name, "Certificate name: its folder DIR/issued/NAME and keystore alias")->required();
  cmd->add_option("--dir", f.dir, "PKI state directory (made when absent; needs no CA of its own)")->capture_default_str();
  auto* server = cmd->add_option("--server", f.server,
                                 renewing ? "ACME directory URL (default: the one NAME came from)"
                                          : "ACME directory URL, e.g. https://acme-staging-v02.api.letsencrypt.org/directory");
  if (!renewing) server->required();
  cmd->add_option("--domain", f.domains,
                  renewing ? "DNS name(s) for the certificate (default: those NAME has), repeatable"
                           : "DNS name(s) for the certificate, repeatable; the first is also its CN")
      ->delimiter(',');
  f.server_ca_option = cmd->add_option("--server-ca", f.server_ca, "Also trust this CA file for the ACME server's HTTPS");
  f.hook_option = cmd->add_option("--dns-hook", f.hook, "Run PROGRAM present|cleanup FQDN VALUE (lego's exec contract)");
  f.rfc2136_option = cmd->add_option("--dns-rfc2136", f.rfc2136, "Send RFC 2136 updates to this HOST:PORT");
  f.tsig_option = cmd->add_option("--tsig-key", f.tsig_key, "TSIG key file from tsig-keygen (for --dns-rfc2136)");
  f.zone_option = cmd->add_option("--dns-zone", f.zone, "Zone to update (default: asked of the server by SOA)");
  f.hook_option->excludes(f.rfc2136_option);
  f.tsig_option->needs(f.rfc2136_option);
  f.zone_option->needs(f.rfc2136_option);
  cmd->add_option("--dns-wait", f.dns_wait, "Seconds to wait after placing the TXT records (DNS propagation)")
      ->capture_default_str();
  f.email_option = cmd->add_option("--email", f.email, "Contact address for the ACME account");
  cmd->add_option("--timeout", f.timeout, "Seconds one order may take")->capture_default_str();
  cmd->add_flag("--force", f.force, renewing ? "Renew now, due or not" : "Replace a certificate already named NAME");
  f.export_option = cmd->add_option("--export-format", f.export_format,
                                    "After a new certificate, export it again: pem, pkcs12 or jks");
  cmd->add_option("--export-out", f.export_out, "Directory for --export-format (default DIR/export/NAME)");
  cmd->add_option("--password-file", f.password_file, "Store password for --export-format (its first line)");
  cmd->add_flag("--legacy", f.legacy, "PKCS12 export in the legacy 3DES form");
}

Result<acme::Options> to_options(const AcmeFlags& f) {
  acme::Options options;
  options.dir = f.dir;
  options.name = f.name;
  options.server = f.server;
  options.domains = f.domains;
  if (f.server_ca_option->count()) options.server_ca = fs::path(f.server_ca);
  if (f.hook_option->count()) options.dns.hook = fs::path(f.hook);
  if (f.rfc2136_option->count()) options.dns.rfc2136_server = f.rfc2136;
  if (f.tsig_option->count()) options.dns.tsig_key = fs::path(f.tsig_key);
  if (f.zone_option->count()) options.dns.zone = f.zone;
  options.dns.propagation_wait = std::chrono::seconds(std::max(0, f.dns_wait));
  if (f.email_option->count()) options.email = f.email;
  options.force = f.force;
  options.timeout = std::chrono::seconds(std::max(10, f.timeout));
  if (f.export_option->count()) {
    auto format = pki::parse_export_format(f.export_format);
    if (!format) return format.error();
    acme::ReExport to;
    to.format = *format;
    to.out = f.export_out.empty() ? fs::path(f.dir) / "export" / f.name : fs::path(f.export_out);
    if (!f.password_file.empty()) {
      auto password = pki::read_password_file(f.password_file);
      if (!password) return password.error();
      to.password = *password;
    }
    if (to.format != pki::ExportFormat::pem) BULWARK_TRY(pki::check_store_password(to.password));
    to.legacy_pkcs12 = f.legacy;
    options.export_to = std::move(to);
  } else if (!f.export_out.empty() || !f.password_file.empty()) {
    return make_error(ErrorKind::invalid_argument, "--export-out and --password-file go with --export-format");
  }
  return options;
}

int watch(const acme::Options& options, int interval_seconds) {
  if (interval_seconds < 60) return fail(make_error(ErrorKind::invalid_argument, "--check-interval must be at least 60 seconds"));
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  log::info("acme: watching {} (checking every {} s; SIGTERM or Ctrl-C stops)", options.name, interval_seconds);
  acme::watch(
      options, std::chrono::seconds(interval_seconds),
      [](const Result<pki::Outcome>& outcome) {
        if (outcome) print(*outcome);
        else log::error("acme: renewal failed (the current certificate stays in place): {}", outcome.error().message);
      },
      [] { return stop_requested != 0; });
  return 0;
}

void add_acme_commands(CLI::App& app) {
  auto* pki_group = cli::command_group(app, "pki", "Bulwark's own certificate authority: CA, broker and client certificates, keystores");
  auto* group = pki_group->add_subcommand("acme", "Certificates from an ACME server (Let's Encrypt, ...) proven by DNS-01");
  group->require_subcommand(1);

  {
    auto* cmd = group->add_subcommand("issue", "Get a new key and certificate for NAME from an ACME server");
    auto flags = std::make_shared<AcmeFlags>();
    add_common_flags(cmd, *flags, false);
    cli::set_action(cmd, [flags] {
      auto options = to_options(*flags);
      if (!options) return fail(options.error());
      auto outcome = acme::issue(*options);
      if (!outcome) return fail(outcome.error());
      print(*outcome);
      return 0;
    });
  }
  {
    auto* cmd = group->add_subcommand("renew", "Renew NAME with a new key when due (ARI or two thirds of its lifetime)");
    auto flags = std::make_shared<AcmeFlags>();
    add_common_flags(cmd, *flags, true);
    cmd->add_flag("--watch", flags->watch, "Keep running and renew whenever due");
    cmd->add_option("--check-interval", flags->check_interval, "Seconds between checks with --watch")->capture_default_str();
    cli::set_action(cmd, [flags] {
      auto options = to_options(*flags);
      if (!options) return fail(options.error());
      if (flags->watch) return watch(*options, flags->check_interval);
      auto outcome = acme::renew(*options);
      if (!outcome) return fail(outcome.error());
      print(*outcome);
      return 0;
    });
  }
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_acme_commands);
