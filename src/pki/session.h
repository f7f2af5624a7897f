// The PKI state directory held in memory while one command runs, and the files that command will
// write. Internal to src/pki: pki.cpp (CA, issue, renew, revoke, CRL) and export.cpp (export,
// bootstrap) share it so bootstrap can plan init + issue + export and write them all at once.
#pragma once

#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/openssl.h"
#include "base/result.h"
#include "pki/parse.h"
#include "pki/pki.h"

namespace bulwark::pki {

// Files to write as one unit: commit() first checks that nothing would be overwritten without
// permission, then writes each file atomically, and on a failure puts back what it had changed.
class FilePlan {
 public:
  void write(const fs::path& path, std::string contents, unsigned mode, bool overwrite);
  void remove(const fs::path& path);  // after all writes succeeded
  bool writes(const fs::path& path) const;
  Status commit();

  std::vector<std::string> messages;

 private:
  struct File {
    fs::path path;
    std::string contents;
    unsigned mode;
    bool overwrite;
  };
  std::vector<File> files_;
  std::vector<fs::path> removals_;
};

struct IssuedRecord {
  std::string name;
  CertKind kind = CertKind::broker;
  std::string serial;
  std::string subject;
  std::string common_name;
  SanList sans;
  std::string key_type;
  int days = 365;
  std::int64_t not_after = 0;
  bool from_csr = false;
  bool revoked = false;  // the current serial
  std::int64_t revoked_at = 0;
  int reason = 0;
  std::vector<std::string> superseded;  // the serials this name had before, oldest first
};

struct RevokedSerial {
  std::string serial;
  std::string name;
  std::int64_t revoked_at = 0;
  int reason = 0;
};

// Where `pki export` (or bootstrap) wrote a name's keystores, so that a CA rotation can write them again.
// No password is kept: rotate-ca is given it.
struct ExportRecord {
  std::string name;
  std::string format;  // "pem", "pkcs12" or "jks"
  std::string out;     // the directory
  bool legacy_pkcs12 = false;
  bool pem_copies = false;
  bool encrypted = false;  // a password protects it (always for pkcs12 and jks)
  bool operator==(const ExportRecord&) const = default;
};

struct PkiState {
  std::string key_type;
  std::vector<SubjectField> subject;
  std::string root_key_location;
  std::int64_t crl_number = 0;
  std::set<std::string> serials;  // every serial this CA ever used
  std::vector<IssuedRecord> issued;
  std::vector<RevokedSerial> revoked;
  std::vector<ExportRecord> exports;
  // pki rotate-ca: 0 none under way, 1 the new CA is trusted too, 2 the leaves are reissued from it.
  int rotation_phase = 0;
  int ca_generation = 1;  // CA names after the first rotation say "G2", "G3", ...

  IssuedRecord* find(const std::string& name);
  bool is_revoked(const std::string& serial) const;
};

struct Session {
  fs::path dir;
  // An exclusive flock on DIR/.lock held while the command runs, so two commands on one PKI cannot
  // both read state.json and then overwrite each other's changes.
  std::shared_ptr<int> lock;
  PkiState state;
  X509Ptr root;
  X509Ptr intermediate;
  // Roots trusted besides `root` while a CA rotation is under way (DIR/ca/next, DIR/ca/previous).
  std::vector<X509Ptr> extra_roots;
  // Phase 2 of a rotation: the intermediate before, whose certificates are still trusted, and so still
  // revocable (its CRL goes into crl.pem too). Null otherwise.
  X509Ptr previous_intermediate;
  EvpPkeyPtr previous_intermediate_key;
  EvpPkeyPtr intermediate_key;  // null when it is encrypted and no password was given
  std::string ca_key_password;  // as given to open(), for the other CA keys a rotation uses
  std::string signing_key_error;  // why intermediate_key is null
  // Certificates and keys made during this run, by name (export reads these before the disk).
  std::map<std::string, X509Ptr> new_certs;
  std::map<std::string, EvpPkeyPtr> new_keys;

  fs::path ca_dir() const { return dir / "ca"; }
  fs::path issued_dir(const std::string& name) const { return dir / "issued" / name; }
  fs::path state_path() const { return dir / "state.json"; }

  // Loads DIR; a missing or uninitialised DIR gets "no PKI in DIR: run `bulwark pki init --dir DIR` first".
  // An encrypted CA key is decrypted with ca_key_password; without one the session can read but not
  // sign (require_signing_key says why). A wrong password is an error here.
  static Result<Session> open(const fs::path& dir, const std::string& ca_key_password = {});
  Status require_signing_key() const;
  static bool exists(const fs::path& dir);
  std::string state_json() const;
  void save(FilePlan& plan) const;
};

// Whether NAME came from an ACME server (DIR/issued/NAME/acme.json), not from this PKI's CA.
bool is_external(const Session& session, const std::string& name);

// Planning steps (no file is written until the plan commits).
Status plan_init(Session& session, FilePlan& plan, const InitOptions& options);

struct IssueRequest {
  std::string name;
  CertKind kind = CertKind::broker;
  SanList sans;
  KeyType key_type = KeyType::ec_p256;
  int days = 365;
  std::optional<std::string> csr_contents;  // with csr_source naming it in messages
  std::string csr_source;
  X509_NAME* subject_name = nullptr;  // renewal: keep this subject
  EVP_PKEY* reuse_key = nullptr;      // renewal with --keep-key / CSR-signed: public key to certify again
  bool reuse_key_is_private = false;  // reuse_key holds a private key we may write out again
  std::optional<fs::path> out;
  bool force = false;
  bool renewal = false;
};
Status plan_issue(Session& session, FilePlan& plan, const IssueRequest& request);
// Writes every export state.json remembers again (a CA rotation changed the chain or the trust).
// `password` opens the password-protected ones.
Status plan_reexport(Session& session, FilePlan& plan, const std::string& password);

// Reissues options.name from the session's CA: same kind, subject and SANs; a new key unless keep_key
// (or it was signed from a CSR: then the same public key).
Status plan_renewal(Session& session, FilePlan& plan, const RenewOptions& options);
Status plan_crl(Session& session, FilePlan& plan, int days, const std::optional<fs::path>& copy_to = {},
                bool force = false);

std::string display(const fs::path& path);
std::string format_date(std::time_t when);

}  // namespace bulwark::pki
