// `bulwark acl add|list|remove`: kafka-acls.sh's options, spoken to any Kafka-compatible broker with
// CreateAcls/DescribeAcls/DeleteAcls. The rules and round trips are in src/client (client/acl.h).
//
// Exit codes: 0 done, 1 the broker or the connection failed (or refused some ACLs), 2 usage errors.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/acl.h"
#include "client/client.h"

namespace {

using namespace bulwark;

using cli::fail;
using cli::kBrokerError;
using cli::kUsageError;

struct AclFlags {
  client::ConnectionFlags connection;
  client::AclSelectors selectors;
  std::string pattern_type;
  CLI::Option* pattern_option = nullptr;
};

void add_resource_flags(CLI::App* cmd, AclFlags& f, const char* pattern_help) {
  auto& s = f.selectors;
  cmd->add_option("--topic", s.topics, "Topic name (repeatable)");
  cmd->add_option("--group", s.groups, "Consumer group name (repeatable)");
  cmd->add_option("--transactional-id", s.transactional_ids, "Transactional id (repeatable)");
  cmd->add_flag("--cluster", s.cluster, "The cluster resource (kafka-cluster)");
  f.pattern_option = cmd->add_option("--resource-pattern-type", f.pattern_type, pattern_help);
}

void add_principal_flags(CLI::App* cmd, AclFlags& f) {
  auto& s = f.selectors;
  cmd->add_option("--allow-principal", s.allow_principals, "Principal to allow, Type:name, e.g. User:alice (repeatable)");
  cmd->add_option("--deny-principal", s.deny_principals, "Principal to deny, Type:name (repeatable)");
  cmd->add_option("--allow-host", s.allow_hosts, "Host (IP address) the allow ACLs apply to (default *)");
  cmd->add_option("--deny-host", s.deny_hosts, "Host (IP address) the deny ACLs apply to (default *)");
  cmd->add_option("--operation", s.operations,
                  "Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, "
                  "IdempotentWrite, All (repeatable, any case)");
  cmd->add_flag("--producer", s.producer, "Producer ACLs: WRITE, DESCRIBE, CREATE on the topics (and WRITE, DESCRIBE on "
                                          "the transactional ids)");
  cmd->add_flag("--idempotent", s.idempotent, "With --producer: IDEMPOTENT_WRITE on the cluster");
  cmd->add_flag("--consumer", s.consumer, "Consumer ACLs: READ, DESCRIBE on the topics and READ on the groups "
                                          "(needs --group)");
}

client::AclSelectors selectors_of(const AclFlags& f) {
  client::AclSelectors s = f.selectors;
  if (f.pattern_option->count() > 0) s.pattern_type = f.pattern_type;
  return s;
}

int run_add(const AclFlags& f) {
  auto bindings = client::acl_bindings_to_add(selectors_of(f));
  if (!bindings) return fail(bindings.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  auto results = client::create_acls(**connection, *bindings);
  if (!results) {
    std::fprintf(stderr, "error: %s\n", results.error().message.c_str());
    return kBrokerError;
  }

  std::vector<security::AclBinding> added;
  std::vector<std::pair<security::AclBinding, std::string>> failed;
  for (const auto& r : *results) {
    if (r.error_code == 0) {
      added.push_back(r.binding);
    } else {
      failed.emplace_back(r.binding, client::explain_acl_error(r.error_code, r.error_message, "alter ACLs",
                                                               (*connection)->identity()));
    }
  }
  if (!added.empty()) std::printf("%s", client::render_acl_listing(added, "Adding ACLs for resource").c_str());
  if (failed.empty()) return 0;
  std::set<std::string> reasons;
  for (const auto& [binding, reason] : failed) reasons.insert(reason);
  if (reasons.size() == 1 && added.empty()) {
    std::fprintf(stderr, "error: no ACL was added: %s\n", reasons.begin()->c_str());
  } else {
    for (const auto& [binding, reason] : failed) {
      std::fprintf(stderr, "error: %s on %s was not added: %s\n", client::render_entry(binding).c_str(),
                   client::render_resource_pattern(binding.resource_type, binding.resource_name, binding.pattern_type)
                       .c_str(),
                   reason.c_str());
    }
  }
  return kBrokerError;
}

int run_list(const AclFlags& f) {
  auto filters = client::acl_filters_to_list(selectors_of(f));
  if (!filters) return fail(filters.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  std::vector<security::AclBinding> all;
  for (const auto& filter : *filters) {
    auto found = client::describe_acls(**connection, filter);
    if (!found) {
      std::fprintf(stderr, "error: %s\n", found.error().message.c_str());
      return kBrokerError;
    }
    for (auto& b : *found) {
      if (std::find(all.begin(), all.end(), b) == all.end()) all.push_back(std::move(b));
    }
  }
  if (all.empty()) {
    std::fprintf(stderr, "no ACLs match\n");
    return 0;
  }
  std::printf("%s", client::render_acl_listing(all, "Current ACLs for resource").c_str());
  return 0;
}

int run_remove(const AclFlags& f) {
  auto filters = client::acl_filters_to_remove(selectors_of(f));
  if (!filters) return fail(filters.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  auto results = client::delete_acls(**connection, *filters);
  if (!results) {
    std::fprintf(stderr, "error: %s\n", results.error().message.c_str());
    return kBrokerError;
  }
  std::vector<security::AclBinding> removed;
  std::set<std::string> errors;
  for (const auto& r : *results) {
    if (r.error_code != 0) {
      errors.insert(client::explain_acl_error(r.error_code, r.error_message, "alter ACLs", (*connection)->identity()));
      continue;
    }
    for (const auto& m : r.matches) {
      if (m.error_code != 0) {
        errors.insert(client::render_entry(m.binding) + " was not removed: " +
                      client::explain_acl_error(m.error_code, m.error_message, "alter ACLs", (*connection)->identity()));
      } else if (std::find(removed.begin(), removed.end(), m.binding) == removed.end()) {
        removed.push_back(m.binding);
      }
    }
  }
  if (!removed.empty()) {
    std::printf("%s", client::render_acl_listing(removed, "Removed ACLs for resource").c_str());
  } else if (errors.empty()) {
    std::printf("No ACLs matched; nothing was removed.\n");
  }
  for (const auto& e : errors) std::fprintf(stderr, "error: %s\n", e.c_str());
  return errors.empty() ? 0 : kBrokerError;
}

void add_acl_commands(CLI::App& app) {
  auto* group = cli::command_group(app, "acl", "Add, list and remove ACLs on any Kafka-compatible broker (as kafka-acls.sh)");

  {
    auto* cmd = group->add_subcommand("add", "Add ACLs (CreateAcls)");
    auto flags = std::make_shared<AclFlags>();
    cli::add_admin_connection_flags(cmd, flags->connection, "kafka-acls.sh");
    add_resource_flags(cmd, *flags, "literal (default) or prefixed");
    add_principal_flags(cmd, *flags);
    cli::set_action(cmd, [flags] { return run_add(*flags); });
  }
  {
    auto* cmd = group->add_subcommand("list", "List ACLs (DescribeAcls), all or for the given resources/principals");
    auto flags = std::make_shared<AclFlags>();
    cli::add_admin_connection_flags(cmd, flags->connection, "kafka-acls.sh");
    add_resource_flags(cmd, *flags, "any (default), match, literal or prefixed");
    cmd->add_option("--principal", flags->selectors.principals, "Only ACLs of this principal, Type:name (repeatable)");
    cli::set_action(cmd, [flags] { return run_list(*flags); });
  }
  {
    auto* cmd = group->add_subcommand("remove", "Remove ACLs (DeleteAcls); what is not given matches anything");
    auto flags = std::make_shared<AclFlags>();
    cli::add_admin_connection_flags(cmd, flags->connection, "kafka-acls.sh");
    add_resource_flags(cmd, *flags, "literal (default), prefixed, any or match");
    add_principal_flags(cmd, *flags);
    cli::set_action(cmd, [flags] { return run_remove(*flags); });
  }
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_acl_commands);
