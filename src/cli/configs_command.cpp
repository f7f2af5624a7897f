// `bulwark configs`: kafka-configs.sh's --describe and --alter for topics and brokers, spoken to any
// Kafka-compatible broker with DescribeConfigs and IncrementalAlterConfigs. Kafka's action-flag form
// (`bulwark configs --describe --entity-type topics --entity-name T`) and subcommands (`bulwark configs
// describe --topic T`) are both accepted; the rules and round trips are in client/configs.h.
//
// A broker's own configs are asked of that broker (as kafka-configs.sh does); everything else goes to
// the bootstrap broker.
//
// Exit codes: 0 done, 1 the broker or the connection failed (or refused the change), 2 usage errors.
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/client.h"
#include "client/configs.h"
#include "client/topics.h"

namespace {

using namespace bulwark;

using cli::fail;
using cli::kBrokerError;
using cli::kUsageError;

Error usage(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

struct ConfigsFlags {
  client::ConnectionFlags connection;
  bool describe = false, alter = false, all = false, entity_default = false, broker_defaults = false;
  std::string entity_type, entity_name, topic, broker;
  std::vector<std::string> add_config, delete_config;
  std::map<std::string, CLI::Option*> options;  // the string flags, to tell given from empty
  std::string action_word;  // the subcommand form: describe, alter
};

std::optional<std::string> given(const ConfigsFlags& f, const std::string& flag, const std::string& value) {
  return f.options.at(flag)->count() > 0 ? std::optional<std::string>(value) : std::nullopt;
}

client::EntityFlags entity_flags(const ConfigsFlags& f) {
  return {given(f, "--entity-type", f.entity_type), given(f, "--entity-name", f.entity_name), f.entity_default,
          given(f, "--topic", f.topic),             given(f, "--broker", f.broker),           f.broker_defaults};
}

// Connections: the bootstrap one, and one per other broker asked about.
class Brokers {
 public:
  Brokers(const client::ConnectionFlags& flags, std::unique_ptr<client::AdminConnection> bootstrap)
      : flags_(flags), bootstrap_(std::move(bootstrap)) {}
  Result<client::ClusterTopics*> fetch() {
    if (!cluster_) {
      auto fetched = client::fetch_topics(*bootstrap_);
      if (!fetched) return fetched.error();
      cluster_ = std::move(*fetched);
    }
    return &*cluster_;
  }

  // The connection for a broker resource: "" (the default) and the bootstrap broker itself go to the
  // bootstrap connection.
  Result<client::AdminConnection*> for_resource(const client::ConfigResource& resource) {
    if (resource.type != client::ConfigResourceType::broker || resource.name.empty()) return bootstrap_.get();
    auto cluster = fetch();
    if (!cluster) return cluster.error();
    auto address = (*cluster)->addresses.find(std::stoi(resource.name));
    if (address == (*cluster)->addresses.end()) {
      return make_error(ErrorKind::not_found, "broker " + resource.name + " is not in the cluster (or not alive)");
    }
    if (address->second == bootstrap_->broker()) return bootstrap_.get();
    auto& slot = others_[resource.name];
    if (!slot) {
      auto direct = flags_;
      direct.bootstrap_server = address->second.to_string();
      int code = 0;
      auto connection = cli::connect_admin(direct, code);
      if (!connection) return make_error(ErrorKind::io, "broker " + resource.name + ": " + connection.error().message);
      slot = std::move(*connection);
    }
    return slot.get();
  }

 private:
  client::ConnectionFlags flags_;
  std::unique_ptr<client::AdminConnection> bootstrap_;
  std::optional<client::ClusterTopics> cluster_;
  std::map<std::string, std::unique_ptr<client::AdminConnection>> others_;
};

std::string action_on(std::string_view verb, const client::ConfigEntity& entity) {
  if (entity.is_default) return std::string(verb) + " the default configs of brokers";
  return std::string(verb) + " the configs of " + client::entity_label(entity);
}

// The entities --describe covers: the one named, or every topic / every broker and the default.
Result<std::vector<client::ConfigEntity>> entities_to_describe(Brokers& brokers, const client::ConfigEntity& entity) {
  if (entity.name || entity.is_default) return std::vector<client::ConfigEntity>{entity};
  auto cluster = brokers.fetch();
  if (!cluster) return cluster.error();
  std::vector<client::ConfigEntity> out;
  if (entity.type == client::ConfigResourceType::topic) {
    for (const auto& t : (*cluster)->topics) out.push_back({entity.type, t.name, false});
  } else {
    for (auto id : (*cluster)->brokers) out.push_back({entity.type, std::to_string(id), false});
    out.push_back({entity.type, std::nullopt, true});
  }
  return out;
}

Result<client::ResourceConfigs> describe_one(Brokers& brokers, const client::ConfigEntity& entity) {
  const client::ConfigResource resource{entity.type, entity.resource_name()};
  auto connection = brokers.for_resource(resource);
  if (!connection) return connection.error();
  auto described = client::describe_configs(**connection, {resource});
  if (!described) return described.error();
  auto& result = described->front();
  if (result.answer.error_code != 0) {
    return client::admin_error(result.answer, action_on("describe", entity), (*connection)->identity());
  }
  return std::move(result);
}

int run_describe(Brokers& brokers, const client::ConfigEntity& entity, bool all) {
  auto entities = entities_to_describe(brokers, entity);
  if (!entities) return fail(entities.error());
  int code = 0;
  for (const auto& e : *entities) {
    std::printf("%s\n", client::describe_heading(e, all).c_str());
    auto configs = describe_one(brokers, e);
    if (!configs) {
      code = fail(configs.error());
      continue;
    }
    std::printf("%s", client::render_config_entries(client::entries_to_show(e, configs->entries, all)).c_str());
  }
  return code;
}

int run_alter(Brokers& brokers, const client::ConfigEntity& entity, const client::ConfigPairs& set,
              const std::vector<std::string>& remove) {
  if (!remove.empty()) {
    // Kafka refuses to delete what is not set, rather than saying nothing changed.
    auto configs = describe_one(brokers, entity);
    if (!configs) return fail(configs.error());
    auto missing = client::missing_keys(remove, client::entries_to_show(entity, configs->entries, false));
    if (!missing.empty()) {
      std::string keys;
      for (const auto& k : missing) keys += (keys.empty() ? "" : ",") + k;
      return fail(make_error(ErrorKind::not_found, "Invalid config(s): " + keys + " (not set on " +
                                                       (entity.is_default ? std::string("the broker default")
                                                                          : client::entity_label(entity)) +
                                                       ", so there is nothing to delete)"));
    }
  }
  const client::ConfigResource resource{entity.type, entity.resource_name()};
  auto connection = brokers.for_resource(resource);
  if (!connection) return fail(connection.error());
  auto answer = client::incremental_alter_configs(**connection, resource, set, remove);
  if (!answer) return fail(answer.error());
  if (answer->error_code != 0) {
    return fail(client::admin_error(*answer, action_on("alter", entity), (*connection)->identity()));
  }
  std::printf("%s\n", client::altered_message(entity).c_str());
  return 0;
}

// --add-config and --delete-config (each repeatable; Kafka takes one comma-separated list).
Status parse_changes(const ConfigsFlags& f, client::ConfigPairs& set, std::vector<std::string>& remove) {
  for (const auto& text : f.add_config) {
    auto pairs = client::parse_add_config(text);
    if (!pairs) return pairs.error();
    set.insert(set.end(), pairs->begin(), pairs->end());
  }
  for (const auto& text : f.delete_config) {
    auto keys = client::parse_delete_config(text);
    if (!keys) return keys.error();
    remove.insert(remove.end(), keys->begin(), keys->end());
  }
  return Status::success();
}

Status check_action(const ConfigsFlags& f, bool describe, bool alter, bool changes) {
  if (describe == alter) return usage("Command must include exactly one action: --describe or --alter");
  if (describe && changes) return usage("--add-config and --delete-config go with --alter, not --describe");
  if (alter && f.all) return usage("--all goes with --describe");
  if (alter && !changes) return usage("--alter needs --add-config k=v[,k2=v2] or --delete-config k[,k2]");
  return Status::success();
}

int run(const ConfigsFlags& f) {
  const bool describe = f.describe || f.action_word == "describe";
  const bool alter = f.alter || f.action_word == "alter";
  client::ConfigPairs set;
  std::vector<std::string> remove;
  if (auto parsed = parse_changes(f, set, remove); !parsed) return fail(parsed.error());
  if (auto ok = check_action(f, describe, alter, !set.empty() || !remove.empty()); !ok) return fail(ok.error());
  auto entity = client::config_entity(entity_flags(f), alter);
  if (!entity) return fail(entity.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  Brokers brokers(f.connection, std::move(*connection));
  return describe ? run_describe(brokers, *entity, f.all) : run_alter(brokers, *entity, set, remove);
}

void add_configs_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "configs",
      "Describe and alter topic and broker configs (as kafka-configs.sh):\n"
      "  configs --describe --entity-type topics|brokers [--entity-name N | --entity-default] [--all]\n"
      "  configs --alter --entity-type topics|brokers (--entity-name N | --entity-default)\n"
      "          [--add-config k=v,k2=[a,b]] [--delete-config k,k2]\n"
      "  (--topic T, --broker ID or --broker-defaults name the entity in one flag; each with\n"
      "  --bootstrap-server B [--ca/--cert/--key | --command-config F]; or `configs describe ...`)");
  auto flags = std::make_shared<ConfigsFlags>();
  auto& f = *flags;
  cli::add_admin_connection_flags(cmd, f.connection, "kafka-configs.sh");
  cmd->add_flag("--describe", f.describe, "Show the configs set dynamically on the entity (DescribeConfigs)");
  cmd->add_flag("--alter", f.alter, "Change configs (IncrementalAlterConfigs)");
  f.options["--entity-type"] = cmd->add_option("--entity-type", f.entity_type, "topics or brokers");
  f.options["--entity-name"] = cmd->add_option("--entity-name", f.entity_name, "Topic name or broker id");
  cmd->add_flag("--entity-default", f.entity_default, "The cluster-wide broker default (brokers only)");
  f.options["--topic"] = cmd->add_option("--topic", f.topic, "Same as --entity-type topics --entity-name T");
  f.options["--broker"] = cmd->add_option("--broker", f.broker, "Same as --entity-type brokers --entity-name ID");
  cmd->add_flag("--broker-defaults", f.broker_defaults, "Same as --entity-type brokers --entity-default");
  // One value per occurrence, so that a word after it (the action) is not taken for a second value.
  cmd->add_option("--add-config", f.add_config, "Configs to set: k=v,k2=v2 (a value with commas in brackets: k=[a,b])")
      ->expected(1)->take_all()->allow_extra_args(false);
  cmd->add_option("--delete-config", f.delete_config, "Configs to remove: k,k2")
      ->expected(1)->take_all()->allow_extra_args(false);
  cmd->add_flag("--all", f.all, "--describe: every config in force, not only the dynamic ones");
  // The subcommand form, `configs describe ...`, as a positional word (see topics_command.cpp).
  cmd->add_option("action", f.action_word, "describe or alter: the same as the flag")
      ->check(CLI::IsMember({"describe", "alter"}));
  cli::set_action(cmd, [flags] { return run(*flags); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_configs_command);
