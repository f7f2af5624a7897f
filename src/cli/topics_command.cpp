// `bulwark topics`: kafka-topics.sh's options, spoken to any Kafka-compatible broker with Metadata,
// CreateTopics, DeleteTopics, CreatePartitions and DescribeConfigs. Both Kafka's action-flag form
// (`bulwark topics --create --topic T ...`, so pasted Kafka commands work) and subcommands (`bulwark
// topics create --topic T ...`) are accepted; the rules and round trips are in client/topics.h.
//
// Exit codes: 0 done, 1 the broker or the connection failed (or refused a topic), 2 usage errors.
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/client.h"
#include "client/topics.h"

namespace {

using namespace bulwark;

using cli::fail;
using cli::kBrokerError;
using cli::kUsageError;

struct TopicsFlags {
  client::ConnectionFlags connection;
  client::TopicOptions options;  // the booleans and --config; the rest below, as given
  bool create = false, list = false, describe = false, alter = false, remove = false;
  std::string topic;
  std::int32_t partitions = 0;
  std::int32_t replication_factor = 0;
  std::string replica_assignment;
  CLI::Option* topic_option = nullptr;
  CLI::Option* partitions_option = nullptr;
  CLI::Option* replication_option = nullptr;
  CLI::Option* assignment_option = nullptr;
  std::string action_word;  // the subcommand form: create, list, describe, alter, delete
};

client::TopicOptions options_of(const TopicsFlags& f) {
  using A = client::TopicAction;
  client::TopicOptions o = f.options;
  const std::tuple<bool, const char*, A> actions[] = {{f.create, "create", A::create},
                                                      {f.list, "list", A::list},
                                                      {f.describe, "describe", A::describe},
                                                      {f.alter, "alter", A::alter},
                                                      {f.remove, "delete", A::remove}};
  for (const auto& [flag, word, action] : actions) {
    if (flag || f.action_word == word) o.actions.push_back(action);
  }
  if (f.topic_option->count() > 0) o.topic = f.topic;
  if (f.partitions_option->count() > 0) o.partitions = f.partitions;
  if (f.replication_option->count() > 0) o.replication_factor = f.replication_factor;
  if (f.assignment_option->count() > 0) o.replica_assignment = f.replica_assignment;
  return o;
}

using Connection = std::unique_ptr<client::AdminConnection>;

// The topics --topic selects; when it names some and none exist that is an error unless --if-exists.
Result<std::vector<client::TopicInfo>> selected(client::AdminConnection& connection, const client::TopicOptions& o,
                                                std::set<std::int32_t>* live_brokers = nullptr) {
  auto cluster = client::fetch_topics(connection);
  if (!cluster) return cluster.error();
  if (live_brokers) *live_brokers = cluster->brokers;
  auto topics = client::select_topics(cluster->topics, o.topic, o.exclude_internal);
  if (!topics) return topics.error();
  if (o.topic && topics->empty() && !o.if_exists) {
    return make_error(ErrorKind::not_found, "Topic '" + *o.topic + "' does not exist as expected "
                                            "(UNKNOWN_TOPIC_OR_PARTITION); --if-exists makes that no error");
  }
  return topics;
}

int run_create(client::AdminConnection& connection, const client::TopicOptions& o) {
  auto configs = client::parse_topic_configs(o.configs);
  if (!configs) return fail(configs.error());
  client::NewTopic topic{*o.topic, o.partitions.value_or(-1),
                         static_cast<std::int16_t>(o.replication_factor.value_or(-1)), {}, *configs};
  if (o.replica_assignment) {
    auto assignment = client::parse_replica_assignment(*o.replica_assignment);
    if (!assignment) return fail(assignment.error());
    topic.assignment = *assignment;
  }
  if (topic.name.find('.') != std::string::npos || topic.name.find('_') != std::string::npos) {
    std::fprintf(stderr, "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') "
                         "could collide. To avoid issues it is best to use either, but not both.\n");
  }
  auto answer = client::create_topic(connection, topic);
  if (!answer) return fail(answer.error());
  constexpr std::int16_t kTopicAlreadyExists = 36;
  if (answer->error_code == kTopicAlreadyExists && o.if_not_exists) return 0;
  if (answer->error_code != 0) {
    return fail(client::admin_error(*answer, "create topic '" + topic.name + "'", connection.identity()));
  }
  std::printf("Created topic %s.\n", topic.name.c_str());
  return 0;
}

int run_list(client::AdminConnection& connection, const client::TopicOptions& o) {
  auto cluster = client::fetch_topics(connection);
  if (!cluster) return fail(cluster.error());
  auto topics = client::select_topics(cluster->topics, o.topic, o.exclude_internal);
  if (!topics) return fail(topics.error());
  std::printf("%s", client::render_topic_list(*topics).c_str());
  return 0;
}

int run_describe(client::AdminConnection& connection, const client::TopicOptions& o) {
  std::set<std::int32_t> live;
  auto topics = selected(connection, o, &live);
  if (!topics) return fail(topics.error());
  const client::DescribeFilter filter{o.under_replicated, o.unavailable, o.topics_with_overrides};
  if (!filter.reporting()) {
    if (auto configs = client::fetch_topic_overrides(connection, *topics); !configs) return fail(configs.error());
  }
  for (const auto& topic : *topics) std::printf("%s", client::render_topic_description(topic, filter, live).c_str());
  return 0;
}

// --delete and --alter: one change per selected topic; every refusal is reported.
template <class Change>
int for_each_topic(client::AdminConnection& connection, const client::TopicOptions& o, const char* verb,
                   Change change) {
  auto topics = selected(connection, o);
  if (!topics) return fail(topics.error());
  int code = 0;
  for (const auto& topic : *topics) {
    auto answer = change(topic.name);
    if (!answer) return fail(answer.error());
    if (answer->error_code != 0) {
      code =
          fail(client::admin_error(*answer, std::string(verb) + " topic '" + topic.name + "'", connection.identity()));
    }
  }
  return code;
}

int run(const TopicsFlags& f) {
  const auto o = options_of(f);
  auto action = client::check_topic_options(o);
  if (!action) return fail(action.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  auto& c = **connection;
  switch (*action) {
    case client::TopicAction::create: return run_create(c, o);
    case client::TopicAction::list: return run_list(c, o);
    case client::TopicAction::describe: return run_describe(c, o);
    case client::TopicAction::remove:
      // As kafka-topics.sh: nothing is printed for a topic deleted.
      return for_each_topic(c, o, "delete", [&](const std::string& name) -> Result<client::BrokerAnswer> {
        auto answers = client::delete_topics(c, {name});
        if (!answers) return answers.error();
        return answers->front();
      });
    case client::TopicAction::alter: {
      std::vector<std::vector<std::int32_t>> assignment;
      if (o.replica_assignment) {
        auto parsed = client::parse_replica_assignment(*o.replica_assignment);
        if (!parsed) return fail(parsed.error());
        assignment = *parsed;
      }
      return for_each_topic(c, o, "add partitions to", [&](const std::string& name) {
        return client::create_partitions(c, name, *o.partitions, assignment);
      });
    }
  }
  return kUsageError;
}

void add_topics_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "topics",
      "Create, list, describe, alter and delete topics (as kafka-topics.sh):\n"
      "  topics --create --topic T [--partitions N] [--replication-factor R] [--config k=v ...] [--if-not-exists]\n"
      "  topics --list [--topic REGEX] [--exclude-internal]\n"
      "  topics --describe [--topic REGEX] [--under-replicated-partitions] [--unavailable-partitions]\n"
      "  topics --alter --topic T --partitions N\n"
      "  topics --delete --topic T [--if-exists]\n"
      "  (each with --bootstrap-server B [--ca/--cert/--key | --command-config F]; or `topics create ...`)");
  auto flags = std::make_shared<TopicsFlags>();
  auto& f = *flags;
  auto& o = f.options;
  cli::add_admin_connection_flags(cmd, f.connection, "kafka-topics.sh");
  cmd->add_flag("--create", f.create, "Create a topic (CreateTopics)");
  cmd->add_flag("--list", f.list, "List topic names");
  cmd->add_flag("--describe", f.describe, "Describe topics: partitions, leaders, replicas, ISR, non-default configs");
  cmd->add_flag("--alter", f.alter, "Add partitions to a topic (CreatePartitions)");
  cmd->add_flag("--delete", f.remove, "Delete topics (DeleteTopics)");
  f.topic_option = cmd->add_option("--topic", f.topic, "Topic name; for --list, --describe, --alter and --delete also "
                                                       "a regular expression matching whole names");
  f.partitions_option = cmd->add_option("--partitions", f.partitions, "Partition count (--create: default "
                                                                      "num.partitions; --alter: the new count)");
  f.replication_option = cmd->add_option("--replication-factor", f.replication_factor,
                                         "Replicas per partition (default default.replication.factor)");
  // One value per --config, so that a word after it (the action) is not taken for a second value.
  cmd->add_option("--config", o.configs, "Topic config override key=value (repeatable)")
      ->expected(1)->take_all()->allow_extra_args(false);
  f.assignment_option = cmd->add_option("--replica-assignment", f.replica_assignment,
                                        "Broker ids per partition, e.g. 1:2,2:3 (partition 0 on 1 and 2, ...)");
  cmd->add_flag("--if-not-exists", o.if_not_exists, "--create: a topic that exists already is no error");
  cmd->add_flag("--if-exists", o.if_exists, "--alter, --delete, --describe: a topic that does not exist is no error");
  cmd->add_flag("--exclude-internal", o.exclude_internal, "Leave out internal topics (__consumer_offsets)");
  cmd->add_flag("--under-replicated-partitions", o.under_replicated, "--describe: only partitions whose ISR is short");
  cmd->add_flag("--unavailable-partitions", o.unavailable, "--describe: only partitions without a live leader");
  cmd->add_flag("--topics-with-overrides", o.topics_with_overrides, "--describe: only topics with config overrides");
  // The subcommand form, `topics create ...`, as a positional word: a CLI11 subcommand would take the
  // options' usage errors for a missing command.
  cmd->add_option("action", f.action_word, "create, list, describe, alter or delete: the same as the flag")
      ->check(CLI::IsMember({"create", "list", "describe", "alter", "delete"}));
  cli::set_action(cmd, [flags] { return run(*flags); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_topics_command);
