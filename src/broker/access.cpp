#include "broker/access.h"

#include <chrono>
#include <vector>
#include <unordered_map>

#include "base/files.h"
#include "base/log.h"
#include "broker/state.h"

namespace bulwark::broker {

Result<std::unique_ptr<Session>> open_session(const BrokerState& state, const net::PeerInfo& peer) {
  auto session = std::make_unique<Session>();
  switch (peer.protocol) {
    case net::SecurityProtocol::plaintext:
      break;
    case net::SecurityProtocol::ssl: {
      static const security::PrincipalMappingRules kDefaultRules = *security::PrincipalMappingRules::parse("DEFAULT");
      auto rules = state.mapping_rules.find(peer.listener);
      auto principal = security::principal_for_tls(
          peer.client_subject, rules == state.mapping_rules.end() ? kDefaultRules : rules->second);
      if (!principal.ok()) return principal.error();
      session->principal = std::move(*principal);
      break;
    }
    case net::SecurityProtocol::sasl_plaintext:
    case net::SecurityProtocol::sasl_ssl:
      // KIP-684: a client certificate on SASL_SSL is verified by TLS, but the principal comes from SASL.
      session->sasl_stage = Session::SaslStage::awaiting_handshake;
      break;
  }
  return session;
}

Session& session_of(Call& call) { return static_cast<Session&>(*call.ctx.state); }

namespace {

// Clients retry denied requests every ~100 ms; one audit line per principal, host, operation and
// resource per second says the same without flooding the log.
void audit_denial(std::string line) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::chrono::steady_clock::time_point> last_logged;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu);
    if (last_logged.size() > 10000) last_logged.clear();
    auto [it, inserted] = last_logged.try_emplace(line, now);
    if (!inserted) {
      if (now - it->second < std::chrono::seconds(1)) return;
      it->second = now;
    }
  }
  log::info("[audit] {}", line);
}

}  // namespace

bool authorized(const BrokerState& state, Call& call, security::Operation operation,
                security::ResourceType resource_type, std::string_view resource_name, bool audit) {
  if (!state.acls) return true;
  const auto& principal = session_of(call).principal;
  const auto& host = call.ctx.peer.remote_address;
  if (state.acls->authorizer().authorize(principal, host, operation, resource_type, resource_name) ==
      security::Decision::allowed)
    return true;
  if (audit) {
    state.metrics.denied(operation, resource_type);
    audit_denial(security::render_denial(principal, host, operation, resource_type, resource_name));
  }
  return false;
}

bool authorized_cluster(const BrokerState& state, Call& call, security::Operation operation) {
  return authorized(state, call, operation, security::ResourceType::cluster, security::kClusterResourceName);
}

bool authorized_idempotent_write(const BrokerState& state, Call& call) {
  if (!state.acls) return true;
  const auto& principal = session_of(call).principal;
  const auto& host = call.ctx.peer.remote_address;
  if (state.acls->authorizer().authorize_idempotent_write(principal, host) == security::Decision::allowed) return true;
  state.metrics.denied(security::Operation::idempotent_write, security::ResourceType::cluster);
  audit_denial(security::render_denial(principal, host, security::Operation::idempotent_write,
                                       security::ResourceType::cluster, security::kClusterResourceName));
  return false;
}

std::int32_t authorized_operations(const BrokerState& state, Call& call, security::ResourceType resource_type,
                                   std::string_view resource_name) {
  using O = security::Operation;
  using R = security::ResourceType;
  std::vector<O> supported;
  switch (resource_type) {
    case R::topic:
      supported = {O::read, O::write, O::create, O::remove, O::alter, O::describe, O::describe_configs, O::alter_configs};
      break;
    case R::group: supported = {O::read, O::describe, O::remove}; break;
    case R::cluster:
      supported = {O::create, O::cluster_action, O::describe_configs, O::alter_configs, O::idempotent_write, O::alter,
                   O::describe};
      break;
    case R::transactional_id: supported = {O::describe, O::write}; break;
    default: break;
  }
  std::int32_t bits = 0;
  for (O op : supported)
    if (authorized(state, call, op, resource_type, resource_name, /*audit=*/false)) bits |= 1 << static_cast<int>(op);
  return bits;
}

// ---------------------------------------------------------------------------------------------------
namespace {

security::AclBinding binding_of(const cluster::AclEntry& e) {
  return {security::resource_type_from_code(e.resource_type).value_or(security::ResourceType::topic), e.resource_name,
          security::pattern_type_from_code(e.pattern_type).value_or(security::PatternType::literal), e.principal, e.host,
          security::operation_from_code(e.operation).value_or(security::Operation::read),
          security::permission_from_code(e.permission).value_or(security::Permission::deny)};
}

std::vector<security::AclBinding> image_bindings(const cluster::MetadataImage& image) {
  std::vector<security::AclBinding> out;
  for (const auto& entry : image.acls()) out.push_back(binding_of(entry));
  return out;
}

// The filter that matches exactly this binding.
security::AclBindingFilter exact(const security::AclBinding& b) {
  return {b.resource_type, b.resource_name, b.pattern_type, b.principal, b.host, b.operation, b.permission};
}

security::sasl::Mechanism mechanism_of(cluster::ScramMechanism m) {
  return m == cluster::ScramMechanism::sha512 ? security::sasl::Mechanism::scram_sha_512
                                              : security::sasl::Mechanism::scram_sha_256;
}

std::int8_t wire_mechanism(security::sasl::Mechanism m) {
  return m == security::sasl::Mechanism::scram_sha_512 ? 2 : 1;
}

}  // namespace

void AclStore::sync(const cluster::MetadataImage& image) {
  auto wanted = image_bindings(image);
  auto current = authorizer_->describe(security::AclBindingFilter::any());
  std::vector<security::AclBinding> missing;
  for (const auto& b : wanted)
    if (std::find(current.begin(), current.end(), b) == current.end()) missing.push_back(b);
  // Add before removing: a rule replaced by another never leaves a gap.
  if (!missing.empty())
    if (auto added = authorizer_->add_acls(missing); !added.ok())
      log::error("applying the image's ACLs: {}", added.error().message);
  for (const auto& b : current)
    if (std::find(wanted.begin(), wanted.end(), b) == wanted.end()) authorizer_->remove(exact(b));
}

bool image_has_acls(const cluster::MetadataImage& image, const std::vector<security::AclBinding>& bindings, bool present) {
  auto held = image_bindings(image);
  return std::all_of(bindings.begin(), bindings.end(), [&](const auto& b) {
    return (std::find(held.begin(), held.end(), b) != held.end()) == present;
  });
}

std::optional<security::sasl::ScramCredential> ScramStore::find(const std::string& user,
                                                                security::sasl::Mechanism m) const {
  std::lock_guard lock(mu_);
  auto it = credentials_.find(user);
  if (it == credentials_.end()) return std::nullopt;
  auto c = it->second.find(m);
  if (c == it->second.end()) return std::nullopt;
  return c->second;
}

security::sasl::ScramCredentials ScramStore::all() const {
  std::lock_guard lock(mu_);
  return credentials_;
}

void ScramStore::sync(const cluster::MetadataImage& image) {
  security::sasl::ScramCredentials next;
  for (const auto* c : image.scram_credentials())
    next[c->user][mechanism_of(c->mechanism)] = {c->salt, c->stored_key, c->server_key, c->iterations};
  std::lock_guard lock(mu_);
  credentials_ = std::move(next);
}

bool image_has_scram_changes(const cluster::MetadataImage& image,
                             const std::vector<std::pair<std::string, security::sasl::Mechanism>>& deletions,
                             const std::vector<security::sasl::ScramSpec>& upsertions) {
  auto scram = [](security::sasl::Mechanism m) {
    return m == security::sasl::Mechanism::scram_sha_512 ? cluster::ScramMechanism::sha512 : cluster::ScramMechanism::sha256;
  };
  for (const auto& [user, mechanism] : deletions)
    if (image.scram_credential(user, scram(mechanism))) return false;
  for (const auto& u : upsertions) {
    const auto* c = image.scram_credential(u.username, scram(u.mechanism));
    if (!c || c->stored_key != u.credential.stored_key) return false;
  }
  return true;
}

Result<std::vector<cluster::AnyRecord>> legacy_acl_records(const std::filesystem::path& file,
                                                          const std::function<cluster::Uuid()>& new_id) {
  std::vector<cluster::AnyRecord> records;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return records;
  auto text = read_file(file);
  if (!text.ok()) return text.error();
  auto bindings = security::decode_acls(*text);
  if (!bindings.ok()) return make_error(bindings.error().kind, file.string() + ": " + bindings.error().message);
  for (const auto& b : *bindings) {
    cluster::rec::AccessControlEntryRecord r;
    r.id = new_id();
    r.resource_type = static_cast<std::int8_t>(b.resource_type);
    r.resource_name = b.resource_name;
    r.pattern_type = static_cast<std::int8_t>(b.pattern_type);
    r.principal = b.principal;
    r.host = b.host;
    r.operation = static_cast<std::int8_t>(b.operation);
    r.permission_type = static_cast<std::int8_t>(b.permission);
    records.push_back(cluster::make_record(std::move(r)));
  }
  return records;
}

Result<std::vector<cluster::AnyRecord>> legacy_scram_records(const std::filesystem::path& file) {
  std::vector<cluster::AnyRecord> records;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return records;
  auto text = read_file(file);
  if (!text.ok()) return text.error();
  auto credentials = security::sasl::decode_scram_credentials(*text);
  if (!credentials.ok()) return make_error(credentials.error().kind, file.string() + ": " + credentials.error().message);
  for (const auto& [user, by_mechanism] : *credentials)
    for (const auto& [mechanism, c] : by_mechanism) {
      cluster::rec::UserScramCredentialRecord r;
      r.name = user;
      r.mechanism = wire_mechanism(mechanism);
      r.salt = c.salt;
      r.stored_key = c.stored_key;
      r.server_key = c.server_key;
      r.iterations = c.iterations;
      records.push_back(cluster::make_record(std::move(r)));
    }
  return records;
}

}  // namespace bulwark::broker
