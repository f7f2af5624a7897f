// Bulwark's own PKI: a root and an intermediate CA in a state directory, broker and client
// certificates issued from the intermediate, keystores for Kafka clients, revocation and CRLs.
//
// State directory layout (other tools, e.g. `pki verify`, rely on it):
//   DIR/ca/root.crt, DIR/ca/root.key (0600; absent when moved with root_key_out),
//   DIR/ca/intermediate.crt, DIR/ca/intermediate.key (0600), DIR/ca/ca-bundle.pem (intermediate, root),
//   DIR/issued/NAME/cert.pem, key.pem (0600; absent when signed from a CSR), chain.pem (leaf, int., root),
//   DIR/state.json (index of issued certificates), DIR/crl.pem (signed by the intermediate).
//
// Every operation plans all its files in memory first and writes them only when nothing failed; each
// file is written atomically and a failed write removes what the operation wrote, so a failure never
// leaves a half-made PKI or keystore behind. Nothing is overwritten unless `force` is set. Returned
// `messages` say in plain words what was done; they never hold a password or a key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/openssl.h"
#include "base/result.h"
#include "pki/parse.h"

namespace bulwark::pki {

namespace fs = std::filesystem;

struct Outcome {
  std::vector<std::string> messages;
};

struct InitOptions {
  fs::path dir = "pki";
  KeyType key_type = KeyType::ec_p256;
  std::vector<SubjectField> subject;  // without CN; most specific first
  std::string root_cn = "Bulwark Root CA";
  std::string intermediate_cn = "Bulwark Intermediate CA";
  int root_days = 3650;
  int intermediate_days = 1825;
  std::optional<fs::path> root_key_out;  // write the root key here instead of DIR/ca/root.key
  // Non-empty: both CA keys are written encrypted (PKCS#8, AES-256-CBC) under this passphrase, and
  // every later signing command needs it.
  std::string ca_key_password;
  bool force = false;
};
Result<Outcome> init(const InitOptions& options);

enum class CertKind { broker, client };

struct IssueOptions {
  fs::path dir = "pki";
  CertKind kind = CertKind::broker;
  std::string name;
  SanList sans;
  KeyType key_type = KeyType::ec_p256;
  int days = 365;
  std::optional<fs::path> csr;  // sign this CSR (PEM or DER) instead of making a key
  std::optional<fs::path> out;  // also copy cert/key/chain here
  std::string ca_key_password;  // decrypts the CA keys when they were made with one (--ca-key-password-file)
  bool force = false;
};
Result<Outcome> issue(const IssueOptions& options);

enum class ExportFormat { pem, pkcs12, jks };
Result<ExportFormat> parse_export_format(std::string_view text);

struct ExportOptions {
  fs::path dir = "pki";
  std::string name;
  ExportFormat format = ExportFormat::pem;
  std::string password;  // required for jks and pkcs12; for pem, encrypts the key when not empty
  bool legacy_pkcs12 = false;
  std::optional<fs::path> out;  // default DIR/export/NAME
  bool force = false;
};
Result<Outcome> export_credentials(const ExportOptions& options);

// Reads a password file: the first line, without its line ending. Refuses a missing or empty file.
Result<std::string> read_password_file(const fs::path& path);
// Kafka and keytool refuse store passwords under 6 characters.
Status check_store_password(const std::string& password);

struct IssuedInfo {
  std::string name;
  CertKind kind = CertKind::broker;
  std::string serial;     // upper-case hex
  std::string subject;    // RFC 2253, as Kafka's default principal builder shows it
  std::string common_name;
  SanList sans;
  std::string key_type;
  std::int64_t not_after = 0;  // seconds since the epoch
  bool from_csr = false;
  bool revoked = false;
  std::string revocation_reason;
};
Result<std::vector<IssuedInfo>> list(const fs::path& dir);

struct RenewOptions {
  fs::path dir = "pki";
  std::string name;
  bool keep_key = false;
  std::optional<int> days;  // default: the same length as before
  std::optional<KeyType> key_type;  // default: the same type as before
  std::string ca_key_password;  // decrypts the CA keys when they were made with one (--ca-key-password-file)
};
Result<Outcome> renew(const RenewOptions& options);

// Which serials of a name: all it ever had (the default), those a renewal superseded, or one.
enum class RevokeWhich { all, superseded, serial };

struct RevokeOptions {
  fs::path dir = "pki";
  std::string name;
  RevokeWhich which = RevokeWhich::all;
  std::string serial;  // for RevokeWhich::serial: hex, with or without colons or 0x
  int reason = 0;
  std::string ca_key_password;  // decrypts the CA keys when they were made with one (--ca-key-password-file)
};
Result<Outcome> revoke(const RevokeOptions& options);

struct CrlOptions {
  fs::path dir = "pki";
  int days = 30;  // nextUpdate
  std::optional<fs::path> out;  // also copy crl.pem here
  std::string ca_key_password;  // decrypts the CA keys when they were made with one (--ca-key-password-file)
  bool force = false;
};
Result<Outcome> crl(const CrlOptions& options);

struct BootstrapOptions {
  fs::path dir = "pki";
  std::vector<BrokerSpec> brokers;
  std::vector<std::string> clients;
  ExportFormat format = ExportFormat::jks;
  std::optional<std::string> password;  // generated into DIR/bootstrap.password when absent
  bool legacy_pkcs12 = false;
  KeyType key_type = KeyType::ec_p256;
  std::vector<SubjectField> subject;  // for init when the CA is absent
  std::optional<fs::path> out;        // default DIR/export; one folder per name inside
  int days = 365;
  std::string ca_key_password;  // for an existing encrypted CA, or to encrypt the CA bootstrap makes
  bool force = false;
  // When set, also a complete server.properties per broker (<name>/<name>.node.properties): a combined
  // broker+controller node, node.id = its position (1, 2, ...), SSL for clients and between the nodes,
  // the quorum of every broker. Broker i listens on its first IP SAN (else its first DNS SAN), port
  // base + 10(i-1) for clients and the next one for its controller; its data dir is <name>/data.
  std::optional<int> node_configs_base_port;
};
Result<Outcome> bootstrap(const BootstrapOptions& options);

// --- Certificates from another CA (an ACME server such as Let's Encrypt). `pki acme` files them under
// DIR/issued/NAME like the PKI's own (cert.pem, key.pem 0600, chain.pem = leaf then the chain the CA
// sent) and records NAME in state.json, so `pki list` and `pki export` work for them. The file
// DIR/issued/NAME/acme.json marks such a name (and keeps what renewing needs). DIR needs no CA of its
// own: without one it holds only such certificates, and `pki init` later keeps them.
struct ExternalCertificate {
  fs::path dir = "pki";
  std::string name;
  std::string chain_pem;    // leaf first, then its issuers
  std::string key_pem;      // the leaf's private key
  std::string marker_json;  // contents of DIR/issued/NAME/acme.json
};
Result<Outcome> record_external(const ExternalCertificate& certificate);
fs::path external_marker(const fs::path& dir, const std::string& name);

struct Session;
// The certificates above NAME's leaf in an exported chain, nearest first; the last is what a
// truststore holds. DIR/ca's intermediate and root, or for an external name those its CA sent.
Result<std::vector<X509Ptr>> issuer_chain(const Session& session, const std::string& name);

}  // namespace bulwark::pki
