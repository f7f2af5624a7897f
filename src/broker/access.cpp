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
  if (audit) audit_denial(security::render_denial(principal, host, operation, resource_type, resource_name));
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
AclStore::AclStore(std::filesystem::path file, security::AuthorizerConfig config)
    : file_(std::move(file)), authorizer_(std::make_unique<security::Authorizer>(std::move(config))) {}

Result<std::unique_ptr<AclStore>> AclStore::open(std::filesystem::path file, security::AuthorizerConfig config) {
  std::unique_ptr<AclStore> store(new AclStore(std::move(file), std::move(config)));
  std::error_code ec;
  if (std::filesystem::exists(store->file_, ec)) {
    auto text = read_file(store->file_);
    if (!text.ok()) return text.error();
    auto bindings = security::decode_acls(*text);
    if (!bindings.ok()) return make_error(bindings.error().kind, store->file_.string() + ": " + bindings.error().message);
    BULWARK_TRY(store->authorizer_->add_acls(*bindings));
  }
  return store;
}

Status AclStore::persist() {
  auto text = security::encode_acls(authorizer_->describe(security::AclBindingFilter::any()));
  // Who may do what is a map for an attacker: owner only, like the SCRAM store.
  return write_file_atomic(file_, text, kPrivateFileMode, Overwrite::allow);
}

Status AclStore::add(const std::vector<security::AclBinding>& bindings) {
  std::lock_guard lock(write_mu_);
  BULWARK_TRY(authorizer_->add_acls(bindings));
  return persist();
}

std::vector<security::AclBinding> AclStore::remove(const security::AclBindingFilter& filter, Status& persisted) {
  std::lock_guard lock(write_mu_);
  auto removed = authorizer_->remove(filter);
  persisted = removed.empty() ? Status::success() : persist();
  return removed;
}

// ---------------------------------------------------------------------------------------------------
Result<std::unique_ptr<ScramStore>> ScramStore::open(std::filesystem::path file) {
  std::unique_ptr<ScramStore> store(new ScramStore(std::move(file)));
  std::error_code ec;
  if (std::filesystem::exists(store->file_, ec)) {
    auto text = read_file(store->file_);
    if (!text.ok()) return text.error();
    auto credentials =
        security::sasl::decode_scram_credentials(*text);
    if (!credentials.ok())
      return make_error(credentials.error().kind, store->file_.string() + ": " + credentials.error().message);
    store->credentials_ = std::move(*credentials);
  }
  return store;
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

Status ScramStore::apply(const std::vector<std::pair<std::string, security::sasl::Mechanism>>& deletions,
                         const std::vector<security::sasl::ScramSpec>& upsertions) {
  std::lock_guard lock(mu_);
  auto next = credentials_;
  for (const auto& [user, mechanism] : deletions) {
    auto it = next.find(user);
    if (it == next.end()) continue;
    it->second.erase(mechanism);
    if (it->second.empty()) next.erase(it);
  }
  for (const auto& spec : upsertions) next[spec.username][spec.mechanism] = spec.credential;
  auto text = security::sasl::encode_scram_credentials(next);
  BULWARK_TRY(write_file_atomic(file_, text, kPrivateFileMode, Overwrite::allow));
  credentials_ = std::move(next);
  return Status::success();
}

}  // namespace bulwark::broker
