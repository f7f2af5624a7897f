// Who is asking and what they may do: the per-connection session (principal, SASL progress) and the
// authorization checks handlers make, with Kafka's rules for which API checks what. Internal to the
// broker folder.
#pragma once

#include <atomic>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>
#include <optional>
#include <string>
#include <string_view>

#include "cluster/image.h"
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
  // Requests of this connection handed to the request pool and not yet processed there (see Router).
  std::shared_ptr<std::atomic<int>> requests_on_pool = std::make_shared<std::atomic<int>>(0);
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

// The authorizer with the ACLs of the metadata image: sync() brings it in line with each new image
// (only the differences are added and removed, so checks never see a half-updated set).
class AclStore {
 public:
  explicit AclStore(security::AuthorizerConfig config)
      : authorizer_(std::make_unique<security::Authorizer>(std::move(config))) {}
  security::Authorizer& authorizer() { return *authorizer_; }
  const security::Authorizer& authorizer() const { return *authorizer_; }
  void sync(const cluster::MetadataImage& image);

 private:
  std::unique_ptr<security::Authorizer> authorizer_;
};

// SCRAM credentials as the metadata image has them. Readers take a snapshot.
class ScramStore {
 public:
  std::optional<security::sasl::ScramCredential> find(const std::string& user, security::sasl::Mechanism m) const;
  security::sasl::ScramCredentials all() const;
  void sync(const cluster::MetadataImage& image);

 private:
  mutable std::mutex mu_;
  security::sasl::ScramCredentials credentials_;
};

// Whether the image holds every one of `bindings` (present) or none of them (!present).
bool image_has_acls(const cluster::MetadataImage& image, const std::vector<security::AclBinding>& bindings, bool present);
// Whether the image shows these SCRAM deletions and upsertions.
bool image_has_scram_changes(const cluster::MetadataImage& image,
                             const std::vector<std::pair<std::string, security::sasl::Mechanism>>& deletions,
                             const std::vector<security::sasl::ScramSpec>& upsertions);

// Records for the ACLs and SCRAM credentials of a data dir written before the metadata log
// (bulwark-acls.json, bulwark-scram-credentials.json; the latter is also where `storage format
// --add-scram` leaves its credentials for the first start). Errors name the file.
Result<std::vector<cluster::AnyRecord>> legacy_acl_records(const std::filesystem::path& file,
                                                          const std::function<cluster::Uuid()>& new_id);
Result<std::vector<cluster::AnyRecord>> legacy_scram_records(const std::filesystem::path& file);

// What a SASL listener accepts: sasl.enabled.mechanisms and PLAIN's users from its JAAS config.
struct ListenerSasl {
  std::vector<security::sasl::Mechanism> mechanisms;
  std::map<std::string, std::string> plain_users;  // user -> password, from user_<name>="..."
};

}  // namespace bulwark::broker
