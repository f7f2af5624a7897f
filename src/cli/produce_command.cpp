// `bulwark produce --topic T`: kafka-console-producer.sh. Lines from stdin, one record each, with its
// options (--property parse.key=true key.separator=: parse.headers=true, --producer-property,
// --request-required-acks, --compression-codec, --batch-size, --timeout as linger.ms, --sync). The work
// is in src/client (client/console.h).
//
// Exit codes: 0 every line was acknowledged, 1 some were not (each reported) or the broker or the
// connection failed, 2 usage errors.
#include <unistd.h>

#include <atomic>
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

struct ProduceFlags {
  client::ConnectionFlags connection;
  std::filesystem::path producer_config;
  std::string topic;
  std::vector<std::string> properties;
  std::vector<std::string> producer_properties;
  std::string acks;
  std::string compression;
  std::size_t batch_size = 0;
  std::int64_t linger_ms = 0;
  int retries = 0;
  std::int64_t retry_backoff_ms = 0;
  std::int64_t request_timeout_ms = 0;
  bool sync = false;
  CLI::App* cmd = nullptr;
};

int usage(const Error& error) {
  std::fprintf(stderr, "error: %s\n", error.message.c_str());
  return kUsageError;
}

bool given(const ProduceFlags& f, const char* name) { return f.cmd->count(name) > 0; }

// --producer-property first, then the explicit flags over it, as kafka-console-producer.sh merges them.
Result<client::ProducerOptions> producer_options(const ProduceFlags& f) {
  client::ProducerOptions o;
  o.topic = f.topic;
  auto reader = client::parse_key_values(f.properties, "--property");
  if (!reader) return reader.error();
  auto line_options = client::line_reader_options(*reader);
  if (!line_options) return line_options.error();
  o.reader = *line_options;
  auto extra = client::parse_key_values(f.producer_properties, "--producer-property");
  if (!extra) return extra.error();
  std::vector<std::string> notes;
  BULWARK_TRY(client::apply_producer_properties(*extra, o, notes));
  for (const auto& note : notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  if (given(f, "--request-required-acks")) {
    auto acks = client::parse_acks(f.acks);
    if (!acks) return acks.error();
    o.acks = *acks;
  }
  if (given(f, "--compression-codec")) {
    // Given without a value it means gzip, as in Kafka's tool.
    auto codec = client::parse_compression(f.compression.empty() ? "gzip" : f.compression);
    if (!codec) return codec.error();
    o.compression = *codec;
  }
  if (given(f, "--batch-size")) o.batch_bytes = f.batch_size;
  if (given(f, "--timeout")) o.linger = std::chrono::milliseconds(f.linger_ms);
  if (given(f, "--message-send-max-retries")) o.retries = f.retries;
  if (given(f, "--retry-backoff-ms")) o.retry_backoff = std::chrono::milliseconds(f.retry_backoff_ms);
  if (given(f, "--request-timeout-ms")) o.request_timeout = std::chrono::milliseconds(f.request_timeout_ms);
  o.sync = f.sync;
  if (o.batch_bytes == 0) o.batch_bytes = 1;
  if (o.acks == 0) std::fprintf(stderr, "note: acks=0 still waits for the leader's answer (as acks=1)\n");
  return o;
}

int run_produce(ProduceFlags& f) {
  auto options = producer_options(f);
  if (!options) return usage(options.error());
  if (!f.producer_config.empty()) f.connection.command_config = f.producer_config;
  auto settings = cli::admin_settings(f.connection);
  if (!settings) return usage(settings.error());
  if (settings->client_id == client::ClientSettings{}.client_id) settings->client_id = "console-producer";
  auto cluster = client::ClusterClient::connect(*settings);
  if (!cluster) {
    std::fprintf(stderr, "error: %s\n", cluster.error().message.c_str());
    return kBrokerError;
  }
  static std::atomic<bool> stop{false};
  client::stop_on_signals(stop);
  client::ProduceStats stats;
  Status status = client::run_console_producer(**cluster, *options, STDIN_FILENO, stderr, stop, stats);
  if (!status) std::fprintf(stderr, "error: %s\n", status.error().message.c_str());
  if (stats.failed > 0)
    std::fprintf(stderr, "%lld of %lld records were not written\n", static_cast<long long>(stats.failed),
                 static_cast<long long>(stats.lines));
  return status.ok() && stats.failed == 0 && stats.acknowledged == stats.lines ? 0 : kBrokerError;
}

void add_produce_command(CLI::App& app) {
  auto f = std::make_shared<ProduceFlags>();
  auto* cmd = app.add_subcommand("produce", "Records from stdin, one per line, as kafka-console-producer.sh sends "
                                            "them");
  f->cmd = cmd;
  cli::add_admin_connection_flags(cmd, f->connection, "kafka-console-producer.sh");
  cmd->add_option("--producer.config", f->producer_config, "Kafka producer properties file (the same as "
                                                           "--command-config)")
      ->excludes("--command-config");
  cmd->add_option("--topic", f->topic, "The topic to write to")->required();
  cmd->add_option("--property", f->properties,
                  "Line reader property (repeatable): parse.key=true, key.separator=<sep> (default tab), "
                  "parse.headers=true (h1:v1,h2:v2<TAB>key<TAB>value), headers.delimiter, headers.separator, "
                  "headers.key.separator, ignore.error, null.marker");
  cmd->add_option("--producer-property", f->producer_properties,
                  "Producer property (repeatable): acks, compression.type, batch.size, linger.ms, max.request.size, "
                  "retries, retry.backoff.ms, request.timeout.ms");
  cmd->add_option("--request-required-acks", f->acks, "all (-1, the default), 1, or 0 (which waits like 1)");
  cmd->add_option("--compression-codec", f->compression, "none, gzip (when given without a value), snappy, lz4, zstd")
      ->expected(0, 1);
  cmd->add_option("--batch-size", f->batch_size, "Bytes of records per partition in one batch (default 16384)");
  cmd->add_option("--timeout", f->linger_ms, "Milliseconds a line may wait for its batch to fill (linger.ms, default "
                                             "1000)");
  cmd->add_option("--message-send-max-retries", f->retries, "Tries after a retriable error, e.g. NOT_LEADER (default "
                                                            "3)");
  cmd->add_option("--retry-backoff-ms", f->retry_backoff_ms, "Wait before a retry (default 100)");
  cmd->add_option("--request-timeout-ms", f->request_timeout_ms,
                  "How long the broker may wait for the replicas' acknowledgement (default 30000)");
  cmd->add_flag("--sync", f->sync, "Send each line on its own and wait for its acknowledgement");
  cli::set_action(cmd, [f] { return run_produce(*f); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_produce_command);
