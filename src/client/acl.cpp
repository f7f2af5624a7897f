// kafka-acls.sh's rules for turning options into ACL bindings and filters, and the ACL round trips.
#include "client/acl.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "security/principal.h"
#include "wire/generated/create_acls.h"
#include "wire/generated/delete_acls.h"
#include "wire/generated/describe_acls.h"

namespace bulwark::client {
namespace {

using security::AclBinding;
using security::AclBindingFilter;
using security::Operation;
using security::PatternType;
using security::Permission;
using security::ResourceType;

Error usage(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

// "ClusterAction", "cluster_action", "CLUSTER-ACTION" and "clusteraction" all name CLUSTER_ACTION.
std::string squash(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '_' || c == '-' || std::isspace(static_cast<unsigned char>(c))) continue;
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

constexpr Operation kConcreteOperations[] = {
    Operation::all,   Operation::read,       Operation::write,          Operation::create,
    Operation::remove, Operation::alter,     Operation::describe,       Operation::cluster_action,
    Operation::describe_configs, Operation::alter_configs, Operation::idempotent_write,
    Operation::create_tokens, Operation::describe_tokens,
};

Result<Operation> parse_operation(std::string_view text) {
  const std::string wanted = squash(text);
  for (Operation op : kConcreteOperations) {
    if (squash(security::name_of(op)) == wanted) return op;
  }
  return usage(fmt::format("--operation '{}' is not an ACL operation (use Read, Write, Create, Delete, Alter, Describe, "
                           "ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All)",
                           text));
}

// Kafka's AclEntry.supportedOperations (ALL is allowed everywhere).
std::vector<Operation> supported_operations(ResourceType type) {
  switch (type) {
    case ResourceType::topic:
      return {Operation::read, Operation::write, Operation::create, Operation::describe, Operation::remove,
              Operation::alter, Operation::describe_configs, Operation::alter_configs};
    case ResourceType::group: return {Operation::read, Operation::describe, Operation::remove};
    case ResourceType::cluster:
      return {Operation::create, Operation::cluster_action, Operation::describe_configs, Operation::alter_configs,
              Operation::idempotent_write, Operation::alter, Operation::describe};
    case ResourceType::transactional_id: return {Operation::describe, Operation::write};
    case ResourceType::delegation_token: return {Operation::describe};
    case ResourceType::user: return {Operation::create_tokens, Operation::describe_tokens};
    default: return {};
  }
}

Status check_operation(ResourceType type, Operation op) {
  if (op == Operation::all) return Status::success();
  auto supported = supported_operations(type);
  if (std::find(supported.begin(), supported.end(), op) != supported.end()) return Status::success();
  std::string names;
  for (Operation s : supported) names += (names.empty() ? "" : ", ") + std::string(security::name_of(s));
  return usage(fmt::format("resource type {} does not have operation {}; it supports {} (and ALL)",
                           security::name_of(type), security::name_of(op), names));
}

Status check_principal(std::string_view flag, const std::string& principal) {
  auto parsed = security::parse_principal(principal);
  if (!parsed || parsed->name.empty() || parsed->type.empty()) {
    return usage(fmt::format("{} '{}' is not a principal: write Type:name, e.g. User:alice (or User:* for everyone)",
                             flag, principal));
  }
  return Status::success();
}

struct ResourcePattern {
  ResourceType type;
  std::string name;
  PatternType pattern;
  auto operator<=>(const ResourcePattern&) const = default;
};

// The resources named by --topic/--group/--transactional-id/--cluster with the pattern type given
// (default `fallback`). The cluster is always LITERAL kafka-cluster, as in Kafka.
Result<std::vector<ResourcePattern>> resources(const AclSelectors& s, PatternType fallback, bool allow_filters) {
  PatternType pattern = fallback;
  if (s.pattern_type) {
    auto parsed = security::pattern_type_from(*s.pattern_type);
    if (!parsed) {
      return usage(fmt::format("--resource-pattern-type '{}' is not one of literal, prefixed{}", *s.pattern_type,
                               allow_filters ? ", any, match" : ""));
    }
    pattern = *parsed;
    if (!allow_filters && (pattern == PatternType::any || pattern == PatternType::match)) {
      return usage(fmt::format("--resource-pattern-type {} is a filter; adding ACLs needs literal or prefixed",
                               security::name_of(pattern)));
    }
  }
  std::vector<ResourcePattern> out;
  auto add = [&](ResourceType type, const std::vector<std::string>& names, std::string_view flag) -> Status {
    for (const auto& name : names) {
      if (name.empty()) return usage(fmt::format("{} needs a non-empty name", flag));
      out.push_back({type, name, pattern});
    }
    return Status::success();
  };
  BULWARK_TRY(add(ResourceType::topic, s.topics, "--topic"));
  BULWARK_TRY(add(ResourceType::group, s.groups, "--group"));
  BULWARK_TRY(add(ResourceType::transactional_id, s.transactional_ids, "--transactional-id"));
  if (s.cluster) out.push_back({ResourceType::cluster, std::string(security::kClusterResourceName), PatternType::literal});
  return out;
}

Result<std::vector<Operation>> operations(const AclSelectors& s, std::vector<Operation> fallback) {
  if (s.operations.empty()) return fallback;
  std::vector<Operation> out;
  for (const auto& text : s.operations) {
    auto op = parse_operation(text);
    if (!op) return op.error();
    if (std::find(out.begin(), out.end(), *op) == out.end()) out.push_back(*op);
  }
  return out;
}

// kafka-acls.sh's getAcl: allow principals x allow hosts (default *) and deny principals x deny hosts.
struct Entry {
  std::string principal;
  std::string host;
  Operation operation;
  Permission permission;
};
std::vector<Entry> entries(const AclSelectors& s, const std::vector<Operation>& ops) {
  std::vector<Entry> out;
  auto hosts_or_any = [](const std::vector<std::string>& hosts) {
    return hosts.empty() ? std::vector<std::string>{std::string(security::kWildcardHost)} : hosts;
  };
  for (const auto& principal : s.allow_principals)
    for (const auto& host : hosts_or_any(s.allow_hosts))
      for (Operation op : ops) out.push_back({principal, host, op, Permission::allow});
  for (const auto& principal : s.deny_principals)
    for (const auto& host : hosts_or_any(s.deny_hosts))
      for (Operation op : ops) out.push_back({principal, host, op, Permission::deny});
  return out;
}

Status check_common(const AclSelectors& s) {
  for (const auto& p : s.allow_principals) BULWARK_TRY(check_principal("--allow-principal", p));
  for (const auto& p : s.deny_principals) BULWARK_TRY(check_principal("--deny-principal", p));
  if (!s.allow_hosts.empty() && s.allow_principals.empty() && s.deny_principals.empty()) {
    return usage("--allow-host needs --allow-principal: a host narrows whose access the ACL grants");
  }
  if (!s.deny_hosts.empty() && s.deny_principals.empty() && s.allow_principals.empty()) {
    return usage("--deny-host needs --deny-principal");
  }
  if (s.idempotent && !s.producer) return usage("--idempotent only goes with --producer");
  if (s.producer || s.consumer) {
    if (!s.operations.empty()) return usage("--operation cannot be combined with --producer or --consumer");
    if (!s.deny_principals.empty() || !s.deny_hosts.empty()) {
      return usage("--deny-principal/--deny-host cannot be combined with --producer or --consumer");
    }
  }
  if (s.producer && s.topics.empty()) return usage("with --producer you must specify a --topic");
  if (s.consumer && (s.topics.empty() || s.groups.empty() ||
                     (!s.producer && (s.cluster || !s.transactional_ids.empty())))) {
    return usage("with --consumer you must specify a --topic and a --group and no --cluster or --transactional-id "
                 "option");
  }
  return Status::success();
}

// Resource -> operations for the --producer/--consumer conveniences (kafka-acls.sh's
// getProducerResourceFilterToAcls and getConsumerResourceFilterToAcls).
std::map<ResourcePattern, std::set<Operation>> convenience_operations(const AclSelectors& s,
                                                                      const std::vector<ResourcePattern>& all) {
  std::map<ResourcePattern, std::set<Operation>> out;
  for (const auto& r : all) {
    if (s.producer) {
      if (r.type == ResourceType::topic) out[r].insert({Operation::write, Operation::describe, Operation::create});
      if (r.type == ResourceType::transactional_id) out[r].insert({Operation::write, Operation::describe});
    }
    if (s.consumer) {
      if (r.type == ResourceType::topic) out[r].insert({Operation::read, Operation::describe});
      if (r.type == ResourceType::group) out[r].insert(Operation::read);
    }
  }
  if (s.producer && s.idempotent) {
    out[{ResourceType::cluster, std::string(security::kClusterResourceName), PatternType::literal}].insert(
        Operation::idempotent_write);
  }
  return out;
}

Result<std::vector<AclBinding>> exact_bindings(const AclSelectors& s, PatternType fallback_pattern, bool allow_filters) {
  auto all = resources(s, fallback_pattern, allow_filters);
  if (!all) return all.error();
  std::vector<AclBinding> out;
  auto push = [&](const ResourcePattern& r, const Entry& e) {
    AclBinding b{r.type, r.name, r.pattern, e.principal, e.host, e.operation, e.permission};
    if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(std::move(b));
  };
  if (s.producer || s.consumer) {
    for (const auto& [resource, ops] : convenience_operations(s, *all)) {
      for (const auto& e : entries(s, std::vector<Operation>(ops.begin(), ops.end()))) push(resource, e);
    }
    return out;
  }
  auto ops = operations(s, {Operation::all});
  if (!ops) return ops.error();
  for (const auto& r : *all) {
    for (Operation op : *ops) BULWARK_TRY(check_operation(r.type, op));
    for (const auto& e : entries(s, *ops)) push(r, e);
  }
  return out;
}

std::int8_t code(ResourceType v) { return static_cast<std::int8_t>(v); }
std::int8_t code(PatternType v) { return static_cast<std::int8_t>(v); }
std::int8_t code(Operation v) { return static_cast<std::int8_t>(v); }
std::int8_t code(Permission v) { return static_cast<std::int8_t>(v); }

// Codes from the broker are kept even when unknown to us, so printing never fails.
AclBinding binding_from_wire(std::int8_t type, std::string name, std::int8_t pattern, std::string principal,
                             std::string host, std::int8_t operation, std::int8_t permission) {
  return AclBinding{static_cast<ResourceType>(type), std::move(name), static_cast<PatternType>(pattern),
                    std::move(principal), std::move(host), static_cast<Operation>(operation),
                    static_cast<Permission>(permission)};
}

std::string name_or_code(std::string_view name, std::int8_t value) {
  return name.empty() || name == "UNKNOWN" ? fmt::format("UNKNOWN({})", value) : std::string(name);
}

ErrorKind kind_for(std::int16_t code) {
  return code == 29 || code == 30 || code == 31 || code == 53 ? ErrorKind::unauthenticated : ErrorKind::io;
}

}  // namespace

Result<std::vector<AclBinding>> acl_bindings_to_add(const AclSelectors& s) {
  BULWARK_TRY(check_common(s));
  if (s.allow_principals.empty() && s.deny_principals.empty()) {
    return usage("you must specify one of --allow-principal, --deny-principal when adding ACLs");
  }
  if (s.topics.empty() && s.groups.empty() && s.transactional_ids.empty() && !s.cluster) {
    return usage("you must name at least one resource: --topic, --group, --cluster or --transactional-id");
  }
  auto out = exact_bindings(s, PatternType::literal, false);
  if (!out) return out.error();
  for (const auto& b : *out) {
    if (auto valid = security::validate_acl_binding(b); !valid) return usage(valid.error().message);
  }
  return out;
}

Result<std::vector<AclBindingFilter>> acl_filters_to_remove(const AclSelectors& s) {
  BULWARK_TRY(check_common(s));
  if (s.topics.empty() && s.groups.empty() && s.transactional_ids.empty() && !s.cluster) {
    return usage("you must name at least one resource to remove ACLs from: --topic, --group, --cluster or "
                 "--transactional-id");
  }
  std::vector<AclBindingFilter> out;
  if (s.producer || s.consumer) {
    auto bindings = exact_bindings(s, PatternType::literal, true);
    if (!bindings) return bindings.error();
    for (const auto& b : *bindings) {
      out.push_back({b.resource_type, b.resource_name, b.pattern_type, b.principal, b.host, b.operation, b.permission});
    }
    return out;
  }
  auto all = resources(s, PatternType::literal, true);
  if (!all) return all.error();
  auto ops = operations(s, {Operation::any});
  if (!ops) return ops.error();
  for (const auto& r : *all) {
    for (Operation op : *ops) {
      if (op != Operation::any) BULWARK_TRY(check_operation(r.type, op));
    }
  }
  // (principal, permission, hosts) triples; what is not given matches anything.
  struct Who {
    std::optional<std::string> principal;
    Permission permission;
    std::vector<std::optional<std::string>> hosts;
  };
  auto host_filters = [](const std::vector<std::string>& hosts) {
    std::vector<std::optional<std::string>> out;
    for (const auto& h : hosts) out.push_back(h);
    if (out.empty()) out.push_back(std::nullopt);
    return out;
  };
  std::vector<Who> who;
  for (const auto& p : s.allow_principals) who.push_back({p, Permission::allow, host_filters(s.allow_hosts)});
  for (const auto& p : s.deny_principals) who.push_back({p, Permission::deny, host_filters(s.deny_hosts)});
  if (who.empty()) who.push_back({std::nullopt, Permission::any, {std::nullopt}});
  for (const auto& r : *all) {
    for (const auto& w : who) {
      for (const auto& host : w.hosts) {
        for (Operation op : *ops) out.push_back({r.type, r.name, r.pattern, w.principal, host, op, w.permission});
      }
    }
  }
  return out;
}

Result<std::vector<AclBindingFilter>> acl_filters_to_list(const AclSelectors& s) {
  if (!s.allow_principals.empty() || !s.deny_principals.empty() || !s.operations.empty() || s.producer ||
      s.consumer) {
    return usage("list takes resources and --principal only");
  }
  for (const auto& p : s.principals) BULWARK_TRY(check_principal("--principal", p));
  auto all = resources(s, PatternType::any, true);
  if (!all) return all.error();
  std::vector<std::optional<std::string>> principals;
  for (const auto& p : s.principals) principals.push_back(p);
  if (principals.empty()) principals.push_back(std::nullopt);
  std::vector<AclBindingFilter> out;
  for (const auto& principal : principals) {
    if (all->empty()) {
      AclBindingFilter f;
      f.principal = principal;
      out.push_back(f);
    }
    for (const auto& r : *all) {
      AclBindingFilter f;
      f.resource_type = r.type;
      f.resource_name = r.name;
      f.pattern_type = r.pattern;
      f.principal = principal;
      out.push_back(f);
    }
  }
  return out;
}

std::string render_resource_pattern(ResourceType type, std::string_view name, PatternType pattern) {
  return fmt::format("ResourcePattern(resourceType={}, name={}, patternType={})",
                     name_or_code(security::name_of(type), code(type)), name,
                     name_or_code(security::name_of(pattern), code(pattern)));
}

std::string render_entry(const AclBinding& b) {
  return fmt::format("(principal={}, host={}, operation={}, permissionType={})", b.principal, b.host,
                     name_or_code(security::name_of(b.operation), code(b.operation)),
                     name_or_code(security::name_of(b.permission), code(b.permission)));
}

std::string render_acl_listing(const std::vector<AclBinding>& bindings, std::string_view heading) {
  // Resources in the order first seen, entries in broker order, in kafka-acls.sh's layout.
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& b : bindings) {
    std::string resource = render_resource_pattern(b.resource_type, b.resource_name, b.pattern_type);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == resource; });
    if (it == groups.end()) {
      groups.push_back({resource, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(render_entry(b));
  }
  std::string out;
  for (const auto& [resource, lines] : groups) {
    out += fmt::format("{} `{}`: \n ", heading, resource);
    for (std::size_t i = 0; i < lines.size(); ++i) out += (i ? "\n\t" : "\t") + lines[i];
    out += " \n\n";
  }
  return out;
}

std::string explain_acl_error(std::int16_t error, const std::optional<std::string>& message, std::string_view action,
                              std::string_view identity) {
  const std::string name = error_name(error);
  std::string text;
  switch (error) {
    case 31:
      text = fmt::format("the broker says {} may not {} ({})", identity, action, name);
      break;
    case 54:
      text = fmt::format("the broker has no authorizer configured (authorizer.class.name), so it cannot {} ({})", action,
                         name);
      break;
    case 35:
      text = fmt::format("the broker does not support this request version ({})", name);
      break;
    case 42:
      text = fmt::format("the broker refused the ACL as invalid ({})", name);
      break;
    case 67:
      text = fmt::format("the broker does not know the principal type ({})", name);
      break;
    case 7:
      text = fmt::format("the broker timed out before the change was committed ({})", name);
      break;
    case 41:
      text = fmt::format("the broker is not the controller and could not forward the request ({})", name);
      break;
    default:
      text = fmt::format("the broker could not {} ({})", action, name);
  }
  if (message && !message->empty() && text.find(*message) == std::string::npos) text += ": " + *message;
  return text;
}

Result<std::vector<AclCreateResult>> create_acls(AdminConnection& connection, const std::vector<AclBinding>& bindings) {
  wire::msg::CreateAclsRequest request;
  for (const auto& b : bindings) {
    wire::msg::CreateAclsRequest::AclCreation c;
    c.resource_type = code(b.resource_type);
    c.resource_name = b.resource_name;
    c.resource_pattern_type = code(b.pattern_type);
    c.principal = b.principal;
    c.host = b.host;
    c.operation = code(b.operation);
    c.permission_type = code(b.permission);
    request.creations.push_back(std::move(c));
  }
  auto version = connection.negotiate(request.api_key, 1, request.highest_supported_version);
  if (!version) return version.error();
  auto response = connection.call<wire::msg::CreateAclsRequest, wire::msg::CreateAclsResponse>(request);
  if (!response) return response.error();
  if (response->results.size() != bindings.size()) {
    return make_error(ErrorKind::corrupt, fmt::format("the broker answered {} ACL creations with {} results",
                                                      bindings.size(), response->results.size()));
  }
  std::vector<AclCreateResult> out;
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    const auto& r = response->results[i];
    out.push_back({bindings[i], r.error_code, r.error_message});
  }
  return out;
}

Result<std::vector<AclBinding>> describe_acls(AdminConnection& connection, const AclBindingFilter& filter) {
  // v0 has no pattern type: insist on v1+, which every Kafka since 2.0 has.
  auto version = connection.negotiate(wire::msg::DescribeAclsRequest::api_key, 1,
                                      wire::msg::DescribeAclsRequest::highest_supported_version);
  if (!version) return version.error();
  wire::msg::DescribeAclsRequest request;
  request.resource_type_filter = code(filter.resource_type);
  request.resource_name_filter = filter.resource_name;
  request.pattern_type_filter = code(filter.pattern_type);
  request.principal_filter = filter.principal;
  request.host_filter = filter.host;
  request.operation = code(filter.operation);
  request.permission_type = code(filter.permission);
  auto response = connection.call<wire::msg::DescribeAclsRequest, wire::msg::DescribeAclsResponse>(request);
  if (!response) return response.error();
  if (response->error_code != 0) {
    return make_error(kind_for(response->error_code),
                      explain_acl_error(response->error_code, response->error_message, "describe ACLs",
                                        connection.identity()));
  }
  std::vector<AclBinding> out;
  for (auto& resource : response->resources) {
    for (auto& acl : resource.acls) {
      out.push_back(binding_from_wire(resource.resource_type, resource.resource_name, resource.pattern_type,
                                      std::move(acl.principal), std::move(acl.host), acl.operation,
                                      acl.permission_type));
    }
  }
  return out;
}

Result<std::vector<AclDeleteResult>> delete_acls(AdminConnection& connection,
                                                 const std::vector<AclBindingFilter>& filters) {
  auto version = connection.negotiate(wire::msg::DeleteAclsRequest::api_key, 1,
                                      wire::msg::DeleteAclsRequest::highest_supported_version);
  if (!version) return version.error();
  wire::msg::DeleteAclsRequest request;
  for (const auto& f : filters) {
    wire::msg::DeleteAclsRequest::DeleteAclsFilter w;
    w.resource_type_filter = code(f.resource_type);
    w.resource_name_filter = f.resource_name;
    w.pattern_type_filter = code(f.pattern_type);
    w.principal_filter = f.principal;
    w.host_filter = f.host;
    w.operation = code(f.operation);
    w.permission_type = code(f.permission);
    request.filters.push_back(std::move(w));
  }
  auto response = connection.call<wire::msg::DeleteAclsRequest, wire::msg::DeleteAclsResponse>(request);
  if (!response) return response.error();
  if (response->filter_results.size() != filters.size()) {
    return make_error(ErrorKind::corrupt, fmt::format("the broker answered {} ACL filters with {} results",
                                                      filters.size(), response->filter_results.size()));
  }
  std::vector<AclDeleteResult> out;
  for (std::size_t i = 0; i < filters.size(); ++i) {
    auto& r = response->filter_results[i];
    AclDeleteResult result{filters[i], r.error_code, r.error_message, {}};
    for (auto& m : r.matching_acls) {
      result.matches.push_back({binding_from_wire(m.resource_type, std::move(m.resource_name), m.pattern_type,
                                                  std::move(m.principal), std::move(m.host), m.operation,
                                                  m.permission_type),
                                m.error_code, m.error_message});
    }
    out.push_back(std::move(result));
  }
  return out;
}

}  // namespace bulwark::client
