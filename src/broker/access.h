// Who is asking and what they may do: the per-connection session (principal, SASL progress) and the
// authorization checks handlers make, with Kafka's rules for which API checks what. Internal to the
// broker folder.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <vector>
#include <optional>
#include <string>
#include <string_view>

#include "net/server.h"
#include "security/authorizer.h"
#include "security/principal.h"
#include "security/sasl.h"

namespace bulwark::broker {

struct BrokerState;
struct Call;

struct Session final : net::ConnectionState {
  security::KafkaPrincipal principal = security::kAnonymousPrincipal;
  enum class SaslStage {
    awaiting_handshake,
    awaiting_raw_token,     // SaslHandshake v0: the next frames are bare SASL tokens (kafka-python)
    awaiting_authenticate,  // SaslHandshake v1: tokens come in SaslAuthenticate requests
    done,
    failed,  // a login failed: every later frame closes the connection (one attempt per connection)
  };
  SaslStage sasl_stage = SaslStage::done;  // done from the start on listeners without SASL
  // Until a SASL login succeeds only ApiVersions and SASL requests are served.
  bool authenticated() const { return sasl_stage == SaslStage::done; }
  std::optional<security::sasl::Mechanism> mechanism;
  std::unique_ptr<security::sasl::ScramServer> scram;
};

// The session of a connection, made on its first request: the TLS principal on SSL listeners (after
// ssl.principal.mapping.rules), ANONYMOUS on PLAINTEXT, "not yet authenticated" on SASL listeners.
// An error means authentication failed (a certificate subject no rule maps); the caller closes.
Result<std::unique_ptr<Session>> open_session(const BrokerState& state, const net::PeerInfo& peer);
Session& session_of(Call& call);

// Authorization as handlers use it. Without an authorizer (authorizer.class.name empty) everything
// is allowed. A denial is written to the audit log unless `audit` is false (Kafka does not log the
// checks that merely filter what a response lists, e.g. Metadata for all topics).
bool authorized(const BrokerState& state, Call& call, security::Operation operation,
                security::ResourceType resource_type, std::string_view resource_name, bool audit = true);
bool authorized_cluster(const BrokerState& state, Call& call, security::Operation operation);
bool authorized_idempotent_write(const BrokerState& state, Call& call);
// Kafka's "authorized operations" bit field (bit = operation code) over the operations the resource
// type supports (AclEntry.supportedOperations), for Metadata, DescribeGroups and DescribeCluster.
std::int32_t authorized_operations(const BrokerState& state, Call& call, security::ResourceType resource_type,
                                   std::string_view resource_name);

// The ACL store: the authorizer plus its durable file (bulwark-acls.json in the metadata directory).
class AclStore {
 public:
  static Result<std::unique_ptr<AclStore>> open(std::filesystem::path file, security::AuthorizerConfig config);
  security::Authorizer& authorizer() { return *authorizer_; }
  const security::Authorizer& authorizer() const { return *authorizer_; }
  // Adds (after validate_acl_binding) and persists; per-binding errors are reported by the caller.
  Status add(const std::vector<security::AclBinding>& bindings);
  std::vector<security::AclBinding> remove(const security::AclBindingFilter& filter, Status& persisted);

 private:
  AclStore(std::filesystem::path file, security::AuthorizerConfig config);
  Status persist();
  std::filesystem::path file_;
  std::unique_ptr<security::Authorizer> authorizer_;
  std::mutex write_mu_;
};

// SCRAM credentials, durable in bulwark-scram-credentials.json (mode 0600: salted keys still allow
// offline guessing) in the metadata directory. Readers take a snapshot; writers persist then publish.
class ScramStore {
 public:
  static Result<std::unique_ptr<ScramStore>> open(std::filesystem::path file);
  std::optional<security::sasl::ScramCredential> find(const std::string& user, security::sasl::Mechanism m) const;
  security::sasl::ScramCredentials all() const;
  // Applies deletions then upsertions as one durable change.
  Status apply(const std::vector<std::pair<std::string, security::sasl::Mechanism>>& deletions,
               const std::vector<security::sasl::ScramSpec>& upsertions);

 private:
  explicit ScramStore(std::filesystem::path file) : file_(std::move(file)) {}
  std::filesystem::path file_;
  mutable std::mutex mu_;
  security::sasl::ScramCredentials credentials_;
};

// What a SASL listener accepts: sasl.enabled.mechanisms and PLAIN's users from its JAAS config.
struct ListenerSasl {
  std::vector<security::sasl::Mechanism> mechanisms;
  std::map<std::string, std::string> plain_users;  // user -> password, from user_<name>="..."
};

}  // namespace bulwark::broker
