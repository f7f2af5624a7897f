// `bulwark consume --topic T`: kafka-console-consumer.sh. Records to stdout, one per line, from every
// partition (or --partition P from --offset), or as a member of consumer group --group; with its options
// (--from-beginning, --max-messages, --timeout-ms, --property print.key=true ..., --consumer-property).
// The work is in src/client (client/console.h). Without --group no offsets are committed (Kafka's tool
// would invent a group for that).
//
// Exit codes: 0 done (--max-messages, --timeout-ms, SIGINT/SIGTERM), 1 the broker or the connection
// failed, 2 usage errors. stderr ends with "Processed a total of N messages", as Kafka's does.
#include <atomic>
#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/cluster.h"
#include "client/console.h"

namespace {

using namespace bulwark;

using cli::kBrokerError;
using cli::kUsageError;

struct ConsumeFlags {
  client::ConnectionFlags connection;
  std::filesystem::path consumer_config;
  std::string topic;
  std::string group;
  bool from_beginning = false;
  std::int64_t max_messages = 0;
  std::int32_t partition = 0;
  std::string offset;
  std::int64_t timeout_ms = 0;
  std::vector<std::string> properties;
  std::vector<std::string> consumer_properties;
  CLI::App* cmd = nullptr;
};

Error usage_error(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

bool given(const ConsumeFlags& f, const char* name) { return f.cmd->count(name) > 0; }

bool is_offset(const std::string& text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && value >= 0;
}

// kafka-console-consumer.sh's rules for which options go together.
Status check_combinations(const ConsumeFlags& f, const client::ConsumerOptions& o) {
  if (given(f, "--offset") && !given(f, "--partition"))
    return usage_error("the partition is required when offset is specified (--partition)");
  if (given(f, "--offset") && f.from_beginning)
    return usage_error("options from-beginning and offset cannot be specified together");
  if (given(f, "--offset") && f.offset != "earliest" && f.offset != "latest" && !is_offset(f.offset))
    return usage_error("--offset: '" + f.offset + "' is not earliest, latest or a non-negative offset");
  if (o.group && given(f, "--partition"))
    return usage_error("options group and partition cannot be specified together");
  if (given(f, "--max-messages") && f.max_messages <= 0) return usage_error("--max-messages must be positive");
  return Status::success();
}

Result<client::ConsumerOptions> consumer_options(const ConsumeFlags& f) {
  client::ConsumerOptions o;
  o.topic = f.topic;
  auto extra = client::parse_key_values(f.consumer_properties, "--consumer-property");
  if (!extra) return extra.error();
  std::vector<std::string> notes;
  BULWARK_TRY(client::apply_consumer_properties(*extra, o, notes));
  for (const auto& note : notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  if (given(f, "--group")) {
    if (o.group && *o.group != f.group)
      return usage_error("group.id is given twice, as --group " + f.group + " and --consumer-property group.id=" +
                         *o.group);
    o.group = f.group;
  }
  auto format = client::parse_key_values(f.properties, "--property");
  if (!format) return format.error();
  auto format_options = client::format_options(*format);
  if (!format_options) return format_options.error();
  o.format = *format_options;
  o.from_beginning = f.from_beginning;
  if (given(f, "--max-messages")) o.max_messages = f.max_messages;
  if (given(f, "--partition")) o.partition = f.partition;
  if (given(f, "--offset")) o.offset = f.offset;
  if (given(f, "--timeout-ms")) o.timeout = std::chrono::milliseconds(f.timeout_ms);
  BULWARK_TRY(check_combinations(f, o));
  return o;
}

int run_consume(ConsumeFlags& f) {
  auto options = consumer_options(f);
  if (!options) {
    std::fprintf(stderr, "error: %s\n", options.error().message.c_str());
    return kUsageError;
  }
  if (!f.consumer_config.empty()) f.connection.command_config = f.consumer_config;
  auto settings = cli::admin_settings(f.connection);
  if (!settings) {
    std::fprintf(stderr, "error: %s\n", settings.error().message.c_str());
    return kUsageError;
  }
  if (settings->client_id == client::ClientSettings{}.client_id) settings->client_id = "console-consumer";
  auto cluster = client::ClusterClient::connect(*settings);
  if (!cluster) {
    std::fprintf(stderr, "error: %s\n", cluster.error().message.c_str());
    return kBrokerError;
  }
  static std::atomic<bool> stop{false};
  client::stop_on_signals(stop);
  client::ConsumeStats stats;
  Status status = client::run_console_consumer(**cluster, *options, stdout, stderr, stop, stats);
  std::fflush(stdout);
  if (!status) std::fprintf(stderr, "error: %s\n", status.error().message.c_str());
  std::fprintf(stderr, "Processed a total of %lld messages\n", static_cast<long long>(stats.messages));
  if (status.ok()) return 0;
  return status.error().kind == ErrorKind::invalid_argument ? kUsageError : kBrokerError;
}

void add_consume_command(CLI::App& app) {
  auto f = std::make_shared<ConsumeFlags>();
  auto* cmd = app.add_subcommand("consume", "Records to stdout, one per line, as kafka-console-consumer.sh prints "
                                            "them");
  f->cmd = cmd;
  cli::add_admin_connection_flags(cmd, f->connection, "kafka-console-consumer.sh");
  cmd->add_option("--consumer.config", f->consumer_config, "Kafka consumer properties file (the same as "
                                                           "--command-config)")
      ->excludes("--command-config");
  cmd->add_option("--topic", f->topic, "The topic to read")->required();
  cmd->add_option("--group", f->group, "Consume as a member of this consumer group (offsets are committed)");
  cmd->add_flag("--from-beginning", f->from_beginning,
                "Start at the earliest offset when there is no committed one (auto.offset.reset=earliest)");
  cmd->add_option("--max-messages", f->max_messages, "Exit after this many records");
  cmd->add_option("--partition", f->partition, "Read only this partition");
  cmd->add_option("--offset", f->offset, "With --partition: earliest, latest (the default) or an offset");
  cmd->add_option("--timeout-ms", f->timeout_ms, "Exit when no record arrived for this long");
  cmd->add_option("--property", f->properties,
                  "Formatter property (repeatable): print.key, print.headers, print.timestamp, print.partition, "
                  "print.offset, print.value (true/false), key.separator, line.separator, headers.separator, "
                  "null.literal");
  cmd->add_option("--consumer-property", f->consumer_properties,
                  "Consumer property (repeatable): group.id, auto.offset.reset, enable.auto.commit, "
                  "auto.commit.interval.ms, session.timeout.ms, heartbeat.interval.ms, max.poll.interval.ms, "
                  "group.instance.id, max.partition.fetch.bytes, fetch.max.bytes, fetch.max.wait.ms");
  cli::set_action(cmd, [f] { return run_consume(*f); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_consume_command);
