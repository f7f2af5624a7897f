// `bulwark pki verify CERT`: loads the certificate (PEM, DER, JKS, PKCS12), the trust anchors (--ca, or
// the PKI directory's CA) and an optional key, runs pki::verify and prints one line per finding.
// Exit codes: 0 no ERROR, 1 any ERROR, 2 the inputs could not be used (missing file, wrong password).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/files.h"
#include "cli/command.h"
#include "pki/verify.h"

namespace {

namespace fs = std::filesystem;
using namespace bulwark;

struct VerifyOptions {
  std::string cert;
  std::vector<std::string> hosts;
  std::string ca;
  std::string dir = "pki";
  std::string key;
  std::string password;
  std::string password_file;
  std::string purpose = "any";
  std::string at;
};

constexpr int kUsageError = 2;

int usage_error(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return kUsageError;
}

bool file_exists(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

Result<std::string> password_from_file(const fs::path& path) {
  auto text = read_file(path);
  if (!text) return make_error(text.error().kind, "cannot read the password file: " + text.error().message);
  std::string password = text->substr(0, text->find_first_of("\r\n"));
  if (password.empty()) return make_error(ErrorKind::invalid_argument, path.string() + " holds an empty password");
  return password;
}

struct Counts {
  int errors = 0;
  int warnings = 0;
};

void print_findings(const std::vector<pki::Finding>& findings, Counts& counts) {
  for (const auto& f : findings) {
    if (f.severity == pki::Severity::error) ++counts.errors;
    if (f.severity == pki::Severity::warning) ++counts.warnings;
    std::printf("  %-7s %-9s %s\n", std::string(pki::severity_name(f.severity)).c_str(), f.check.c_str(),
                f.message.c_str());
  }
}

std::vector<X509Ptr> copies(const std::vector<X509Ptr>& certs) {
  std::vector<X509Ptr> out;
  for (const auto& c : certs) out.push_back(share(c.get()));
  return out;
}

int run(const VerifyOptions& options) {
  // Checked here rather than by CLI11 so these usage problems exit with 2 like the others.
  if (options.cert.empty()) return usage_error("give the certificate, chain or keystore to check (CERT)");
  if (!options.password.empty() && !options.password_file.empty())
    return usage_error("give either --password or --password-file, not both");
  std::string password = options.password;
  if (!options.password_file.empty()) {
    auto from_file = password_from_file(options.password_file);
    if (!from_file) return usage_error(from_file.error().message);
    password = std::move(*from_file);
  }
  auto purpose = pki::parse_purpose(options.purpose);
  if (!purpose) return usage_error(purpose.error().message);
  std::optional<std::time_t> at;
  if (!options.at.empty()) {
    auto parsed = pki::parse_time(options.at);
    if (!parsed) return usage_error(parsed.error().message);
    at = *parsed;
  }

  // CERT may also name a certificate issued in the PKI directory.
  fs::path dir = options.dir;
  fs::path cert_path = options.cert;
  fs::path issued_key;
  if (!fs::exists(cert_path) && options.cert.find('/') == std::string::npos &&
      file_exists(dir / "issued" / options.cert / "chain.pem")) {
    cert_path = dir / "issued" / options.cert / "chain.pem";
    if (file_exists(dir / "issued" / options.cert / "key.pem")) issued_key = dir / "issued" / options.cert / "key.pem";
  }

  auto loaded = pki::load_certificates(cert_path, password);
  if (!loaded) return usage_error(loaded.error().message);
  if (loaded->sets.empty() && loaded->trusted.empty())
    return usage_error(cert_path.string() + " holds no certificate entries");

  EvpPkeyPtr key;
  fs::path key_path = !options.key.empty() ? fs::path(options.key) : issued_key;
  if (!key_path.empty()) {
    auto loaded_key = pki::load_private_key(key_path, password);
    if (!loaded_key) return usage_error(loaded_key.error().message);
    key = std::move(*loaded_key);
  }

  std::vector<X509Ptr> anchors, untrusted, known;
  std::string anchors_source;
  fs::path root = dir / "ca" / "root.crt";
  fs::path intermediate = dir / "ca" / "intermediate.crt";
  auto pki_certs = [&](std::vector<X509Ptr>& into) -> Status {
    for (const auto& path : {root, intermediate}) {
      if (!file_exists(path)) continue;
      auto certs = pki::load_trust_anchors(path, {});
      if (!certs) return certs.error();
      for (auto& c : *certs) into.push_back(std::move(c));
    }
    return Status::success();
  };
  if (!options.ca.empty()) {
    auto bundle = pki::load_trust_anchors(options.ca, password);
    if (!bundle) return usage_error(bundle.error().message);
    anchors = std::move(*bundle);
    anchors_source = options.ca;
    // Our own PKI's CAs, if any, only help to explain a failure.
    if (file_exists(root)) {
      auto status = pki_certs(known);
      if (!status.ok()) known.clear();
    }
  } else if (file_exists(root)) {
    auto loaded_root = pki::load_trust_anchors(root, {});
    if (!loaded_root) return usage_error(loaded_root.error().message);
    anchors = std::move(*loaded_root);
    anchors_source = root.string();
    if (file_exists(intermediate)) {
      auto loaded_int = pki::load_trust_anchors(intermediate, {});
      if (!loaded_int) return usage_error(loaded_int.error().message);
      untrusted = std::move(*loaded_int);
    }
  }

  std::printf("Checking %s (%s)\n", cert_path.string().c_str(), loaded->format.c_str());
  if (!key_path.empty()) std::printf("Private key: %s\n", key_path.string().c_str());
  if (anchors.empty())
    std::printf("Trust anchors: none: no --ca given and %s does not exist\n", root.string().c_str());
  else
    std::printf("Trust anchors: %s (%zu certificate%s)\n", anchors_source.c_str(), anchors.size(),
                anchors.size() == 1 ? "" : "s");

  Counts counts;
  for (auto& set : loaded->sets) {
    if (set.chain.empty()) {
      std::printf("\n%s: no certificate chain\n", set.label.c_str());
      ++counts.errors;
      continue;
    }
    pki::VerifyInput input;
    X509* leaf = set.chain[0].get();
    // A file of CA certificates only (an intermediate, a bundle) is checked as CAs, not as a leaf.
    bool ca_file = set.label.empty() && pki::only_ca_certificates(set.chain);
    std::printf("\n%s%s%s\n  subject %s, issuer %s\n",
                set.label.empty() ? (ca_file ? "CA certificate" : "Certificate") : "Key ",
                set.label.c_str(), set.chain.size() > 1 ? fmt::format(" (and {} more certificate{} in the file)",
                                                                      set.chain.size() - 1,
                                                                      set.chain.size() == 2 ? "" : "s")
                                                              .c_str()
                                                        : "",
                pki::subject_of(leaf).c_str(), pki::issuer_of(leaf).c_str());
    input.chain = std::move(set.chain);
    input.key = key ? share(key.get()) : std::move(set.key);
    input.anchors = copies(anchors);
    input.untrusted = copies(untrusted);
    input.known_cas = copies(known);
    input.anchors_source = anchors_source;
    input.hosts = options.hosts;
    input.purpose = *purpose;
    input.at = at;
    print_findings(ca_file ? pki::verify_ca(input) : pki::verify(input), counts);
  }
  for (auto& trusted : loaded->trusted) {
    std::string label = "trusted entry '" + trusted.alias + "'";
    std::printf("\nTrusted entry '%s'\n  subject %s\n", trusted.alias.c_str(), pki::subject_of(trusted.cert.get()).c_str());
    print_findings(pki::verify_trusted_certificate(trusted.cert.get(), label, at), counts);
  }

  std::printf("\n%s: %d error%s, %d warning%s\n", counts.errors ? "FAILED" : "PASSED", counts.errors,
              counts.errors == 1 ? "" : "s", counts.warnings, counts.warnings == 1 ? "" : "s");
  return counts.errors ? 1 : 0;
}

void add_pki_verify_command(CLI::App& app) {
  auto* pki = cli::command_group(app, "pki", "Certificate authority and certificates for a Kafka cluster");
  auto* command = pki->add_subcommand(
      "verify", "Check a certificate, chain or keystore as TLS peers will, and explain problems in plain words");
  auto options = std::make_shared<VerifyOptions>();
  command->add_option("CERT", options->cert,
                      "Certificate to check: PEM (one certificate, a chain, or key and chain), DER, JKS or PKCS12; "
                      "or the name of a certificate issued in --dir (required)");
  command->add_option("--host", options->hosts, "Host name or IP address clients connect to (repeatable)");
  command->add_option("--ca", options->ca,
                      "Trust anchors: a PEM bundle or a JKS/PKCS12 truststore (default: DIR/ca/root.crt)");
  command->add_option("--dir", options->dir, "Bulwark PKI directory")->capture_default_str();
  command->add_option("--key", options->key, "Private key to match against the certificate (PEM or DER)");
  command->add_option("--password", options->password, "Password of the keystore, truststore or encrypted key");
  command->add_option("--password-file", options->password_file, "File whose first line is the password");
  command->add_option("--purpose", options->purpose, "What the certificate is for: server, client or any")
      ->capture_default_str();
  command->add_option("--at", options->at, "Check as of this time (2026-12-31, 2026-12-31T08:00:00Z, @unix)");
  cli::set_action(command, [options] { return run(*options); });
}

BULWARK_REGISTER_COMMAND(add_pki_verify_command);

}  // namespace
