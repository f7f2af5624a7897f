// `bulwark quotas --alter|--describe`: kafka-configs.sh's client quota options (--entity-type
// users/clients/ips with --entity-name or --entity-default, --add-config, --delete-config), spoken to
// any Kafka-compatible broker with AlterClientQuotas/DescribeClientQuotas. The rules and round trips
// are in src/client (client/quotas.h).
//
// Exit codes: 0 done, 1 the broker or the connection failed (or refused the change), 2 usage errors.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/quotas.h"

namespace {

using namespace bulwark;

using cli::kBrokerError;
using cli::kUsageError;

struct QuotaFlags {
  client::ConnectionFlags connection;
  bool alter = false;
  bool describe = false;
  std::string add_config;
  std::vector<std::string> delete_config;
  std::vector<std::string> types;
  std::vector<std::string> names;
  int defaults = 0;
  CLI::Option* name_option = nullptr;
  CLI::Option* default_option = nullptr;
};

int fail(const Error& error) {
  std::fprintf(stderr, "error: %s\n", error.message.c_str());
  return error.kind == ErrorKind::invalid_argument ? kUsageError : kBrokerError;
}

// kafka-configs.sh pairs each --entity-type with the --entity-name or --entity-default that follows
// it, so their order on the command line matters.
client::QuotaEntityArgs entity_args(const QuotaFlags& f, const CLI::App& cmd) {
  client::QuotaEntityArgs args;
  args.types = f.types;
  std::size_t next_name = 0;
  for (const CLI::Option* option : cmd.parse_order()) {
    if (option == f.name_option && next_name < f.names.size()) args.names.emplace_back(f.names[next_name++]);
    else if (option == f.default_option) args.names.emplace_back(std::nullopt);
  }
  return args;
}

int run_alter(const QuotaFlags& f, const client::QuotaEntityArgs& args) {
  auto entity = client::quota_entity(args);
  if (!entity) return fail(entity.error());
  auto ops = client::quota_ops(f.add_config, f.delete_config);
  if (!ops) return fail(ops.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  if (auto done = client::alter_client_quotas(**connection, *entity, *ops); !done.ok()) {
    std::fprintf(stderr, "error: the quotas of %s were not changed: %s\n", client::render_quota_entity(*entity).c_str(),
                 done.error().message.c_str());
    return done.error().kind == ErrorKind::invalid_argument ? kUsageError : kBrokerError;
  }
  std::printf("%s\n", client::render_alter_done(args).c_str());
  return 0;
}

int run_describe(const QuotaFlags& f, const client::QuotaEntityArgs& args) {
  auto filter = client::quota_filter(args);
  if (!filter) return fail(filter.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  // ConfigCommand asks with ClientQuotaFilter.containsOnly: exactly the entity types named.
  auto entries = client::describe_client_quotas(**connection, *filter, true);
  if (!entries) {
    std::fprintf(stderr, "error: %s\n", entries.error().message.c_str());
    return kBrokerError;
  }
  for (const auto& entry : *entries) std::printf("%s\n", client::render_quota_line(entry.entity, entry.values).c_str());
  return 0;
}

void add_quotas_command(CLI::App& app) {
  auto flags = std::make_shared<QuotaFlags>();
  auto* cmd = app.add_subcommand("quotas", "Client quotas (kafka-configs.sh --entity-type users/clients/ips): "
                                           "producer_byte_rate, consumer_byte_rate, request_percentage");
  cli::add_admin_connection_flags(cmd, flags->connection, "kafka-configs.sh");
  auto* alter = cmd->add_flag("--alter", flags->alter, "Change quotas (AlterClientQuotas)");
  auto* describe = cmd->add_flag("--describe", flags->describe, "Show quotas (DescribeClientQuotas)");
  alter->excludes(describe);
  cmd->add_option("--entity-type", flags->types, "users, clients or ips (repeatable: users then clients)")
      ->allow_extra_args(false);
  flags->name_option =
      cmd->add_option("--entity-name", flags->names, "The user principal's name or the client id, after its --entity-type")
          ->allow_extra_args(false);
  flags->default_option =
      cmd->add_flag("--entity-default", flags->defaults, "The default user/client, in place of --entity-name");
  cmd->add_option("--add-config", flags->add_config, "key=value[,key=value...], e.g. 'producer_byte_rate=1024'");
  cmd->add_option("--delete-config", flags->delete_config, "key[,key...] to remove")->allow_extra_args(false);
  cli::set_action(cmd, [flags, cmd]() -> int {
    if (flags->alter == flags->describe) {
      std::fprintf(stderr, "error: give one of --alter or --describe\n");
      return kUsageError;
    }
    const auto args = entity_args(*flags, *cmd);
    return flags->alter ? run_alter(*flags, args) : run_describe(*flags, args);
  });
}

BULWARK_REGISTER_COMMAND(add_quotas_command);

}  // namespace
