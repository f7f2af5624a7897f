// `bulwark pki acme issue|renew`: certificates from an RFC 8555 ACME server (Let's Encrypt, pebble,
// ...) proven by DNS-01, filed into a PKI directory like `pki issue` files its own (see pki/pki.h,
// record_external) so that `pki export` and `pki list` work for them. docs/acme.md is the user guide.
//
// Stored in DIR: issued/NAME/{cert.pem, key.pem (0600), chain.pem, acme.json} and the account per
// ACME server: acme/account-<first 16 hex of SHA-256(server URL)>.key (P-256, 0600) and .json (its
// URL, the "kid"; 0600); DIR/acme is 0700. Nothing here logs a key or the TSIG secret.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "pki/pki.h"

namespace bulwark::acme {

namespace fs = std::filesystem;

// Exactly one of hook and rfc2136_server (with tsig_key) is set.
struct Dns01Options {
  std::optional<fs::path> hook;               // lego exec contract: PROGRAM present|cleanup FQDN VALUE
  std::optional<std::string> rfc2136_server;  // HOST:PORT of an authoritative server taking updates
  std::optional<fs::path> tsig_key;           // tsig-keygen's key file
  std::optional<std::string> zone;            // default: the SOA the server names for the record
  std::chrono::seconds propagation_wait{0};   // after presenting, before asking the server to validate
};

// After a new certificate: `pki export NAME` again into `out`, replacing the files there in place
// (atomic renames, which a broker's keystore hot reload sees).
struct ReExport {
  pki::ExportFormat format = pki::ExportFormat::pem;
  fs::path out;
  std::string password;
  bool legacy_pkcs12 = false;
};

struct Options {
  fs::path dir = "pki";
  std::string name;
  std::string server;                // the directory URL; renew: default the one NAME came from
  std::vector<std::string> domains;  // renew: default the domains NAME was issued for
  std::optional<fs::path> server_ca;  // trusted for the ACME server's TLS besides the system CAs
  Dns01Options dns;
  std::optional<std::string> email;  // account contact (mailto:)
  bool force = false;                // issue: replace an existing NAME; renew: renew even if not due
  std::optional<ReExport> export_to;
  std::chrono::seconds timeout{300};  // for one order, from newOrder to the certificate
};

// A new key and certificate for NAME. Refuses an existing NAME unless force.
Result<pki::Outcome> issue(const Options& options);
// Renews NAME with a new key when forced or due (ARI window when the server offers renewalInfo, else
// two thirds of the lifetime); otherwise says when it will be due. Old files stay on any failure.
Result<pki::Outcome> renew(const Options& options);
// renew() now and then every `interval` until should_stop() is true; each outcome or error goes to
// `report`. A failed renewal is tried again after min(interval, 15 min).
void watch(const Options& options, std::chrono::seconds interval,
           const std::function<void(const Result<pki::Outcome>&)>& report, const std::function<bool()>& should_stop);

}  // namespace bulwark::acme
