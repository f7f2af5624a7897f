// ACL administration as kafka-acls.sh does it: command-line selectors turned into ACL bindings and
// filters (including the --producer/--consumer conveniences), the CreateAcls/DescribeAcls/DeleteAcls
// round trips, Kafka's printed forms, and broker error codes explained in plain words.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "client/client.h"
#include "security/authorizer.h"

namespace bulwark::client {

// What the user selected on the command line (kafka-acls.sh's options, by their names).
struct AclSelectors {
  std::vector<std::string> allow_principals;  // --allow-principal
  std::vector<std::string> deny_principals;   // --deny-principal
  std::vector<std::string> allow_hosts;       // --allow-host
  std::vector<std::string> deny_hosts;        // --deny-host
  std::vector<std::string> operations;        // --operation (Kafka names, case-insensitive)
  std::vector<std::string> topics;            // --topic
  std::vector<std::string> groups;            // --group
  std::vector<std::string> transactional_ids; // --transactional-id
  bool cluster = false;                       // --cluster
  std::optional<std::string> pattern_type;    // --resource-pattern-type
  bool producer = false;                      // --producer
  bool consumer = false;                      // --consumer
  bool idempotent = false;                    // --idempotent
  std::vector<std::string> principals;        // --principal (list only)
};

// `acl add`: every binding to create. Errors (invalid_argument) say which flag is wrong, in
// kafka-acls.sh's terms: no principal, an operation the resource type does not have, --producer
// without --topic, a pattern type other than literal/prefixed, ...
Result<std::vector<security::AclBinding>> acl_bindings_to_add(const AclSelectors& selectors);
// `acl remove`: one filter per resource (and per principal/host/operation given; what is not given
// matches anything). At least one resource is required.
Result<std::vector<security::AclBindingFilter>> acl_filters_to_remove(const AclSelectors& selectors);
// `acl list`: one filter per resource (all ACLs when none), narrowed to --principal if given.
Result<std::vector<security::AclBindingFilter>> acl_filters_to_list(const AclSelectors& selectors);

// Kafka's printed forms: "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)" and
// "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)".
std::string render_resource_pattern(security::ResourceType type, std::string_view name, security::PatternType pattern);
std::string render_entry(const security::AclBinding& binding);
// Bindings grouped by resource in Kafka's "Current ACLs for resource `...`:" blocks.
std::string render_acl_listing(const std::vector<security::AclBinding>& bindings, std::string_view heading);

// A broker error on an ACL request, in plain words; `action` is what was attempted ("alter ACLs",
// "describe ACLs"), `identity` who we are (AdminConnection::identity()).
std::string explain_acl_error(std::int16_t code, const std::optional<std::string>& message, std::string_view action,
                              std::string_view identity);

// ---- Round trips ---------------------------------------------------------------------------------
struct AclCreateResult {
  security::AclBinding binding;
  std::int16_t error_code = 0;
  std::optional<std::string> error_message;
};
Result<std::vector<AclCreateResult>> create_acls(AdminConnection& connection,
                                                 const std::vector<security::AclBinding>& bindings);

// A request-level failure (the broker refused the whole request) comes back as an Error whose message
// is explain_acl_error's.
Result<std::vector<security::AclBinding>> describe_acls(AdminConnection& connection,
                                                        const security::AclBindingFilter& filter);

struct AclDeleteResult {
  security::AclBindingFilter filter;
  std::int16_t error_code = 0;  // for the whole filter
  std::optional<std::string> error_message;
  struct Match {
    security::AclBinding binding;
    std::int16_t error_code = 0;
    std::optional<std::string> error_message;
  };
  std::vector<Match> matches;
};
Result<std::vector<AclDeleteResult>> delete_acls(AdminConnection& connection,
                                                 const std::vector<security::AclBindingFilter>& filters);

}  // namespace bulwark::client
