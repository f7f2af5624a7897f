#include "security/authorizer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

namespace bulwark::security {
namespace {

using json = nlohmann::json;

struct NamedCode {
  std::string_view name;
  int code;
};

constexpr NamedCode kResourceTypes[] = {{"ANY", 1},     {"TOPIC", 2},           {"GROUP", 3},
                                        {"CLUSTER", 4}, {"TRANSACTIONAL_ID", 5}, {"DELEGATION_TOKEN", 6},
                                        {"USER", 7}};
constexpr NamedCode kPatternTypes[] = {{"ANY", 1}, {"MATCH", 2}, {"LITERAL", 3}, {"PREFIXED", 4}};
constexpr NamedCode kOperations[] = {
    {"ANY", 1},        {"ALL", 2},          {"READ", 3},         {"WRITE", 4},
    {"CREATE", 5},     {"DELETE", 6},       {"ALTER", 7},        {"DESCRIBE", 8},
    {"CLUSTER_ACTION", 9}, {"DESCRIBE_CONFIGS", 10}, {"ALTER_CONFIGS", 11}, {"IDEMPOTENT_WRITE", 12},
    {"CREATE_TOKENS", 13}, {"DESCRIBE_TOKENS", 14}};
constexpr NamedCode kPermissions[] = {{"ANY", 1}, {"DENY", 2}, {"ALLOW", 3}};

template <std::size_t N>
std::string_view lookup_name(const NamedCode (&table)[N], int code) {
  for (const auto& e : table)
    if (e.code == code) return e.name;
  return "UNKNOWN";
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

template <class Enum, std::size_t N>
Result<Enum> lookup_code(const NamedCode (&table)[N], std::string_view text, std::string_view what) {
  for (const auto& e : table)
    if (iequals(e.name, text) || text == std::to_string(e.code)) return static_cast<Enum>(e.code);
  return make_error(ErrorKind::invalid_argument, "unknown " + std::string(what) + " '" + std::string(text) + "'");
}

template <std::size_t N>
bool known_code(const NamedCode (&table)[N], int code) {
  return lookup_name(table, code) != "UNKNOWN";
}

bool is_ip_address(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 || inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// An ALLOW ACL for `granted` lets the principal perform `requested`.
bool allow_covers(Operation granted, Operation requested) {
  if (granted == requested || granted == Operation::all) return true;
  if (requested == Operation::describe)
    return granted == Operation::read || granted == Operation::write || granted == Operation::remove ||
           granted == Operation::alter;
  if (requested == Operation::describe_configs) return granted == Operation::alter_configs;
  return false;
}

// Strings from clients go into log lines: keep them on one line and printable.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

// SecurityUtils.resourceTypeName: the spelling Kafka's audit log uses.
std::string_view resource_type_display_name(ResourceType type) {
  switch (type) {
    case ResourceType::topic: return "Topic";
    case ResourceType::group: return "Group";
    case ResourceType::cluster: return "Cluster";
    case ResourceType::transactional_id: return "TransactionalId";
    case ResourceType::delegation_token: return "DelegationToken";
    case ResourceType::user: return "User";
    default: return "Unknown";
  }
}

}  // namespace

std::string_view name_of(ResourceType v) { return lookup_name(kResourceTypes, static_cast<int>(v)); }
std::string_view name_of(PatternType v) { return lookup_name(kPatternTypes, static_cast<int>(v)); }
std::string_view name_of(Operation v) { return lookup_name(kOperations, static_cast<int>(v)); }
std::string_view name_of(Permission v) { return lookup_name(kPermissions, static_cast<int>(v)); }
Result<ResourceType> resource_type_from(std::string_view s) {
  return lookup_code<ResourceType>(kResourceTypes, s, "resource type");
}
Result<PatternType> pattern_type_from(std::string_view s) {
  return lookup_code<PatternType>(kPatternTypes, s, "pattern type");
}
Result<Operation> operation_from(std::string_view s) { return lookup_code<Operation>(kOperations, s, "operation"); }
namespace {
template <class Enum, std::size_t N>
std::optional<Enum> from_code(const NamedCode (&table)[N], std::int8_t code) {
  if (!known_code(table, code)) return std::nullopt;
  return static_cast<Enum>(code);
}
}  // namespace

std::optional<ResourceType> resource_type_from_code(std::int8_t code) { return from_code<ResourceType>(kResourceTypes, code); }
std::optional<PatternType> pattern_type_from_code(std::int8_t code) { return from_code<PatternType>(kPatternTypes, code); }
std::optional<Operation> operation_from_code(std::int8_t code) { return from_code<Operation>(kOperations, code); }
std::optional<Permission> permission_from_code(std::int8_t code) { return from_code<Permission>(kPermissions, code); }

Result<Permission> permission_from(std::string_view s) {
  return lookup_code<Permission>(kPermissions, s, "permission type");
}

std::string AclBinding::to_string() const {
  return "(pattern=" + std::string(name_of(resource_type)) + ":" + std::string(name_of(pattern_type)) + ":" +
         resource_name + ", principal=" + principal + ", host=" + host + ", operation=" +
         std::string(name_of(operation)) + ", permission=" + std::string(name_of(permission)) + ")";
}

bool AclBindingFilter::matches(const AclBinding& b) const {
  if (resource_type != ResourceType::any && resource_type != b.resource_type) return false;
  if (pattern_type != PatternType::any && pattern_type != PatternType::match && pattern_type != b.pattern_type)
    return false;
  if (resource_name) {
    if (pattern_type == PatternType::any || pattern_type == b.pattern_type) {
      if (*resource_name != b.resource_name) return false;
    } else if (b.pattern_type == PatternType::literal) {  // MATCH against a literal ACL
      if (*resource_name != b.resource_name && b.resource_name != kWildcardResource) return false;
    } else {  // MATCH against a prefixed ACL
      if (!std::string_view(*resource_name).starts_with(b.resource_name)) return false;
    }
  }
  if (principal && *principal != b.principal) return false;
  if (host && *host != b.host) return false;
  if (operation != Operation::any && operation != b.operation) return false;
  if (permission != Permission::any && permission != b.permission) return false;
  return true;
}

Status validate_acl_binding(const AclBinding& b) {
  auto invalid = [&](std::string why) {
    return make_error(ErrorKind::invalid_argument, "invalid ACL " + printable(b.to_string()) + ": " + why);
  };
  if (!known_code(kResourceTypes, static_cast<int>(b.resource_type)) || b.resource_type == ResourceType::any)
    return invalid("the resource type must be TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN or USER");
  if (b.pattern_type != PatternType::literal && b.pattern_type != PatternType::prefixed)
    return invalid("the pattern type must be LITERAL or PREFIXED");
  if (!known_code(kOperations, static_cast<int>(b.operation)) || b.operation == Operation::any)
    return invalid("the operation must be a specific operation or ALL, not ANY");
  if (b.permission != Permission::allow && b.permission != Permission::deny)
    return invalid("the permission must be ALLOW or DENY");
  if (b.resource_name.empty()) return invalid("the resource name is empty");
  auto principal = parse_principal(b.principal);
  if (!principal) return invalid(principal.error().message);
  if (b.host != kWildcardHost && !is_ip_address(b.host))
    return invalid("the host must be * or an IP address, not '" + b.host + "'");
  return Status::success();
}

Result<std::vector<std::string>> parse_super_users(std::string_view value) {
  std::vector<std::string> users;
  while (!value.empty()) {
    auto semicolon = value.find(';');
    std::string_view item = value.substr(0, semicolon);
    value = semicolon == std::string_view::npos ? std::string_view() : value.substr(semicolon + 1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.remove_prefix(1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.remove_suffix(1);
    if (item.empty()) continue;
    auto principal = parse_principal(item);
    if (!principal) return make_error(ErrorKind::invalid_argument, "super.users: " + principal.error().message);
    users.push_back(principal->to_string());
  }
  return users;
}

// ---- the index ----

struct Authorizer::Snapshot {
  struct Entry {
    std::string principal;
    std::string host;
    Operation operation;
    Permission permission;
  };
  using EntriesByName = std::map<std::string, std::vector<Entry>, std::less<>>;
  struct TypeIndex {
    EntriesByName literal;
    EntriesByName prefixed;
    std::vector<std::size_t> prefix_lengths;  // distinct lengths of prefixed names, ascending
  };

  std::vector<AclBinding> bindings;  // unique, in insertion order
  std::array<TypeIndex, 8> by_type;  // indexed by the resource type's code

  explicit Snapshot(std::vector<AclBinding> all) : bindings(std::move(all)) {
    for (const AclBinding& b : bindings) {
      TypeIndex& index = by_type[static_cast<std::size_t>(b.resource_type)];
      auto& map = b.pattern_type == PatternType::literal ? index.literal : index.prefixed;
      map[b.resource_name].push_back(Entry{b.principal, b.host, b.operation, b.permission});
    }
    for (TypeIndex& index : by_type) {
      std::set<std::size_t> lengths;
      for (const auto& [name, entries] : index.prefixed) lengths.insert(name.size());
      index.prefix_lengths.assign(lengths.begin(), lengths.end());
    }
  }

  const TypeIndex* index_for(ResourceType type) const {
    // Only concrete resource types are ever authorized; ANY or an unknown code is denied, even when
    // allow.everyone.if.no.acl.found is set.
    if (type < ResourceType::topic || type > ResourceType::user) return nullptr;
    return &by_type[static_cast<std::size_t>(type)];
  }
};

Authorizer::Authorizer(AuthorizerConfig config) : config_(std::move(config)) {
  snapshot_.store(std::make_shared<const Snapshot>(std::vector<AclBinding>{}));
}

Authorizer::~Authorizer() = default;

std::shared_ptr<const Authorizer::Snapshot> Authorizer::snapshot() const { return snapshot_.load(); }

Status Authorizer::add_acls(const std::vector<AclBinding>& bindings) {
  for (const AclBinding& b : bindings) BULWARK_TRY(validate_acl_binding(b));
  std::lock_guard lock(writer_mutex_);
  auto current = snapshot();
  std::vector<AclBinding> all = current->bindings;
  // Set semantics, as Kafka: a binding already present is not added twice.
  auto key = [](const AclBinding& b) {
    return std::tie(b.resource_type, b.resource_name, b.pattern_type, b.principal, b.host, b.operation,
                    b.permission);
  };
  auto less = [&](const AclBinding* a, const AclBinding* b) { return key(*a) < key(*b); };
  std::set<const AclBinding*, decltype(less)> present(less);
  for (const AclBinding& b : all) present.insert(&b);
  std::vector<AclBinding> added;
  for (const AclBinding& b : bindings)
    if (present.insert(&b).second) added.push_back(b);
  all.insert(all.end(), added.begin(), added.end());
  if (all.size() != current->bindings.size()) snapshot_.store(std::make_shared<const Snapshot>(std::move(all)));
  return Status::success();
}

std::vector<AclBinding> Authorizer::remove(const AclBindingFilter& filter) {
  std::lock_guard lock(writer_mutex_);
  auto current = snapshot();
  std::vector<AclBinding> kept, removed;
  for (const AclBinding& b : current->bindings) (filter.matches(b) ? removed : kept).push_back(b);
  if (!removed.empty()) snapshot_.store(std::make_shared<const Snapshot>(std::move(kept)));
  return removed;
}

std::vector<AclBinding> Authorizer::describe(const AclBindingFilter& filter) const {
  auto current = snapshot();
  std::vector<AclBinding> out;
  for (const AclBinding& b : current->bindings)
    if (filter.matches(b)) out.push_back(b);
  return out;
}

std::size_t Authorizer::acl_count() const { return snapshot()->bindings.size(); }

bool Authorizer::is_super_user(const KafkaPrincipal& principal) const {
  const std::string name = principal.to_string();
  return std::find(config_.super_users.begin(), config_.super_users.end(), name) != config_.super_users.end();
}

Decision Authorizer::authorize(const KafkaPrincipal& principal, std::string_view client_host, Operation operation,
                               ResourceType resource_type, std::string_view resource_name) const {
  if (is_super_user(principal)) return Decision::allowed;
  auto current = snapshot();
  const Snapshot::TypeIndex* index = current->index_for(resource_type);
  if (index == nullptr || operation <= Operation::all || operation > Operation::describe_tokens)
    return Decision::denied;
  const std::string principal_name = principal.to_string();

  bool found_acls = false;
  bool denied = false;
  bool allowed = false;
  auto consider = [&](const std::vector<Snapshot::Entry>& entries) {
    found_acls = true;
    for (const Snapshot::Entry& e : entries) {
      if (e.principal != principal_name && e.principal != kWildcardPrincipal) continue;
      if (e.host != client_host && e.host != kWildcardHost) continue;
      if (e.permission == Permission::deny) {
        if (e.operation == operation || e.operation == Operation::all) denied = true;
      } else if (allow_covers(e.operation, operation)) {
        allowed = true;
      }
    }
  };
  if (auto it = index->literal.find(resource_name); it != index->literal.end()) consider(it->second);
  if (resource_name != kWildcardResource)
    if (auto it = index->literal.find(kWildcardResource); it != index->literal.end()) consider(it->second);
  for (std::size_t length : index->prefix_lengths) {
    if (length > resource_name.size()) break;
    if (auto it = index->prefixed.find(resource_name.substr(0, length)); it != index->prefixed.end())
      consider(it->second);
    if (denied) break;
  }
  if (denied) return Decision::denied;
  if (allowed) return Decision::allowed;
  if (!found_acls && config_.allow_everyone_if_no_acl_found) return Decision::allowed;
  return Decision::denied;
}

Decision Authorizer::authorize_by_resource_type(const KafkaPrincipal& principal, std::string_view client_host,
                                                Operation operation, ResourceType resource_type) const {
  if (is_super_user(principal)) return Decision::allowed;
  auto current = snapshot();
  const Snapshot::TypeIndex* index = current->index_for(resource_type);
  if (index == nullptr) return Decision::denied;
  if (index->literal.empty() && index->prefixed.empty())
    return config_.allow_everyone_if_no_acl_found ? Decision::allowed : Decision::denied;
  const std::string principal_name = principal.to_string();
  auto applies = [&](const Snapshot::Entry& e, Permission permission) {
    return e.permission == permission && (e.principal == principal_name || e.principal == kWildcardPrincipal) &&
           (e.host == client_host || e.host == kWildcardHost) &&
           (e.operation == operation || e.operation == Operation::all);
  };
  auto has = [&](const std::vector<Snapshot::Entry>& entries, Permission permission) {
    return std::any_of(entries.begin(), entries.end(), [&](const auto& e) { return applies(e, permission); });
  };
  std::vector<std::string_view> deny_prefixes;
  for (const auto& [name, entries] : index->prefixed)
    if (has(entries, Permission::deny)) deny_prefixes.push_back(name);
  auto denied_by_prefix = [&](std::string_view name) {
    return std::any_of(deny_prefixes.begin(), deny_prefixes.end(),
                       [&](std::string_view p) { return name.starts_with(p); });
  };
  if (auto it = index->literal.find(kWildcardResource); it != index->literal.end()) {
    if (has(it->second, Permission::deny)) return Decision::denied;
    if (has(it->second, Permission::allow)) return Decision::allowed;
  }
  for (const auto& [name, entries] : index->literal)
    if (name != kWildcardResource && has(entries, Permission::allow) && !has(entries, Permission::deny) &&
        !denied_by_prefix(name))
      return Decision::allowed;
  for (const auto& [name, entries] : index->prefixed)
    if (has(entries, Permission::allow) && !denied_by_prefix(name)) return Decision::allowed;
  return Decision::denied;
}

Decision Authorizer::authorize_idempotent_write(const KafkaPrincipal& principal, std::string_view client_host) const {
  if (authorize(principal, client_host, Operation::idempotent_write, ResourceType::cluster,
                kClusterResourceName) == Decision::allowed)
    return Decision::allowed;
  return authorize_by_resource_type(principal, client_host, Operation::write, ResourceType::topic);
}

// ---- durable form ----

std::string encode_acls(const std::vector<AclBinding>& bindings) {
  json acls = json::array();
  for (const AclBinding& b : bindings) {
    acls.push_back({{"resource_type", name_of(b.resource_type)},
                    {"resource_name", b.resource_name},
                    {"pattern_type", name_of(b.pattern_type)},
                    {"principal", b.principal},
                    {"host", b.host},
                    {"operation", name_of(b.operation)},
                    {"permission", name_of(b.permission)}});
  }
  json doc = {{"version", 1}, {"acls", std::move(acls)}};
  return doc.dump(1) + "\n";
}

Result<std::vector<AclBinding>> decode_acls(std::string_view text) {
  auto corrupt = [](std::string why) { return make_error(ErrorKind::corrupt, "ACL file: " + why); };
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return corrupt("not valid JSON");
  if (!doc.is_object() || !doc.contains("version") || !doc["version"].is_number_integer())
    return corrupt("no version field");
  if (doc["version"].get<std::int64_t>() != 1)
    return corrupt("version " + doc["version"].dump() + " is not one this Bulwark reads (1)");
  if (!doc.contains("acls") || !doc["acls"].is_array()) return corrupt("no acls array");
  std::vector<AclBinding> out;
  std::size_t position = 0;
  for (const json& entry : doc["acls"]) {
    const std::string where = "entry " + std::to_string(position++);
    if (!entry.is_object()) return corrupt(where + " is not an object");
    auto field = [&](const char* key) -> Result<std::string> {
      auto it = entry.find(key);
      if (it == entry.end() || !it->is_string()) return corrupt(where + " has no string field '" + key + "'");
      return it->get<std::string>();
    };
    AclBinding b;
    auto resource_type = field("resource_type");
    auto resource_name = field("resource_name");
    auto pattern_type = field("pattern_type");
    auto principal = field("principal");
    auto host = field("host");
    auto operation = field("operation");
    auto permission = field("permission");
    for (const auto* r : {&resource_type, &resource_name, &pattern_type, &principal, &host, &operation, &permission})
      if (!r->ok()) return r->error();
    auto rt = resource_type_from(*resource_type);
    auto pt = pattern_type_from(*pattern_type);
    auto op = operation_from(*operation);
    auto pm = permission_from(*permission);
    if (!rt) return corrupt(where + ": " + rt.error().message);
    if (!pt) return corrupt(where + ": " + pt.error().message);
    if (!op) return corrupt(where + ": " + op.error().message);
    if (!pm) return corrupt(where + ": " + pm.error().message);
    b.resource_type = *rt;
    b.resource_name = std::move(*resource_name);
    b.pattern_type = *pt;
    b.principal = std::move(*principal);
    b.host = std::move(*host);
    b.operation = *op;
    b.permission = *pm;
    if (auto valid = validate_acl_binding(b); !valid) return corrupt(where + ": " + valid.error().message);
    out.push_back(std::move(b));
  }
  return out;
}

std::string render_denial(const KafkaPrincipal& principal, std::string_view client_host, Operation operation,
                          ResourceType resource_type, std::string_view resource_name, PatternType pattern_type) {
  // Kafka's kafka.authorizer.logger wording, so existing log searches keep working.
  return "Principal = " + printable(principal.to_string()) + " is Denied operation = " +
         std::string(name_of(operation)) + " from host = " + printable(client_host) + " on resource = " +
         std::string(resource_type_display_name(resource_type)) + ":" + std::string(name_of(pattern_type)) + ":" +
         printable(resource_name);
}

}  // namespace bulwark::security
