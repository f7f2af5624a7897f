#include "pki/pki.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <openssl/pem.h>

#include "base/files.h"
#include "pki/crypto.h"
#include "pki/session.h"

namespace bulwark::pki {
namespace {

using json = nlohmann::json;

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

const char* kind_name(CertKind kind) { return kind == CertKind::broker ? "broker" : "client"; }

json sans_json(const std::vector<std::string>& values) { return json(values); }

}  // namespace

std::string display(const fs::path& path) { return path.string(); }

std::string format_date(std::time_t when) {
  std::tm tm{};
  gmtime_r(&when, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d", &tm);
  return text;
}

// ---------------------------------------------------------------------------------------------------
// FilePlan

void FilePlan::write(const fs::path& path, std::string contents, unsigned mode, bool overwrite) {
  for (auto& file : files_) {
    if (file.path == path) {  // a later step replaces an earlier plan for the same file (state.json)
      file.contents = std::move(contents);
      file.mode = mode;
      file.overwrite = file.overwrite || overwrite;
      return;
    }
  }
  files_.push_back({path, std::move(contents), mode, overwrite});
}

void FilePlan::remove(const fs::path& path) { removals_.push_back(path); }

bool FilePlan::writes(const fs::path& path) const {
  return std::any_of(files_.begin(), files_.end(), [&](const File& f) { return f.path == path; });
}

Status FilePlan::commit() {
  std::error_code ec;
  for (const auto& file : files_) {
    if (!file.overwrite && fs::exists(file.path, ec))
      return make_error(ErrorKind::already_exists,
                        display(file.path) + " already exists; nothing was written (use --force to replace it)");
  }
  struct Undo {
    fs::path path;
    std::optional<std::string> previous;
    unsigned mode;
  };
  std::vector<Undo> undo;
  std::vector<fs::path> created_dirs;
  auto roll_back = [&] {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
      if (it->previous) (void)write_file_atomic(it->path, *it->previous, it->mode, Overwrite::allow);
      else fs::remove(it->path, ec);
    }
    for (auto it = created_dirs.rbegin(); it != created_dirs.rend(); ++it) fs::remove(*it, ec);  // only if empty
  };
  for (const auto& file : files_) {
    // Create missing parents one by one so a rollback can remove exactly those.
    std::vector<fs::path> missing;
    for (auto parent = file.path.parent_path(); !parent.empty() && !fs::exists(parent, ec);
         parent = parent.parent_path())
      missing.push_back(parent);
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      auto status = make_directories(*it, it->filename() == "ca" ? 0700 : 0755);
      if (!status) {
        roll_back();
        return status.error();
      }
      created_dirs.push_back(*it);
    }
    Undo entry{file.path, std::nullopt, file.mode};
    if (fs::exists(file.path, ec)) {
      auto previous = read_file(file.path);
      if (previous) entry.previous = std::move(*previous);
      struct stat st{};
      if (::stat(file.path.c_str(), &st) == 0) entry.mode = st.st_mode & 07777;
    }
    auto status = write_file_atomic(file.path, file.contents, file.mode, file.overwrite ? Overwrite::allow : Overwrite::refuse);
    if (!status) {
      roll_back();
      return status.error();
    }
    undo.push_back(std::move(entry));
  }
  for (const auto& path : removals_)
    if (!writes(path)) fs::remove(path, ec);
  return Status::success();
}

// ---------------------------------------------------------------------------------------------------
// State

IssuedRecord* PkiState::find(const std::string& name) {
  for (auto& record : issued)
    if (record.name == name) return &record;
  return nullptr;
}

bool PkiState::is_revoked(const std::string& serial) const {
  return std::any_of(revoked.begin(), revoked.end(), [&](const RevokedSerial& r) { return r.serial == serial; });
}

bool Session::exists(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "state.json", ec) && fs::exists(dir / "ca" / "intermediate.crt", ec);
}

std::string Session::state_json() const {
  json issued = json::array();
  for (const auto& r : state.issued) {
    issued.push_back({{"name", r.name},
                      {"kind", kind_name(r.kind)},
                      {"serial", r.serial},
                      {"subject", r.subject},
                      {"common_name", r.common_name},
                      {"dns", sans_json(r.sans.dns)},
                      {"ips", sans_json(r.sans.ips)},
                      {"key_type", r.key_type},
                      {"days", r.days},
                      {"not_after", r.not_after},
                      {"from_csr", r.from_csr},
                      {"revoked", r.revoked},
                      {"revoked_at", r.revoked_at},
                      {"reason", r.revoked ? revocation_reason_name(r.reason) : ""},
                      {"superseded", r.superseded}});
  }
  json revoked = json::array();
  for (const auto& r : state.revoked)
    revoked.push_back({{"serial", r.serial}, {"name", r.name}, {"revoked_at", r.revoked_at},
                       {"reason", revocation_reason_name(r.reason)}});
  json exports = json::array();
  for (const auto& e : state.exports)
    exports.push_back({{"name", e.name}, {"format", e.format}, {"out", e.out}, {"legacy_pkcs12", e.legacy_pkcs12},
                       {"pem_copies", e.pem_copies}, {"encrypted", e.encrypted}});
  json doc = {{"version", 1},
              {"key_type", state.key_type},
              {"subject", format_subject(state.subject)},
              {"root_key", state.root_key_location},
              {"crl_number", state.crl_number},
              {"serials", json(std::vector<std::string>(state.serials.begin(), state.serials.end()))},
              {"issued", issued},
              {"revoked", revoked},
              {"exports", exports},
              {"rotation_phase", state.rotation_phase},
              {"ca_generation", state.ca_generation}};
  return doc.dump(2) + "\n";
}

void Session::save(FilePlan& plan) const { plan.write(state_path(), state_json(), kPublicFileMode, true); }

namespace {

Result<PkiState> parse_state(const std::string& text, const std::string& source) {
  auto doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return make_error(ErrorKind::corrupt, source + " is not valid JSON");
  try {
    PkiState state;
    state.key_type = doc.value("key_type", "");
    auto subject = parse_subject(doc.value("subject", ""));
    if (!subject) return make_error(ErrorKind::corrupt, source + ": subject: " + subject.error().message);
    state.subject = std::move(*subject);
    state.root_key_location = doc.value("root_key", "");
    state.crl_number = doc.value("crl_number", std::int64_t{0});
    for (const auto& s : doc.value("serials", json::array())) state.serials.insert(s.get<std::string>());
    for (const auto& item : doc.value("issued", json::array())) {
      IssuedRecord r;
      r.name = item.at("name").get<std::string>();
      r.kind = item.value("kind", "broker") == "client" ? CertKind::client : CertKind::broker;
      r.serial = item.value("serial", "");
      r.subject = item.value("subject", "");
      r.common_name = item.value("common_name", "");
      r.sans.dns = item.value("dns", std::vector<std::string>{});
      r.sans.ips = item.value("ips", std::vector<std::string>{});
      r.key_type = item.value("key_type", "");
      r.days = item.value("days", 365);
      r.not_after = item.value("not_after", std::int64_t{0});
      r.from_csr = item.value("from_csr", false);
      r.revoked = item.value("revoked", false);
      r.revoked_at = item.value("revoked_at", std::int64_t{0});
      auto reason = parse_revocation_reason(item.value("reason", "unspecified"));
      r.reason = reason ? *reason : 0;
      r.superseded = item.value("superseded", std::vector<std::string>{});
      state.serials.insert(r.serial);
      state.issued.push_back(std::move(r));
    }
    for (const auto& item : doc.value("exports", json::array())) {
      ExportRecord e;
      e.name = item.at("name").get<std::string>();
      e.format = item.value("format", "pem");
      e.out = item.value("out", "");
      e.legacy_pkcs12 = item.value("legacy_pkcs12", false);
      e.pem_copies = item.value("pem_copies", false);
      e.encrypted = item.value("encrypted", false);
      state.exports.push_back(std::move(e));
    }
    state.rotation_phase = doc.value("rotation_phase", 0);
    state.ca_generation = doc.value("ca_generation", 1);
    for (const auto& item : doc.value("revoked", json::array())) {
      RevokedSerial r;
      r.serial = item.at("serial").get<std::string>();
      r.name = item.value("name", "");
      r.revoked_at = item.value("revoked_at", std::int64_t{0});
      auto reason = parse_revocation_reason(item.value("reason", "unspecified"));
      r.reason = reason ? *reason : 0;
      state.revoked.push_back(std::move(r));
    }
    return state;
  } catch (const std::exception& e) {
    return make_error(ErrorKind::corrupt, source + " has an unexpected shape: " + e.what());
  }
}

Result<X509Ptr> load_certificate(const fs::path& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  return crypto::parse_certificate(*text, display(path));
}

}  // namespace

Result<Session> Session::open(const fs::path& dir, const std::string& ca_key_password) {
  std::error_code exists_error;
  const bool external_only = !exists(dir) && fs::exists(dir / "state.json", exists_error);
  if (!exists(dir) && !external_only)
    return make_error(ErrorKind::not_found, "no PKI in " + display(dir) + ": run `bulwark pki init --dir " +
                                                display(dir) + "` first");
  Session session;
  session.dir = dir;
  session.ca_key_password = ca_key_password;
  int fd = ::open((dir / ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
    if (fd >= 0) ::close(fd);
    return make_error(ErrorKind::io, "cannot lock " + display(dir / ".lock") + ": " + std::strerror(errno));
  }
  session.lock = std::shared_ptr<int>(new int(fd), [](int* held) {
    ::close(*held);  // releases the flock
    delete held;
  });
  auto text = read_file(dir / "state.json");
  if (!text) return text.error();
  auto state = parse_state(*text, display(dir / "state.json"));
  if (!state) return state.error();
  session.state = std::move(*state);
  if (external_only) {  // only certificates from an ACME server so far (record_external)
    session.signing_key_error = display(dir) + " has no CA of its own, only certificates from an ACME server: run "
                                "`bulwark pki init --dir " + display(dir) + "` to add one (it keeps them)";
    return session;
  }
  auto root = load_certificate(session.ca_dir() / "root.crt");
  if (!root) return root.error();
  auto intermediate = load_certificate(session.ca_dir() / "intermediate.crt");
  if (!intermediate) return intermediate.error();
  auto key_text = read_file(session.ca_dir() / "intermediate.key");
  if (!key_text) return key_text.error();
  session.root = std::move(*root);
  session.intermediate = std::move(*intermediate);
  for (const char* during_rotation : {"next", "previous"}) {
    const auto path = session.ca_dir() / during_rotation / "root.crt";
    if (!fs::exists(path, exists_error)) continue;
    auto extra = load_certificate(path);
    if (!extra) return extra.error();
    if (X509_cmp(extra->get(), session.root.get()) != 0) session.extra_roots.push_back(std::move(*extra));
  }
  if (const auto previous = session.ca_dir() / "previous"; fs::exists(previous / "intermediate.key", exists_error)) {
    auto cert = load_certificate(previous / "intermediate.crt");
    if (!cert) return cert.error();
    auto text = read_file(previous / "intermediate.key");
    if (!text) return text.error();
    auto key = crypto::parse_private_key(*text, display(previous / "intermediate.key"), ca_key_password);
    if (!key) return key.error();
    session.previous_intermediate = std::move(*cert);
    session.previous_intermediate_key = std::move(*key);
  }
  if (crypto::is_encrypted_private_key_pem(*key_text) && ca_key_password.empty()) {
    session.signing_key_error = "the CA key " + display(session.ca_dir() / "intermediate.key") +
                                " is encrypted: give its passphrase with --ca-key-password-file FILE";
    return session;
  }
  auto key = crypto::parse_private_key(*key_text, display(session.ca_dir() / "intermediate.key"), ca_key_password);
  if (!key) return key.error();
  if (X509_check_private_key(session.intermediate.get(), key->get()) != 1) {
    openssl_errors();
    return make_error(ErrorKind::corrupt, display(session.ca_dir() / "intermediate.key") +
                                              " does not belong to " + display(session.ca_dir() / "intermediate.crt"));
  }
  session.intermediate_key = std::move(*key);
  return session;
}

bool is_external(const Session& session, const std::string& name) {
  std::error_code ec;
  return fs::exists(external_marker(session.dir, name), ec);
}

Status Session::require_signing_key() const {
  if (intermediate_key) return Status::success();
  return make_error(ErrorKind::unauthenticated, signing_key_error);
}

// ---------------------------------------------------------------------------------------------------
// Planning

namespace {

// A DIR that so far holds only external certificates keeps them when it gets a CA; any other init
// starts from an empty index.
Status keep_external_records(Session& session, const fs::path& dir) {
  session.state = PkiState{};
  std::error_code ec;
  if (Session::exists(dir) || !fs::exists(dir / "state.json", ec)) return Status::success();
  auto text = read_file(dir / "state.json");
  if (!text) return text.error();
  auto state = parse_state(*text, display(dir / "state.json"));
  if (!state) return state.error();
  session.state.issued = std::move(state->issued);
  session.state.serials = std::move(state->serials);
  return Status::success();
}

Error external_refusal(const std::string& name, const std::string& verb) {
  return invalid(name + " came from an ACME server, not from this PKI's CA: " + verb);
}

}  // namespace

Status plan_init(Session& session, FilePlan& plan, const InitOptions& options) {
  for (const auto& field : options.subject)
    if (field.type == "CN")
      return invalid("--subject must not hold CN: the CA names come from --root-cn and --intermediate-cn, and "
                     "issued certificates get CN = their name");
  if (options.root_days < 1 || options.intermediate_days < 1) return invalid("validity days must be at least 1");
  if (options.intermediate_days > options.root_days)
    return invalid("the intermediate CA (" + std::to_string(options.intermediate_days) +
                   " days) cannot outlive the root CA (" + std::to_string(options.root_days) + " days)");
  session.dir = options.dir;
  BULWARK_TRY(keep_external_records(session, options.dir));
  session.state.key_type = key_type_name(options.key_type);
  session.state.subject = options.subject;

  auto root_key = crypto::generate_key(options.key_type);
  if (!root_key) return root_key.error();
  auto intermediate_key = crypto::generate_key(options.key_type);
  if (!intermediate_key) return intermediate_key.error();
  std::time_t now = std::time(nullptr);

  auto subject_with_cn = [&](const std::string& cn) {
    std::vector<SubjectField> fields{{"CN", cn}};
    fields.insert(fields.end(), options.subject.begin(), options.subject.end());
    return fields;
  };
  crypto::CertSpec root_spec;
  root_spec.subject = subject_with_cn(options.root_cn);
  auto serial = new_serial(session.state.serials);
  if (!serial) return serial.error();
  root_spec.serial_hex = *serial;
  session.state.serials.insert(*serial);
  root_spec.not_before = now - 60;
  root_spec.not_after = now + std::time_t{options.root_days} * 86400;
  root_spec.is_ca = true;
  root_spec.path_len = 1;
  auto root = crypto::make_certificate(root_spec, root_key->get(), nullptr, root_key->get());
  if (!root) return root.error();

  crypto::CertSpec intermediate_spec;
  intermediate_spec.subject = subject_with_cn(options.intermediate_cn);
  serial = new_serial(session.state.serials);
  if (!serial) return serial.error();
  intermediate_spec.serial_hex = *serial;
  session.state.serials.insert(*serial);
  intermediate_spec.not_before = now - 60;
  intermediate_spec.not_after = now + std::time_t{options.intermediate_days} * 86400;
  intermediate_spec.is_ca = true;
  intermediate_spec.path_len = 0;
  auto intermediate = crypto::make_certificate(intermediate_spec, intermediate_key->get(), root->get(), root_key->get());
  if (!intermediate) return intermediate.error();

  auto root_pem = crypto::certificate_pem(root->get());
  auto intermediate_pem = crypto::certificate_pem(intermediate->get());
  auto root_key_pem = crypto::private_key_pem(root_key->get(), options.ca_key_password);
  auto intermediate_key_pem = crypto::private_key_pem(intermediate_key->get(), options.ca_key_password);
  if (!root_pem || !intermediate_pem || !root_key_pem || !intermediate_key_pem)
    return make_error(ErrorKind::internal, "cannot write the CA as PEM: " + openssl_errors());

  auto ca = session.ca_dir();
  fs::path root_key_path = options.root_key_out ? *options.root_key_out : ca / "root.key";
  plan.write(ca / "root.crt", *root_pem, kPublicFileMode, options.force);
  plan.write(root_key_path, *root_key_pem, kPrivateFileMode, options.force);
  plan.write(ca / "intermediate.crt", *intermediate_pem, kPublicFileMode, options.force);
  plan.write(ca / "intermediate.key", *intermediate_key_pem, kPrivateFileMode, options.force);
  plan.write(ca / "ca-bundle.pem", *intermediate_pem + *root_pem, kPublicFileMode, options.force);
  plan.write(options.dir / ".lock", "", kPrivateFileMode, true);  // see Session::lock
  if (options.root_key_out) plan.remove(ca / "root.key");  // a --force re-init must not leave the old one
  std::error_code ec;
  session.state.root_key_location =
      options.root_key_out ? fs::absolute(*options.root_key_out, ec).string() : (ca / "root.key").string();

  session.root = std::move(*root);
  session.intermediate = std::move(*intermediate);
  session.intermediate_key = std::move(*intermediate_key);

  auto root_name = crypto::name_rfc2253(X509_get_subject_name(session.root.get()));
  auto intermediate_name = crypto::name_rfc2253(X509_get_subject_name(session.intermediate.get()));
  plan.messages.push_back("Created root CA \"" + root_name + "\" (" + key_type_name(options.key_type) +
                          ", path length 1, valid until " + format_date(root_spec.not_after) + "): " +
                          display(ca / "root.crt"));
  if (options.root_key_out)
    plan.messages.push_back("Wrote the root CA key to " + display(root_key_path) +
                            " (mode 0600), not into " + display(options.dir) +
                            ": keep it offline; issuing needs only the intermediate CA");
  else
    plan.messages.push_back("Wrote the root CA key to " + display(root_key_path) + " (mode 0600)");
  plan.messages.push_back("Created intermediate CA \"" + intermediate_name + "\" (path length 0, valid until " +
                          format_date(intermediate_spec.not_after) + "), signed by the root: " +
                          display(ca / "intermediate.crt") + ", key " + display(ca / "intermediate.key") +
                          " (mode 0600)");
  plan.messages.push_back("Wrote the CA bundle (intermediate, then root) to " + display(ca / "ca-bundle.pem"));
  return plan_crl(session, plan, 30);
}

Status plan_issue(Session& session, FilePlan& plan, const IssueRequest& request) {
  BULWARK_TRY(validate_cert_name(request.name));
  if (request.days < 1) return invalid("--days must be at least 1");
  BULWARK_TRY(session.require_signing_key());
  IssuedRecord* existing = session.state.find(request.name);
  if (existing && !request.force && !request.renewal)
    return make_error(ErrorKind::already_exists,
                      "a certificate named " + request.name + " is already issued (serial " + existing->serial +
                          "); use --force to replace it, or `bulwark pki renew " + request.name + "`");

  // The key to certify.
  EvpPkeyPtr generated;
  X509ReqPtr csr;
  EVP_PKEY* subject_key = request.reuse_key;
  bool write_key = request.reuse_key_is_private;
  SanList sans = request.sans;
  if (request.csr_contents) {
    auto parsed = crypto::read_csr(*request.csr_contents, request.csr_source);
    if (!parsed) return parsed.error();
    csr = std::move(*parsed);
    subject_key = X509_REQ_get0_pubkey(csr.get());
    write_key = false;
    // The CSR's SANs first, then any given on the command line.
    SanList merged = crypto::csr_sans(csr.get());
    for (auto& dns : merged.dns) {
      auto status = validate_dns_name(dns);
      if (!status) return invalid("the CSR in " + request.csr_source + " has a bad DNS SAN: " + status.error().message);
    }
    for (const auto& dns : sans.dns)
      if (std::find(merged.dns.begin(), merged.dns.end(), dns) == merged.dns.end()) merged.dns.push_back(dns);
    for (const auto& ip : sans.ips)
      if (std::find(merged.ips.begin(), merged.ips.end(), ip) == merged.ips.end()) merged.ips.push_back(ip);
    sans = std::move(merged);
  } else if (!subject_key) {
    auto key = crypto::generate_key(request.key_type);
    if (!key) return key.error();
    generated = std::move(*key);
    subject_key = generated.get();
    write_key = true;
  }
  auto key_type = crypto::key_type_of(subject_key);
  if (!key_type) return key_type.error();

  if (request.kind == CertKind::broker && sans.empty()) {
    if (!validate_dns_name(request.name))
      return invalid("a broker certificate needs the host names clients connect to: pass --dns and/or --ip");
    sans.dns.push_back(request.name);
    plan.messages.push_back("No --dns or --ip for broker " + request.name + ": using DNS:" + request.name);
  }

  crypto::CertSpec spec;
  std::vector<SubjectField> subject{{"CN", request.name}};
  subject.insert(subject.end(), session.state.subject.begin(), session.state.subject.end());
  spec.subject = subject;
  if (request.subject_name) spec.subject_name = request.subject_name;
  else if (csr && X509_NAME_entry_count(X509_REQ_get_subject_name(csr.get())) > 0)
    spec.subject_name = X509_REQ_get_subject_name(csr.get());
  auto serial = new_serial(session.state.serials);
  if (!serial) return serial.error();
  spec.serial_hex = *serial;
  std::time_t now = std::time(nullptr);
  spec.not_before = now - 60;
  spec.not_after = now + std::time_t{request.days} * 86400;
  std::time_t ca_end = crypto::not_after(session.intermediate.get());
  if (spec.not_after > ca_end) {
    spec.not_after = ca_end;
    plan.messages.push_back("The intermediate CA expires on " + format_date(ca_end) + ", so " + request.name +
                            " is valid only until then");
  }
  spec.server_auth = request.kind == CertKind::broker;
  spec.client_auth = true;
  spec.sans = sans;
  auto cert = crypto::make_certificate(spec, subject_key, session.intermediate.get(), session.intermediate_key.get());
  if (!cert) return cert.error();

  auto cert_pem = crypto::certificate_pem(cert->get());
  auto intermediate_pem = crypto::certificate_pem(session.intermediate.get());
  auto root_pem = crypto::certificate_pem(session.root.get());
  if (!cert_pem || !intermediate_pem || !root_pem) return make_error(ErrorKind::internal, "cannot write PEM");
  std::string chain = *cert_pem + *intermediate_pem + *root_pem;
  auto folder = session.issued_dir(request.name);
  bool overwrite = request.force || request.renewal;
  plan.write(folder / "cert.pem", *cert_pem, kPublicFileMode, overwrite);
  plan.write(folder / "chain.pem", chain, kPublicFileMode, overwrite);
  plan.remove(external_marker(session.dir, request.name));  // it is ours now, not an ACME server's
  std::optional<std::string> key_pem;
  if (write_key) {
    auto text = crypto::private_key_pem(subject_key);
    if (!text) return text.error();
    key_pem = std::move(*text);
    plan.write(folder / "key.pem", *key_pem, kPrivateFileMode, overwrite);
  } else if (csr) {
    plan.remove(folder / "key.pem");  // a key from an earlier issue no longer matches
  }
  if (request.out) {
    plan.write(*request.out / (request.name + ".crt"), *cert_pem, kPublicFileMode, request.force);
    plan.write(*request.out / (request.name + ".chain.pem"), chain, kPublicFileMode, request.force);
    if (key_pem) plan.write(*request.out / (request.name + ".key"), *key_pem, kPrivateFileMode, request.force);
  }

  IssuedRecord record;
  record.name = request.name;
  record.kind = request.kind;
  record.serial = *serial;
  record.subject = crypto::name_rfc2253(X509_get_subject_name(cert->get()));
  record.common_name = crypto::common_name(X509_get_subject_name(cert->get()));
  record.sans = sans;
  record.key_type = key_type_name(*key_type);
  record.days = request.days;
  record.not_after = spec.not_after;
  record.from_csr = csr != nullptr || (existing && existing->from_csr && request.renewal);
  std::string old_serial = existing ? existing->serial : "";
  if (existing) {
    record.superseded = existing->superseded;
    if (!old_serial.empty() && old_serial != *serial) record.superseded.push_back(old_serial);
  }
  if (existing) *existing = record;
  else session.state.issued.push_back(record);
  session.state.serials.insert(*serial);

  std::string san_text;
  for (const auto& d : sans.dns) san_text += (san_text.empty() ? "" : ", ") + std::string("DNS:") + d;
  for (const auto& i : sans.ips) san_text += (san_text.empty() ? "" : ", ") + std::string("IP:") + i;
  std::string what = request.renewal ? "Renewed" : (existing ? "Reissued" : "Issued");
  std::string line = what + " " + kind_name(request.kind) + " certificate " + request.name + " \"" + record.subject +
                     "\" (serial " + *serial + ", " + record.key_type + ", " +
                     (request.kind == CertKind::broker ? "serverAuth + clientAuth" : "clientAuth") +
                     ", valid until " + format_date(spec.not_after) + ")";
  if (!san_text.empty()) line += " for " + san_text;
  if (csr) line += ", signed from the CSR in " + request.csr_source;
  plan.messages.push_back(line);
  plan.messages.push_back("Wrote " + display(folder / "cert.pem") + " and " + display(folder / "chain.pem") +
                          (key_pem ? ", key " + display(folder / "key.pem") + " (mode 0600)" : std::string()));
  if (!old_serial.empty() && old_serial != *serial && !session.state.is_revoked(old_serial))
    plan.messages.push_back("The previous certificate (serial " + old_serial + ") is not revoked; revoke it with " +
                            "`bulwark pki revoke " + request.name + " --superseded` if it must stop working");
  session.new_certs[request.name] = std::move(*cert);
  if (write_key) session.new_keys[request.name] = generated ? std::move(generated) : share(subject_key);
  session.save(plan);
  return Status::success();
}

namespace {

// The CRL of the intermediate before a rotation (phase 2), "" when there is none.
Result<std::string> previous_intermediate_crl(const Session& session, const std::vector<crypto::RevokedEntry>& entries,
                                              std::time_t now, int days) {
  if (!session.previous_intermediate || !session.previous_intermediate_key) return std::string();
  auto crl = crypto::make_crl(session.previous_intermediate.get(), session.previous_intermediate_key.get(), entries,
                              session.state.crl_number, now - 60, now + std::time_t{days} * 86400);
  if (!crl) return crl.error();
  return crypto::crl_pem(crl->get());
}

}  // namespace

Status plan_crl(Session& session, FilePlan& plan, int days, const std::optional<fs::path>& copy_to, bool force) {
  BULWARK_TRY(session.require_signing_key());
  if (days < 1) return invalid("--days must be at least 1");
  std::vector<crypto::RevokedEntry> entries;
  for (const auto& r : session.state.revoked) entries.push_back({r.serial, static_cast<std::time_t>(r.revoked_at), r.reason});
  std::time_t now = std::time(nullptr);
  session.state.crl_number += 1;
  auto crl = crypto::make_crl(session.intermediate.get(), session.intermediate_key.get(), entries,
                              session.state.crl_number, now - 60, now + std::time_t{days} * 86400);
  if (!crl) return crl.error();
  auto pem = crypto::crl_pem(crl->get());
  if (!pem) return pem.error();
  // Mid-rotation the previous intermediate's certificates are still trusted: its CRL goes along.
  auto previous = previous_intermediate_crl(session, entries, now, days);
  if (!previous) return previous.error();
  *pem += *previous;
  plan.write(session.dir / "crl.pem", *pem, kPublicFileMode, true);
  if (copy_to) {
    plan.write(*copy_to / "crl.pem", *pem, kPublicFileMode, force);
    plan.messages.push_back("Copied the CRL to " + display(*copy_to / "crl.pem"));
  }
  plan.messages.push_back("Wrote the CRL (number " + std::to_string(session.state.crl_number) + ", " +
                          std::to_string(entries.size()) + " revoked, next update " +
                          format_date(now + std::time_t{days} * 86400) + ") signed by the intermediate CA to " +
                          display(session.dir / "crl.pem"));
  session.save(plan);
  return Status::success();
}

// ---------------------------------------------------------------------------------------------------
// Commands

Result<Outcome> init(const InitOptions& options) {
  if (Session::exists(options.dir) && !options.force)
    return make_error(ErrorKind::already_exists,
                      display(options.dir) + " already holds a PKI (" + display(options.dir / "ca" / "root.crt") +
                          "); use --force to replace its CA (certificates issued from it will stop being trusted)");
  Session session;
  FilePlan plan;
  BULWARK_TRY(plan_init(session, plan, options));
  BULWARK_TRY(plan.commit());
  return Outcome{std::move(plan.messages)};
}

Result<Outcome> issue(const IssueOptions& options) {
  BULWARK_TRY(validate_cert_name(options.name));
  auto session = Session::open(options.dir, options.ca_key_password);
  if (!session) return session.error();
  IssueRequest request;
  request.name = options.name;
  request.kind = options.kind;
  request.sans = options.sans;
  request.key_type = options.key_type;
  request.days = options.days;
  request.out = options.out;
  request.force = options.force;
  if (options.csr) {
    auto contents = read_file(*options.csr);
    if (!contents) return make_error(contents.error().kind, "cannot read the CSR: " + contents.error().message);
    request.csr_contents = std::move(*contents);
    request.csr_source = display(*options.csr);
  }
  FilePlan plan;
  BULWARK_TRY(plan_issue(*session, plan, request));
  BULWARK_TRY(plan.commit());
  return Outcome{std::move(plan.messages)};
}

Result<std::vector<IssuedInfo>> list(const fs::path& dir) {
  auto session = Session::open(dir);
  if (!session) return session.error();
  std::vector<IssuedInfo> out;
  for (const auto& r : session->state.issued) {
    IssuedInfo info;
    info.name = r.name;
    info.kind = r.kind;
    info.serial = r.serial;
    info.subject = r.subject;
    info.common_name = r.common_name;
    info.sans = r.sans;
    info.key_type = r.key_type;
    info.not_after = r.not_after;
    info.from_csr = r.from_csr;
    info.revoked = r.revoked;
    info.revocation_reason = r.revoked ? revocation_reason_name(r.reason) : "";
    out.push_back(std::move(info));
  }
  return out;
}

Status plan_renewal(Session& session, FilePlan& plan, const RenewOptions& options) {
  IssuedRecord* record = session.state.find(options.name);
  if (!record) return make_error(ErrorKind::not_found, "no certificate named " + options.name + " in " + display(options.dir));
  if (is_external(session, options.name))
    return external_refusal(options.name, "renew it with `bulwark pki acme renew " + options.name + " ...`");
  auto folder = session.issued_dir(options.name);
  auto cert = load_certificate(folder / "cert.pem");
  if (!cert) return cert.error();
  IssueRequest request;
  request.name = record->name;
  request.kind = record->kind;
  request.sans = record->sans;
  request.days = options.days.value_or(record->days);
  request.renewal = true;
  request.subject_name = X509_get_subject_name(cert->get());
  auto old_type = parse_key_type(record->key_type);
  request.key_type = options.key_type.value_or(old_type ? *old_type : KeyType::ec_p256);
  EvpPkeyPtr kept;
  if (record->from_csr) {
    // The private key never came here: certify the same public key again.
    if (options.key_type) return invalid(options.name + " was signed from a CSR; its key type cannot change here");
    request.reuse_key = X509_get0_pubkey(cert->get());
    plan.messages.push_back(options.name + " was signed from a CSR: the renewed certificate keeps its public key");
  } else if (options.keep_key) {
    auto text = read_file(folder / "key.pem");
    if (!text) return text.error();
    auto key = crypto::parse_private_key(*text, display(folder / "key.pem"));
    if (!key) return key.error();
    kept = std::move(*key);
    request.reuse_key = kept.get();
    request.reuse_key_is_private = true;
    plan.messages.push_back("Keeping the key in " + display(folder / "key.pem"));
  }
  bool was_revoked = record->revoked;
  BULWARK_TRY(plan_issue(session, plan, request));
  if (was_revoked) plan.messages.push_back("The revoked serial stays on the CRL; the new certificate is not revoked");
  return Status::success();
}

Result<Outcome> renew(const RenewOptions& options) {
  auto session = Session::open(options.dir, options.ca_key_password);
  if (!session) return session.error();
  FilePlan plan;
  BULWARK_TRY(plan_renewal(*session, plan, options));
  plan.messages.push_back("Run `bulwark pki export " + options.name + "` again to refresh its keystores");
  BULWARK_TRY(plan.commit());
  return Outcome{std::move(plan.messages)};
}

namespace {

// "0x1a:2b" -> "1A2B", as `pki list` and `openssl x509 -serial` print serials.
std::string normalize_serial(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  std::string out;
  for (char c : text)
    if (c != ':') out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The serials of `record` that `options` asks to revoke, oldest first.
Result<std::vector<std::string>> serials_to_revoke(const IssuedRecord& record, const RevokeOptions& options) {
  std::vector<std::string> all = record.superseded;
  all.push_back(record.serial);
  switch (options.which) {
    case RevokeWhich::all: return all;
    case RevokeWhich::superseded:
      if (record.superseded.empty())
        return make_error(ErrorKind::not_found, options.name + " has no superseded serial (it was never renewed here); "
                                                "its current serial is " + record.serial);
      return record.superseded;
    case RevokeWhich::serial: {
      const std::string wanted = normalize_serial(options.serial);
      // Serials print with or without a leading zero byte ("03" and "3").
      auto bare = [](const std::string& s) {
        const auto first = s.find_first_not_of('0');
        return first == std::string::npos ? std::string("0") : s.substr(first);
      };
      auto same = [&](const std::string& s) { return bare(s) == bare(wanted); };
      for (const auto& s : all)
        if (same(s)) return std::vector<std::string>{s};
      std::string known;
      for (const auto& s : all) known += (known.empty() ? "" : ", ") + s;
      return make_error(ErrorKind::not_found,
                        "serial " + options.serial + " is not one of " + options.name + "'s (it has had " + known + ")");
    }
  }
  return all;
}

}  // namespace

Result<Outcome> revoke(const RevokeOptions& options) {
  auto session = Session::open(options.dir, options.ca_key_password);
  if (!session) return session.error();
  IssuedRecord* record = session->state.find(options.name);
  if (!record) return make_error(ErrorKind::not_found, "no certificate named " + options.name + " in " + display(options.dir));
  if (is_external(*session, options.name))
    return external_refusal(options.name, "revoke it at that server (this CA's CRL cannot list it)");
  auto wanted = serials_to_revoke(*record, options);
  if (!wanted) return wanted.error();
  std::vector<std::string> fresh;
  for (const auto& serial : *wanted)
    if (!session->state.is_revoked(serial)) fresh.push_back(serial);
  if (fresh.empty()) {
    std::string list;
    for (const auto& s : *wanted) list += (list.empty() ? "" : ", ") + s;
    return make_error(ErrorKind::already_exists, options.name + " (serial " + list + ") is already revoked");
  }
  std::time_t now = std::time(nullptr);
  std::string described;
  for (const auto& serial : fresh) {
    session->state.revoked.push_back({serial, record->name, now, options.reason});
    const bool current = serial == record->serial;
    if (current) {
      record->revoked = true;
      record->revoked_at = now;
      record->reason = options.reason;
    }
    described += (described.empty() ? "" : ", ") + serial + (current ? " (current)" : " (superseded)");
  }
  FilePlan plan;
  plan.messages.push_back("Revoked " + options.name + " serial " + described + ", reason " +
                          revocation_reason_name(options.reason));
  BULWARK_TRY(plan_crl(*session, plan, 30));
  BULWARK_TRY(plan.commit());
  return Outcome{std::move(plan.messages)};
}

Result<Outcome> crl(const CrlOptions& options) {
  auto session = Session::open(options.dir, options.ca_key_password);
  if (!session) return session.error();
  FilePlan plan;
  BULWARK_TRY(plan_crl(*session, plan, options.days, options.out, options.force));
  BULWARK_TRY(plan.commit());
  return Outcome{std::move(plan.messages)};
}

// ---------------------------------------------------------------------------------------------------
// Certificates from another CA

namespace {

// Every certificate in PEM text, in order.
Result<std::vector<X509Ptr>> parse_certificate_chain(const std::string& pem, const std::string& source) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(cert);
  ERR_clear_error();  // the loop ends on "no start line"
  if (out.empty()) return make_error(ErrorKind::corrupt, source + " holds no PEM certificate");
  return out;
}

}  // namespace

fs::path external_marker(const fs::path& dir, const std::string& name) { return dir / "issued" / name / "acme.json"; }

Result<std::vector<X509Ptr>> issuer_chain(const Session& session, const std::string& name) {
  std::vector<X509Ptr> out;
  if (!is_external(session, name)) {
    BULWARK_TRY(session.root && session.intermediate
                    ? Status::success()
                    : Status(make_error(ErrorKind::not_found, display(session.dir) + " has no CA of its own")));
    out.push_back(share(session.intermediate.get()));
    out.push_back(share(session.root.get()));
    return out;
  }
  auto path = session.issued_dir(name) / "chain.pem";
  auto text = read_file(path);
  if (!text) return text.error();
  auto chain = parse_certificate_chain(*text, display(path));
  if (!chain) return chain.error();
  if (chain->size() < 2) return make_error(ErrorKind::corrupt, display(path) + " holds the leaf but no issuer");
  for (std::size_t i = 1; i < chain->size(); ++i) out.push_back(std::move((*chain)[i]));
  return out;
}

Result<Outcome> record_external(const ExternalCertificate& certificate) {
  BULWARK_TRY(validate_cert_name(certificate.name));
  auto chain = parse_certificate_chain(certificate.chain_pem, "the certificate chain of " + certificate.name);
  if (!chain) return chain.error();
  if (chain->size() < 2) return invalid("the certificate chain of " + certificate.name + " has no issuer");
  auto key = crypto::parse_private_key(certificate.key_pem, "the key of " + certificate.name);
  if (!key) return key.error();
  X509* leaf = chain->front().get();
  if (X509_check_private_key(leaf, key->get()) != 1) {
    openssl_errors();
    return invalid("the certificate issued for " + certificate.name + " is not for its key");
  }
  auto key_type = crypto::key_type_of(key->get());
  if (!key_type) return key_type.error();
  std::error_code ec;
  if (!fs::exists(certificate.dir / "state.json", ec)) {  // first use of DIR: an index, no CA
    Session fresh;
    fresh.dir = certificate.dir;
    FilePlan plan;
    plan.write(certificate.dir / ".lock", "", kPrivateFileMode, true);
    fresh.save(plan);
    BULWARK_TRY(plan.commit());
  }
  auto session = Session::open(certificate.dir);
  if (!session) return session.error();

  IssuedRecord record;
  record.name = certificate.name;
  record.kind = CertKind::broker;
  record.serial = crypto::serial_hex(leaf);
  record.subject = crypto::name_rfc2253(X509_get_subject_name(leaf));
  record.common_name = crypto::common_name(X509_get_subject_name(leaf));
  record.sans = crypto::certificate_sans(leaf);
  record.key_type = key_type_name(*key_type);
  record.not_after = crypto::not_after(leaf);
  int seconds_valid = 0, days_valid = 0;
  ASN1_TIME_diff(&days_valid, &seconds_valid, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf));
  record.days = std::max(1, days_valid + (seconds_valid > 0 ? 1 : 0));
  IssuedRecord* existing = session->state.find(certificate.name);
  if (existing) {
    record.superseded = existing->superseded;
    if (!existing->serial.empty() && existing->serial != record.serial) record.superseded.push_back(existing->serial);
    *existing = record;
  } else {
    session->state.issued.push_back(record);
  }
  session->state.serials.insert(record.serial);

  auto leaf_pem = crypto::certificate_pem(leaf);
  if (!leaf_pem) return leaf_pem.error();
  std::string chain_pem = *leaf_pem;
  for (std::size_t i = 1; i < chain->size(); ++i) {
    auto pem = crypto::certificate_pem((*chain)[i].get());
    if (!pem) return pem.error();
    chain_pem += *pem;
  }
  auto key_pem = crypto::private_key_pem(key->get());
  if (!key_pem) return key_pem.error();
  auto folder = session->issued_dir(certificate.name);
  FilePlan plan;
  plan.write(folder / "cert.pem", *leaf_pem, kPublicFileMode, true);
  plan.write(folder / "chain.pem", chain_pem, kPublicFileMode, true);
  plan.write(folder / "key.pem", *key_pem, kPrivateFileMode, true);
  plan.write(external_marker(certificate.dir, certificate.name), certificate.marker_json, kPublicFileMode, true);
  session->save(plan);
  BULWARK_TRY(plan.commit());
  plan.messages.push_back("Stored " + certificate.name + " \"" + record.subject + "\" (serial " + record.serial + ", " +
                          record.key_type + ", valid until " + format_date(record.not_after) + ", chain of " +
                          std::to_string(chain->size()) + "): " + display(folder / "cert.pem") + ", " +
                          display(folder / "chain.pem") + ", key " + display(folder / "key.pem") + " (mode 0600)");
  if (existing && !record.superseded.empty())
    plan.messages.push_back("It replaces serial " + record.superseded.back());
  return Outcome{std::move(plan.messages)};
}

}  // namespace bulwark::pki
