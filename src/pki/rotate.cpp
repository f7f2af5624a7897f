#include "pki/rotate.h"

#include <ctime>
#include <regex>

#include "base/files.h"
#include "pki/crypto.h"
#include "pki/session.h"

namespace bulwark::pki {
namespace {

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

Result<X509Ptr> read_certificate(const fs::path& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  return crypto::parse_certificate(*text, display(path));
}

Result<EvpPkeyPtr> read_key(const fs::path& path, const std::string& password) {
  auto text = read_file(path);
  if (!text) return text.error();
  return crypto::parse_private_key(*text, display(path), password);
}

// "Bulwark Root CA G2" for generation 2 of "Bulwark Root CA" (or of "Bulwark Root CA G1").
std::string generation_name(const X509* cert, int generation) {
  const std::string cn = crypto::common_name(X509_get_subject_name(cert));
  return std::regex_replace(cn, std::regex(" G[0-9]+$"), "") + " G" + std::to_string(generation);
}

// A CA certificate for `key`: self-signed when issuer is null (a root, path length 1), else an
// intermediate (path length 0). The subject is `cn` with the rest of `like`'s subject.
Result<X509Ptr> make_ca(Session& session, const std::string& cn, const X509* like, EVP_PKEY* key, X509* issuer,
                        EVP_PKEY* issuer_key, int days) {
  crypto::CertSpec spec;
  spec.subject = {{"CN", cn}};
  for (const auto& field : crypto::name_fields(X509_get_subject_name(like)))
    if (field.type != "CN") spec.subject.push_back(field);
  auto serial = new_serial(session.state.serials);
  if (!serial) return serial.error();
  session.state.serials.insert(*serial);
  spec.serial_hex = *serial;
  const std::time_t now = std::time(nullptr);
  spec.not_before = now - 60;
  spec.not_after = now + std::time_t{days} * 86400;
  spec.is_ca = true;
  spec.path_len = issuer == nullptr ? 1 : 0;
  return crypto::make_certificate(spec, key, issuer, issuer_key ? issuer_key : key);
}

Status write_pem(FilePlan& plan, const fs::path& path, X509* cert) {
  auto pem = crypto::certificate_pem(cert);
  if (!pem) return pem.error();
  plan.write(path, *pem, kPublicFileMode, true);
  return Status::success();
}

Status write_key(FilePlan& plan, const fs::path& path, EVP_PKEY* key, const std::string& password) {
  auto pem = crypto::private_key_pem(key, password);
  if (!pem) return pem.error();
  plan.write(path, *pem, kPrivateFileMode, true);
  return Status::success();
}

// Moves the files of `from` that exist to `to` (written there, removed here).
Status move_files(FilePlan& plan, const fs::path& from, const fs::path& to, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    std::error_code ec;
    if (!fs::exists(from / name, ec)) continue;
    auto bytes = read_file(from / name);
    if (!bytes) return bytes.error();
    const bool secret = std::string_view(name).ends_with(".key");
    plan.write(to / name, *bytes, secret ? kPrivateFileMode : kPublicFileMode, true);
    plan.remove(from / name);
  }
  return Status::success();
}

// 1: a new intermediate (and root) in DIR/ca/next, trusted by every export from now on.
Status plan_trust(Session& session, FilePlan& plan, const RotateOptions& options) {
  BULWARK_TRY(session.require_signing_key());
  auto type = parse_key_type(session.state.key_type);
  const KeyType key_type = type ? *type : KeyType::ec_p256;
  const int generation = session.state.ca_generation + 1;
  const auto next = session.ca_dir() / "next";
  X509Ptr root;
  EvpPkeyPtr root_key;
  if (options.new_root) {
    auto key = crypto::generate_key(key_type);
    if (!key) return key.error();
    root_key = std::move(*key);
    auto made = make_ca(session, generation_name(session.root.get(), generation), session.root.get(), root_key.get(),
                        nullptr, nullptr, options.root_days);
    if (!made) return made.error();
    root = std::move(*made);
    BULWARK_TRY(write_pem(plan, next / "root.crt", root.get()));
    BULWARK_TRY(write_key(plan, next / "root.key", root_key.get(), options.ca_key_password));
    session.extra_roots.push_back(share(root.get()));
  } else {
    const fs::path root_key_path =
        session.state.root_key_location.empty() ? session.ca_dir() / "root.key" : fs::path(session.state.root_key_location);
    auto key = read_key(root_key_path, options.ca_key_password);
    if (!key)
      return invalid("a new intermediate under the root in force needs the root key (" + display(root_key_path) +
                     "): " + key.error().message + "; or make a new root as well with --new-root");
    root_key = std::move(*key);
    root = share(session.root.get());
  }
  auto intermediate_key = crypto::generate_key(key_type);
  if (!intermediate_key) return intermediate_key.error();
  auto intermediate = make_ca(session, generation_name(session.intermediate.get(), generation), session.intermediate.get(),
                              intermediate_key->get(), root.get(), root_key.get(), options.intermediate_days);
  if (!intermediate) return intermediate.error();
  BULWARK_TRY(write_pem(plan, next / "intermediate.crt", intermediate->get()));
  BULWARK_TRY(write_key(plan, next / "intermediate.key", intermediate_key->get(), options.ca_key_password));
  session.state.ca_generation = generation;
  session.state.rotation_phase = 1;
  plan.messages.push_back("Phase 1 of 3: made the new intermediate CA \"" +
                          crypto::name_rfc2253(X509_get_subject_name(intermediate->get())) + "\"" +
                          (options.new_root ? " and the new root CA \"" +
                                                  crypto::name_rfc2253(X509_get_subject_name(root.get())) + "\""
                                            : std::string(" under the root in force")) +
                          " in " + display(next) + "; every truststore now trusts " +
                          (options.new_root ? "both roots" : "the same root, so nothing changes for clients yet"));
  return Status::success();
}

// 2: the new CA takes over; every certificate is reissued from it.
Status plan_reissue(Session& session, FilePlan& plan, const RotateOptions& options) {
  const auto ca = session.ca_dir();
  const auto next = ca / "next";
  auto root = read_certificate(next / "root.crt");
  std::error_code ec;
  const bool new_root = fs::exists(next / "root.crt", ec);
  if (new_root && !root) return root.error();
  auto intermediate = read_certificate(next / "intermediate.crt");
  if (!intermediate) return intermediate.error();
  auto intermediate_key = read_key(next / "intermediate.key", options.ca_key_password);
  if (!intermediate_key) return intermediate_key.error();
  // The CA in force becomes DIR/ca/previous: still trusted, and its CRL still published.
  for (const char* name : {"root.crt", "intermediate.crt", "intermediate.key"}) {
    auto bytes = read_file(ca / name);
    if (!bytes) return bytes.error();
    plan.write(ca / "previous" / name, *bytes, std::string_view(name).ends_with(".key") ? kPrivateFileMode : kPublicFileMode,
               true);
  }
  if (new_root) BULWARK_TRY(move_files(plan, next, ca, {"root.crt", "root.key"}));
  BULWARK_TRY(move_files(plan, next, ca, {"intermediate.crt", "intermediate.key"}));
  if (new_root) {
    session.extra_roots.clear();
    session.extra_roots.push_back(share(session.root.get()));
    session.root = std::move(*root);
  }
  session.previous_intermediate = std::move(session.intermediate);
  session.previous_intermediate_key = std::move(session.intermediate_key);
  session.intermediate = std::move(*intermediate);
  session.intermediate_key = std::move(*intermediate_key);
  auto bundle = crypto::certificate_pem(session.intermediate.get());
  auto root_pem = crypto::certificate_pem(session.root.get());
  if (!bundle || !root_pem) return make_error(ErrorKind::internal, "cannot write PEM");
  plan.write(ca / "ca-bundle.pem", *bundle + *root_pem, kPublicFileMode, true);
  std::size_t reissued = 0;
  const auto issued = session.state.issued;
  for (const auto& record : issued) {
    if (is_external(session, record.name)) continue;
    RenewOptions renew;
    renew.dir = options.dir;
    renew.name = record.name;
    BULWARK_TRY(plan_renewal(session, plan, renew));
    ++reissued;
  }
  session.state.rotation_phase = 2;
  plan.messages.push_back("Phase 2 of 3: the new CA signs from now on (the old one is in " + display(ca / "previous") +
                          "); reissued " + std::to_string(reissued) + " certificate(s) from it");
  return Status::success();
}

// 3: the old CA is no longer trusted.
Status plan_retire(Session& session, FilePlan& plan) {
  const auto ca = session.ca_dir();
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "retired-%Y%m%dT%H%M%SZ", &tm);
  BULWARK_TRY(move_files(plan, ca / "previous", ca / stamp, {"root.crt", "intermediate.crt", "intermediate.key"}));
  session.extra_roots.clear();
  session.previous_intermediate.reset();
  session.previous_intermediate_key.reset();
  session.state.rotation_phase = 0;
  plan.messages.push_back("Phase 3 of 3: the old CA is trusted no more (kept in " + display(ca / stamp) +
                          "); the rotation is done");
  return Status::success();
}

}  // namespace

Result<int> next_rotation_phase(const fs::path& dir) {
  auto session = Session::open(dir);
  if (!session) return session.error();
  return session->state.rotation_phase + 1;
}

Result<Outcome> rotate_ca(const RotateOptions& options) {
  auto session = Session::open(options.dir, options.ca_key_password);
  if (!session) return session.error();
  const int next = session->state.rotation_phase + 1;
  const int phase = options.phase == 0 ? next : options.phase;
  if (phase < 1 || phase > 3) return invalid("--phase must be 1, 2 or 3");
  if (phase != next)
    return invalid("phase " + std::to_string(phase) + " cannot run now: " +
                   (next == 1 ? std::string("no rotation is under way; start with --phase 1")
                              : "phase " + std::to_string(next - 1) + " is done, so the next one is --phase " +
                                    std::to_string(next)));
  if (phase != 1 && options.new_root) return invalid("--new-root belongs to phase 1");
  FilePlan plan;
  switch (phase) {
    case 1: BULWARK_TRY(plan_trust(*session, plan, options)); break;
    case 2: BULWARK_TRY(plan_reissue(*session, plan, options)); break;
    default: BULWARK_TRY(plan_retire(*session, plan)); break;
  }
  BULWARK_TRY(plan_reexport(*session, plan, options.password));
  BULWARK_TRY(plan_crl(*session, plan, 30));  // saves state.json too
  BULWARK_TRY(plan.commit());
  for (const char* emptied : {"next", "previous"}) {  // fs::remove leaves a directory that still holds files
    std::error_code ec;
    fs::remove(session->ca_dir() / emptied, ec);
  }
  return Outcome{std::move(plan.messages)};
}

}  // namespace bulwark::pki
