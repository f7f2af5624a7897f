// ACL authorizer with the semantics of Kafka's StandardAuthorizer (KRaft):
//  1. a super user (super.users) is allowed everything;
//  2. the ACLs that apply to a resource are the LITERAL ACLs on its exact name, the LITERAL ACLs on
//     the wildcard name "*", and the PREFIXED ACLs whose name is a prefix of it;
//  3. among those, the ones for the principal (or User:*, which matches a principal of any type, as
//     Kafka's matchingPrincipals does) and the client host (or "*"):
//     a DENY for the operation (or ALL) wins over everything; an ALLOW for the operation, for ALL,
//     or for an operation implying it (READ/WRITE/DELETE/ALTER imply DESCRIBE, ALTER_CONFIGS implies
//     DESCRIBE_CONFIGS) allows;
//  4. no ACL at all on the resource (any principal, any host): allow.everyone.if.no.acl.found decides;
//     otherwise denied.
// IDEMPOTENT_WRITE on the cluster: Kafka's brokers (2.8+) also accept WRITE on any topic (via
// authorizeByResourceType); authorize_idempotent_write() does that, authorize_by_resource_type()
// is the general form (see there for what is simplified).
//
// Thread safety: authorize/describe read an immutable snapshot (atomic shared_ptr); writers
// (add_acls/remove) are serialized and publish a new snapshot, so readers never wait for writers.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "security/principal.h"

namespace bulwark::security {

// Kafka's wire codes.
enum class ResourceType : std::int8_t {
  any = 1,
  topic = 2,
  group = 3,
  cluster = 4,
  transactional_id = 5,
  delegation_token = 6,
  user = 7,
};
enum class PatternType : std::int8_t { any = 1, match = 2, literal = 3, prefixed = 4 };
enum class Operation : std::int8_t {
  any = 1,
  all = 2,
  read = 3,
  write = 4,
  create = 5,
  remove = 6,  // Kafka's DELETE ("delete" is a C++ keyword)
  alter = 7,
  describe = 8,
  cluster_action = 9,
  describe_configs = 10,
  alter_configs = 11,
  idempotent_write = 12,
  create_tokens = 13,
  describe_tokens = 14,
};
enum class Permission : std::int8_t { any = 1, deny = 2, allow = 3 };
enum class Decision { allowed, denied };

// Kafka's names: "TOPIC", "LITERAL", "DESCRIBE_CONFIGS", "ALLOW", ...
std::string_view name_of(ResourceType);
std::string_view name_of(PatternType);
std::string_view name_of(Operation);
std::string_view name_of(Permission);
// From a name (case-insensitive, as Kafka's fromString) or the decimal wire code.
Result<ResourceType> resource_type_from(std::string_view);
Result<PatternType> pattern_type_from(std::string_view);
Result<Operation> operation_from(std::string_view);
Result<Permission> permission_from(std::string_view);
// From the int8 wire code; nullopt for a code Kafka does not define (0 = UNKNOWN included).
std::optional<ResourceType> resource_type_from_code(std::int8_t code);
std::optional<PatternType> pattern_type_from_code(std::int8_t code);
std::optional<Operation> operation_from_code(std::int8_t code);
std::optional<Permission> permission_from_code(std::int8_t code);

inline constexpr std::string_view kWildcardResource = "*";
inline constexpr std::string_view kWildcardPrincipal = "User:*";
inline constexpr std::string_view kWildcardHost = "*";
inline constexpr std::string_view kClusterResourceName = "kafka-cluster";

struct AclBinding {
  ResourceType resource_type = ResourceType::topic;
  std::string resource_name;
  PatternType pattern_type = PatternType::literal;
  std::string principal;  // "User:alice" or "User:*"
  std::string host = "*";  // "*" or one IP address
  Operation operation = Operation::read;
  Permission permission = Permission::allow;

  friend bool operator==(const AclBinding&, const AclBinding&) = default;
  std::string to_string() const;
};

// Kafka's AclBindingFilter. Empty optional fields (name, principal, host) match anything.
// pattern_type any: any pattern, names compared exactly. pattern_type match: the ACLs that would
// apply to a resource named resource_name (literal exact, literal "*", prefixed prefixes of it).
struct AclBindingFilter {
  ResourceType resource_type = ResourceType::any;
  std::optional<std::string> resource_name;
  PatternType pattern_type = PatternType::any;
  std::optional<std::string> principal;
  std::optional<std::string> host;
  Operation operation = Operation::any;
  Permission permission = Permission::any;

  static AclBindingFilter any() { return {}; }
  bool matches(const AclBinding&) const;
};

// Why an ACL binding cannot be stored: Kafka's AclControlManager.validateNewAcl (resource type not
// ANY, pattern LITERAL or PREFIXED, operation not ANY, permission ALLOW or DENY, non-empty resource
// name, principal "Type:name"), and, stricter than Kafka, a non-empty principal name and a host that
// is "*" or an IPv4/IPv6 address (Kafka compares hosts as strings, so any other value never matches).
Status validate_acl_binding(const AclBinding&);

struct AuthorizerConfig {
  std::vector<std::string> super_users;  // "User:admin", parsed from super.users (semicolon list)
  bool allow_everyone_if_no_acl_found = false;
};

// super.users as Kafka writes it: "User:a;User:b". Empty entries are skipped.
Result<std::vector<std::string>> parse_super_users(std::string_view value);

class Authorizer {
 public:
  explicit Authorizer(AuthorizerConfig config);
  ~Authorizer();
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // All or nothing: if any binding is invalid, none is added and the error names it. Adding a
  // binding that already exists is not an error (the set keeps one copy). Kafka's CreateAcls answers
  // per binding: call validate_acl_binding() on each, report the failures, add the rest.
  Status add_acls(const std::vector<AclBinding>& bindings);
  // Removes and returns every binding the filter matches.
  std::vector<AclBinding> remove(const AclBindingFilter& filter);
  std::vector<AclBinding> describe(const AclBindingFilter& filter) const;
  std::size_t acl_count() const;

  Decision authorize(const KafkaPrincipal& principal, std::string_view client_host, Operation operation,
                     ResourceType resource_type, std::string_view resource_name) const;

  // Kafka's Authorizer.authorizeByResourceType: allowed if the principal could perform `operation`
  // on at least one resource of this type. Super users: allowed. A DENY on the literal "*" denies.
  // An ALLOW (op or ALL; implied operations are not considered, as in Kafka) on a literal name counts
  // unless a DENY covers that name (literal same name or a prefix of it); an ALLOW on a prefix counts
  // unless a DENY prefix is a prefix of it. With no ACL of this resource type at all,
  // allow.everyone.if.no.acl.found decides.
  Decision authorize_by_resource_type(const KafkaPrincipal& principal, std::string_view client_host,
                                      Operation operation, ResourceType resource_type) const;

  // IDEMPOTENT_WRITE on the cluster, or WRITE on any topic (Kafka 2.8+ InitProducerId rule).
  Decision authorize_idempotent_write(const KafkaPrincipal& principal, std::string_view client_host) const;

  bool is_super_user(const KafkaPrincipal& principal) const;

 private:
  struct Snapshot;
  std::shared_ptr<const Snapshot> snapshot() const;

  AuthorizerConfig config_;
  std::mutex writer_mutex_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
};

// Durable form: a JSON document {"version":1,"acls":[{"resource_type":"TOPIC",...}]}.
std::string encode_acls(const std::vector<AclBinding>& bindings);
// Every binding is validated; any damage (bad JSON, unknown names, missing fields) is an error of
// kind corrupt that says which entry.
Result<std::vector<AclBinding>> decode_acls(std::string_view text);

// One log line for a denied request, in the words of Kafka's authorizer audit log, e.g.
// "Principal = User:bob is Denied operation = WRITE from host = 10.0.0.7 on resource = Topic:LITERAL:orders"
// Only names; no credential ever reaches it. Control characters from clients become '?'.
std::string render_denial(const KafkaPrincipal& principal, std::string_view client_host, Operation operation,
                          ResourceType resource_type, std::string_view resource_name,
                          PatternType pattern_type = PatternType::literal);

}  // namespace bulwark::security
