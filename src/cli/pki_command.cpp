// `bulwark pki ...`: the CA, issuing, exporting, listing, renewing and revoking certificates. The verbs
// only parse flags and print; the work is in src/pki (pki/pki.h).
#include <cstdio>
#include <chrono>
#include <ctime>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "pki/pki.h"
#include "pki/rotate.h"

namespace {

using namespace bulwark;
namespace fs = std::filesystem;

int fail(const Error& error) {
  std::fprintf(stderr, "error: %s\n", error.message.c_str());
  return 1;
}

int report(const Result<pki::Outcome>& outcome) {
  if (!outcome) return fail(outcome.error());
  for (const auto& line : outcome->messages) std::printf("%s\n", line.c_str());
  return 0;
}

struct PasswordFlags {
  std::string file;
  std::string value;
  CLI::Option* file_option = nullptr;
  CLI::Option* value_option = nullptr;

  void add(CLI::App* command) {
    file_option = command->add_option("--password-file", file, "File whose first line is the store password");
    value_option = command->add_option("--password", value, "The store password (prefer --password-file: "
                                                            "command lines are visible to other users)");
    file_option->excludes(value_option);
  }
  bool given() const { return file_option->count() > 0 || value_option->count() > 0; }
  Result<std::string> get() const {
    if (file_option->count() > 0) return pki::read_password_file(file);
    if (value_option->count() > 0) {
      if (value.empty()) return make_error(ErrorKind::invalid_argument, "--password is empty");
      std::fprintf(stderr, "warning: --password puts the password on the command line, where other users of this "
                           "machine can read it (ps, /proc) and shell history keeps it; prefer --password-file\n");
      return value;
    }
    return std::string();
  }
};

// --ca-key-password-file: the passphrase of CA keys made with one (pki init --ca-key-password-file).
struct CaKeyPasswordFlag {
  std::string file;
  CLI::Option* option = nullptr;

  void add(CLI::App* command, const char* help = "File whose first line is the CA keys' passphrase (when they have one)") {
    option = command->add_option("--ca-key-password-file", file, help);
  }
  // Fills `out` when the flag was given; an exit code when its file cannot be read.
  std::optional<int> read_into(std::string& out) const {
    if (option->count() == 0) return std::nullopt;
    auto passphrase = pki::read_password_file(file);
    if (!passphrase) return fail(passphrase.error());
    out = *passphrase;
    return std::nullopt;
  }
};

std::string join(const std::vector<std::string>& values, const char* separator = ", ") {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : separator) + v;
  return out;
}

void add_pki_commands(CLI::App& app) {
  auto* group = cli::command_group(app, "pki", "Bulwark's own certificate authority: CA, broker and client certificates, keystores");

  // --- init
  {
    auto* cmd = group->add_subcommand("init", "Create a root CA and an intermediate CA in the PKI directory");
    struct Flags {
      std::string dir = "./pki", key = "ec:p256", subject, root_cn = "Bulwark Root CA",
                  intermediate_cn = "Bulwark Intermediate CA", root_key_out;
      int root_days = 3650, intermediate_days = 1825;
      bool force = false;
      CaKeyPasswordFlag ca_key_password;
    };
    auto flags = std::make_shared<Flags>();
    cmd->add_option("--dir", flags->dir, "PKI state directory")->capture_default_str();
    cmd->add_option("--key", flags->key, "Key type: rsa:2048, rsa:4096, ec:p256, ec:p384, ed25519")->capture_default_str();
    flags->ca_key_password.add(cmd, "Encrypt both CA keys under the passphrase in this file (its first line)");
    cmd->add_option("--subject", flags->subject, "Subject fields besides CN, e.g. \"O=SLS,OU=DevOps,L=Tehran,C=IR\"");
    cmd->add_option("--root-cn", flags->root_cn, "Common name of the root CA")->capture_default_str();
    cmd->add_option("--intermediate-cn", flags->intermediate_cn, "Common name of the intermediate CA")->capture_default_str();
    cmd->add_option("--root-days", flags->root_days, "Root CA validity in days")->capture_default_str();
    cmd->add_option("--intermediate-days", flags->intermediate_days, "Intermediate CA validity in days")->capture_default_str();
    cmd->add_option("--root-key-out", flags->root_key_out,
                    "Write the root CA key to this file instead of the PKI directory (to keep it offline)");
    cmd->add_flag("--force", flags->force, "Replace an existing CA");
    auto* root_key_out = cmd->get_option("--root-key-out");
    cli::set_action(cmd, [flags, root_key_out] {
      pki::InitOptions options;
      options.dir = flags->dir;
      auto key = pki::parse_key_type(flags->key);
      if (!key) return fail(key.error());
      options.key_type = *key;
      auto subject = pki::parse_subject(flags->subject);
      if (!subject) return fail(subject.error());
      options.subject = *subject;
      options.root_cn = flags->root_cn;
      options.intermediate_cn = flags->intermediate_cn;
      options.root_days = flags->root_days;
      options.intermediate_days = flags->intermediate_days;
      if (root_key_out->count() > 0) options.root_key_out = fs::path(flags->root_key_out);
      if (auto failed = flags->ca_key_password.read_into(options.ca_key_password)) return *failed;
      options.force = flags->force;
      return report(pki::init(options));
    });
  }

  // --- issue
  {
    auto* cmd = group->add_subcommand("issue", "Issue a broker or client certificate from the intermediate CA");
    struct Flags {
      std::string kind, name, dir = "./pki", key = "ec:p256", csr, out;
      std::vector<std::string> dns, ip;
      int days = 365;
      bool force = false;
      CaKeyPasswordFlag ca_key_password;
    };
    auto flags = std::make_shared<Flags>();
    flags->ca_key_password.add(cmd);
    cmd->add_option("kind", flags->kind, "broker (serverAuth + clientAuth) or client (clientAuth)")
        ->required()
        ->check(CLI::IsMember({"broker", "client"}));
    cmd->add_option("name", flags->name, "Certificate name: its CN (the Kafka principal), file and alias name")->required();
    cmd->add_option("--dir", flags->dir, "PKI state directory")->capture_default_str();
    cmd->add_option("--dns", flags->dns, "DNS SAN(s), repeatable or comma-separated");
    cmd->add_option("--ip", flags->ip, "IP SAN(s), repeatable or comma-separated");
    auto* key_option = cmd->add_option("--key", flags->key, "Key type: rsa:2048, rsa:4096, ec:p256, ec:p384, ed25519")
                           ->capture_default_str();
    cmd->add_option("--days", flags->days, "Validity in days")->capture_default_str();
    auto* csr_option = cmd->add_option("--csr", flags->csr, "Sign this CSR (PEM or DER, e.g. from keytool -certreq)");
    auto* out_option = cmd->add_option("--out", flags->out, "Also copy the certificate, chain and key into this directory");
    cmd->add_flag("--force", flags->force, "Replace a certificate already issued under this name");
    cli::set_action(cmd, [flags, key_option, csr_option, out_option] {
      pki::IssueOptions options;
      options.dir = flags->dir;
      options.kind = flags->kind == "client" ? pki::CertKind::client : pki::CertKind::broker;
      options.name = flags->name;
      auto sans = pki::parse_sans(flags->dns, flags->ip);
      if (!sans) return fail(sans.error());
      options.sans = *sans;
      auto key = pki::parse_key_type(flags->key);
      if (!key) return fail(key.error());
      options.key_type = *key;
      options.days = flags->days;
      if (csr_option->count() > 0) {
        if (key_option->count() > 0)
          return fail(make_error(ErrorKind::invalid_argument, "--key has no meaning with --csr: the key is the CSR's"));
        options.csr = fs::path(flags->csr);
      }
      if (out_option->count() > 0) options.out = fs::path(flags->out);
      if (auto failed = flags->ca_key_password.read_into(options.ca_key_password)) return *failed;
      options.force = flags->force;
      return report(pki::issue(options));
    });
  }

  // --- export
  {
    auto* cmd = group->add_subcommand("export", "Write a keystore and a truststore (JKS, PKCS12 or PEM) for an issued certificate");
    struct Flags {
      std::string name, dir = "./pki", format = "pem", out;
      bool legacy = false, force = false;
      PasswordFlags password;
    };
    auto flags = std::make_shared<Flags>();
    cmd->add_option("name", flags->name, "Name of the issued certificate")->required();
    cmd->add_option("--dir", flags->dir, "PKI state directory")->capture_default_str();
    cmd->add_option("--format", flags->format, "pem, pkcs12 or jks")->capture_default_str();
    flags->password.add(cmd);
    cmd->add_flag("--legacy", flags->legacy, "PKCS12 in the legacy 3DES/RC2 form (for old Java and OpenSSL)");
    auto* out_option = cmd->add_option("--out", flags->out, "Output directory (default DIR/export/NAME)");
    cmd->add_flag("--force", flags->force, "Replace existing files");
    cli::set_action(cmd, [flags, out_option] {
      pki::ExportOptions options;
      options.dir = flags->dir;
      options.name = flags->name;
      auto format = pki::parse_export_format(flags->format);
      if (!format) return fail(format.error());
      options.format = *format;
      auto password = flags->password.get();
      if (!password) return fail(password.error());
      options.password = *password;
      options.legacy_pkcs12 = flags->legacy;
      if (flags->legacy && options.format != pki::ExportFormat::pkcs12)
        return fail(make_error(ErrorKind::invalid_argument, "--legacy applies only to --format pkcs12"));
      if (out_option->count() > 0) options.out = fs::path(flags->out);
      options.force = flags->force;
      return report(pki::export_credentials(options));
    });
  }

  // --- list
  {
    auto* cmd = group->add_subcommand("list", "List issued certificates: serial, principal, SANs, days left, revoked");
    auto dir = std::make_shared<std::string>("./pki");
    cmd->add_option("--dir", *dir, "PKI state directory")->capture_default_str();
    cli::set_action(cmd, [dir] {
      auto issued = pki::list(*dir);
      if (!issued) return fail(issued.error());
      if (issued->empty()) {
        std::printf("No certificates issued yet in %s\n", dir->c_str());
        return 0;
      }
      std::time_t now = std::time(nullptr);
      for (const auto& cert : *issued) {
        std::vector<std::string> sans;
        for (const auto& d : cert.sans.dns) sans.push_back("DNS:" + d);
        for (const auto& i : cert.sans.ips) sans.push_back("IP:" + i);
        long long seconds_left = static_cast<long long>(cert.not_after - now);
        long long days_left = seconds_left >= 0 ? seconds_left / 86400 : -((-seconds_left + 86399) / 86400);
        std::printf("%s (%s)\n", cert.name.c_str(), cert.kind == pki::CertKind::broker ? "broker" : "client");
        std::printf("  serial:    %s\n", cert.serial.c_str());
        std::printf("  principal: User:%s (CN %s; with RULE:^CN=([^,]+).*$/$1/ it is User:%s)\n", cert.subject.c_str(),
                    cert.common_name.c_str(), cert.common_name.c_str());
        std::printf("  SANs:      %s\n", sans.empty() ? "(none)" : join(sans).c_str());
        std::printf("  key:       %s%s\n", cert.key_type.c_str(), cert.from_csr ? " (signed from a CSR)" : "");
        if (days_left >= 0) std::printf("  expires:   in %lld days\n", days_left);
        else std::printf("  expires:   EXPIRED %lld days ago\n", -days_left);
        if (cert.revoked) std::printf("  revoked:   yes (%s)\n", cert.revocation_reason.c_str());
        else std::printf("  revoked:   no\n");
      }
      return 0;
    });
  }

  // --- renew
  {
    auto* cmd = group->add_subcommand("renew", "Reissue a certificate with the same subject and SANs and a new serial");
    struct Flags {
      std::string name, dir = "./pki", key;
      int days = 0;
      bool keep_key = false;
      CaKeyPasswordFlag ca_key_password;
    };
    auto flags = std::make_shared<Flags>();
    flags->ca_key_password.add(cmd);
    cmd->add_option("name", flags->name, "Name of the issued certificate")->required();
    cmd->add_option("--dir", flags->dir, "PKI state directory")->capture_default_str();
    cmd->add_flag("--keep-key", flags->keep_key, "Keep the current key instead of making a new one");
    auto* days_option = cmd->add_option("--days", flags->days, "Validity in days (default: as before)");
    auto* key_option = cmd->add_option("--key", flags->key, "Key type for the new key (default: as before)");
    cli::set_action(cmd, [flags, days_option, key_option] {
      pki::RenewOptions options;
      options.dir = flags->dir;
      options.name = flags->name;
      options.keep_key = flags->keep_key;
      if (days_option->count() > 0) options.days = flags->days;
      if (key_option->count() > 0) {
        if (flags->keep_key)
          return fail(make_error(ErrorKind::invalid_argument, "--key and --keep-key cannot be used together"));
        auto key = pki::parse_key_type(flags->key);
        if (!key) return fail(key.error());
        options.key_type = *key;
      }
      if (auto failed = flags->ca_key_password.read_into(options.ca_key_password)) return *failed;
      return report(pki::renew(options));
    });
  }

  // --- revoke
  {
    auto* cmd = group->add_subcommand("revoke", "Revoke every serial a certificate name has had (or --superseded, "
                                                "or --serial S) and write a new CRL");
    struct Flags {
      std::string name, dir = "./pki", reason = "unspecified", serial;
      bool superseded = false;
      CaKeyPasswordFlag ca_key_password;
    };
    auto flags = std::make_shared<Flags>();
    flags->ca_key_password.add(cmd);
    cmd->add_option("name", flags->name, "Name of the issued certificate")->required();
    auto* superseded = cmd->add_flag("--superseded", flags->superseded,
                                     "Only the serials a renewal replaced (the current one stays valid)");
    cmd->add_option("--serial", flags->serial, "Only this serial (hex, as `pki list` prints it)")->excludes(superseded);
    cmd->add_option("--dir", flags->dir, "PKI state directory")->capture_default_str();
    cmd->add_option("--reason", flags->reason,
                    "unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, "
                    "cessationOfOperation, certificateHold, privilegeWithdrawn")
        ->capture_default_str();
    cli::set_action(cmd, [flags] {
      pki::RevokeOptions options;
      options.dir = flags->dir;
      options.name = flags->name;
      options.which = flags->superseded ? pki::RevokeWhich::superseded
                      : flags->serial.empty() ? pki::RevokeWhich::all
                                              : pki::RevokeWhich::serial;
      options.serial = flags->serial;
      auto reason = pki::parse_revocation_reason(flags->reason);
      if (!reason) return fail(reason.error());
      options.reason = *reason;
      if (auto failed = flags->ca_key_password.read_into(options.ca_key_password)) return *failed;
      return report(pki::revoke(options));
    });
  }

  // --- rotate-ca
  {
    auto* cmd = group->add_subcommand(
        "rotate-ca", "Replace the CA with overlapping trust: 1 trust a new CA too, 2 reissue every certificate from "
                     "it, 3 drop the old one (each phase rewrites every export; running brokers reload them)");
    struct Flags {
      std::string dir = "./pki";
      int phase = 0;
      bool new_root = false;
      double wait_seconds = 10;
      PasswordFlags password;
      CaKeyPasswordFlag ca_key_password;
    };
    auto flags = std::make_shared<Flags>();
    flags->password.add(cmd);
    flags->ca_key_password.add(cmd);
    cmd->add_option("--dir", flags->dir, "PKI state directory")->capture_default_str();
    cmd->add_option("--phase", flags->phase, "Run only this phase (1, 2 or 3); without it, every phase that is left")
        ->check(CLI::Range(1, 3));
    cmd->add_flag("--new-root", flags->new_root, "Phase 1 makes a new root CA too, not only a new intermediate");
    cmd->add_option("--wait", flags->wait_seconds,
                    "Seconds between phases run at once, for every node to reload before the next one")
        ->capture_default_str();
    cmd->footer("Without --password-file, DIR/bootstrap.password (written by pki bootstrap) opens the keystores.");
    cli::set_action(cmd, [flags] {
      pki::RotateOptions options;
      options.dir = flags->dir;
      options.new_root = flags->new_root;
      auto password = flags->password.get();
      if (!password) return fail(password.error());
      options.password = *password;
      if (!flags->password.given()) {
        if (auto stored = pki::read_password_file(options.dir / "bootstrap.password")) options.password = *stored;
      }
      if (auto failed = flags->ca_key_password.read_into(options.ca_key_password)) return *failed;
      auto next = pki::next_rotation_phase(options.dir);
      if (!next) return fail(next.error());
      const int last = flags->phase != 0 ? flags->phase : 3;
      for (int phase = flags->phase != 0 ? flags->phase : *next; phase <= last; ++phase) {
        options.phase = phase;
        if (int code = report(pki::rotate_ca(options)); code != 0) return code;
        options.new_root = false;
        if (phase < last) {
          std::printf("Waiting %.0f s for every node to reload before phase %d\n", flags->wait_seconds, phase + 1);
          std::fflush(stdout);
          std::this_thread::sleep_for(std::chrono::duration<double>(flags->wait_seconds));
        }
      }
      return 0;
    });
  }

  // --- crl
  {
    auto* cmd = group->add_subcommand("crl", "Write DIR/crl.pem, signed by the intermediate CA");
    struct Flags {
      std::string dir = "./pki", out;
      int days = 30;
      bool force = false;
      CaKeyPasswordFlag ca_key_password;
    };
    auto flags = std::make_shared<Flags>();
    flags->ca_key_password.add(cmd);
    cmd->add_option("--dir", flags->dir, "PKI state directory")->capture_default_str();
    cmd->add_option("--days", flags->days, "Days until the CRL's next update")->capture_default_str();
    auto* out_option = cmd->add_option("--out", flags->out, "Also copy crl.pem into this directory");
    cmd->add_flag("--force", flags->force, "Replace an existing copy in --out");
    cli::set_action(cmd, [flags, out_option] {
      pki::CrlOptions options;
      options.dir = flags->dir;
      options.days = flags->days;
      if (out_option->count() > 0) options.out = fs::path(flags->out);
      if (auto failed = flags->ca_key_password.read_into(options.ca_key_password)) return *failed;
      options.force = flags->force;
      return report(pki::crl(options));
    });
  }

  // --- bootstrap
  {
    auto* cmd = group->add_subcommand(
        "bootstrap", "CA, broker and client certificates, keystores, truststores and Kafka/librdkafka configs in one go");
    struct Flags {
      std::string dir = "./pki", format = "jks", key = "ec:p256", subject, out;
      std::vector<std::string> brokers, clients;
      int days = 365;
      int node_configs = 0;
      bool legacy = false, force = false;
      PasswordFlags password;
      CaKeyPasswordFlag ca_key_password;
    };
    auto flags = std::make_shared<Flags>();
    cmd->add_option("--dir", flags->dir, "PKI state directory (a CA is made there when absent)")->capture_default_str();
    flags->ca_key_password.add(cmd, "The CA keys' passphrase: decrypts an existing CA, or encrypts the one made here");
    cmd->add_option("--broker", flags->brokers, "NAME=SAN,SAN,... (IP addresses become IP SANs); repeatable")
        ->allow_extra_args(false);
    cmd->add_option("--client", flags->clients, "Client name (its CN and Kafka principal); repeatable")
        ->allow_extra_args(false);
    cmd->add_option("--format", flags->format, "jks, pkcs12 or pem")->capture_default_str();
    flags->password.add(cmd);
    cmd->add_flag("--legacy", flags->legacy, "PKCS12 in the legacy 3DES/RC2 form");
    cmd->add_option("--key", flags->key, "Key type for the CA (when made) and the certificates")->capture_default_str();
    cmd->add_option("--subject", flags->subject, "Subject fields besides CN when the CA is made, e.g. \"O=SLS,C=IR\"");
    cmd->add_option("--days", flags->days, "Validity of the certificates in days")->capture_default_str();
    auto* out_option = cmd->add_option("--out", flags->out, "Output directory (default DIR/export), one folder per name");
    cmd->add_flag("--force", flags->force, "Reissue names already issued and replace existing files");
    auto* nodes_option = cmd->add_option(
        "--node-configs", flags->node_configs,
        "Also write a complete server.properties per broker (<name>.node.properties): KRaft combined nodes "
        "1, 2, ... with SSL everywhere; broker i uses ports PORT+10(i-1) (clients) and the next (controller)");
    cli::set_action(cmd, [flags, out_option, nodes_option] {
      pki::BootstrapOptions options;
      options.dir = flags->dir;
      for (const auto& text : flags->brokers) {
        auto spec = pki::parse_broker_spec(text);
        if (!spec) return fail(spec.error());
        options.brokers.push_back(*spec);
      }
      options.clients = flags->clients;
      auto format = pki::parse_export_format(flags->format);
      if (!format) return fail(format.error());
      options.format = *format;
      if (flags->password.given()) {
        auto password = flags->password.get();
        if (!password) return fail(password.error());
        options.password = *password;
      }
      options.legacy_pkcs12 = flags->legacy;
      auto key = pki::parse_key_type(flags->key);
      if (!key) return fail(key.error());
      options.key_type = *key;
      auto subject = pki::parse_subject(flags->subject);
      if (!subject) return fail(subject.error());
      options.subject = *subject;
      options.days = flags->days;
      if (out_option->count() > 0) options.out = fs::path(flags->out);
      if (auto failed = flags->ca_key_password.read_into(options.ca_key_password)) return *failed;
      options.force = flags->force;
      if (nodes_option->count() > 0) {
        if (flags->node_configs < 1 || flags->node_configs > 65535 - 10 * static_cast<int>(options.brokers.size()))
          return fail(make_error(ErrorKind::invalid_argument, "--node-configs needs a port that leaves room for " +
                                                                  std::to_string(options.brokers.size()) + " nodes"));
        options.node_configs_base_port = flags->node_configs;
      }
      return report(pki::bootstrap(options));
    });
  }
}

BULWARK_REGISTER_COMMAND(add_pki_commands);

}  // namespace
