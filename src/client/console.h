// `bulwark produce` and `bulwark consume`: kafka-console-producer.sh and kafka-console-consumer.sh over
// the blocking client (ClusterClient). The producer reads lines, one record each (LineMessageReader's
// parse.key / parse.headers properties), partitions them as Kafka's default partitioner does (murmur2
// of the key, sticky for unkeyed records) and sends them in batches to each partition's leader. The
// consumer fetches from the leaders, alone (every partition, or --partition) or as a member of a
// consumer group (JoinGroup with the "range" assignor, SyncGroup, Heartbeat, OffsetCommit, LeaveGroup),
// and prints records as Kafka's DefaultMessageFormatter does.
//
// The pure pieces (line parsing, murmur2, the consumer protocol's subscription and assignment bytes,
// the range assignment, output formatting) are exposed for tests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "client/cluster.h"
#include "wire/record_batch.h"

namespace bulwark::client {

// The Kafka error codes the console tools act on.
namespace kafka_errors {
inline constexpr std::int16_t kOffsetOutOfRange = 1;
inline constexpr std::int16_t kUnknownTopicOrPartition = 3;
inline constexpr std::int16_t kLeaderNotAvailable = 5;
inline constexpr std::int16_t kNotLeaderOrFollower = 6;
inline constexpr std::int16_t kRequestTimedOut = 7;
inline constexpr std::int16_t kMessageTooLarge = 10;
inline constexpr std::int16_t kNetworkException = 13;
inline constexpr std::int16_t kCoordinatorLoadInProgress = 14;
inline constexpr std::int16_t kCoordinatorNotAvailable = 15;
inline constexpr std::int16_t kNotCoordinator = 16;
inline constexpr std::int16_t kNotEnoughReplicas = 19;
inline constexpr std::int16_t kNotEnoughReplicasAfterAppend = 20;
inline constexpr std::int16_t kIllegalGeneration = 22;
inline constexpr std::int16_t kUnknownMemberId = 25;
inline constexpr std::int16_t kRebalanceInProgress = 27;
inline constexpr std::int16_t kTopicAuthorizationFailed = 29;
inline constexpr std::int16_t kGroupAuthorizationFailed = 30;
inline constexpr std::int16_t kKafkaStorageError = 56;
inline constexpr std::int16_t kFencedLeaderEpoch = 74;
inline constexpr std::int16_t kUnknownLeaderEpoch = 75;
inline constexpr std::int16_t kMemberIdRequired = 79;
inline constexpr std::int16_t kUnknownTopicId = 100;
}  // namespace kafka_errors

// "k=v" pairs of a repeatable flag (--property, --producer-property); `flag` names it in errors.
Result<std::map<std::string, std::string>> parse_key_values(const std::vector<std::string>& pairs,
                                                            std::string_view flag);

// The topic as the producer and consumer need it, from a Metadata round trip; its errors in words
// (does not exist, not authorized for `identity`). create: let the broker create it on first use.
struct TopicInfo {
  std::int32_t partitions = 0;
  wire::Uuid topic_id{};
};
Result<TopicInfo> describe_topic(ClusterClient& cluster, const std::string& topic, bool create);

// A partition-level error code in words, naming the topic and, for authorization, who we are.
std::string partition_error_words(std::int16_t code, const std::string& topic, std::int32_t partition,
                                  std::string_view operation, const std::string& identity);

// SIGINT and SIGTERM set `stop` (the tools finish cleanly: send what is read, leave the group);
// SIGPIPE is ignored, so a closed output is an error to handle rather than death.
void stop_on_signals(std::atomic<bool>& stop);

// ---- Producer ------------------------------------------------------------------------------------

// kafka-console-producer.sh's LineMessageReader properties (Kafka 3.x), with its defaults.
struct LineReaderOptions {
  bool parse_key = false;
  std::string key_separator = "\t";
  bool parse_headers = false;
  std::string headers_delimiter = "\t";     // between the headers and the rest of the line
  std::string headers_separator = ",";      // between headers
  std::string headers_key_separator = ":";  // between a header's key and value
  bool ignore_error = false;                // a missing separator: no key / no headers instead of an error
  std::optional<std::string> null_marker;   // a key, value or header value equal to it is null
};
// From --property pairs; unknown keys and separators that clash are errors.
Result<LineReaderOptions> line_reader_options(const std::map<std::string, std::string>& properties);

// One line (without its end of line) as a record: "h1:v1,h2:v2<TAB>key<TAB>value" with both parse
// options on. line_number (from 1) is for messages, as Kafka words them.
Result<wire::Record> parse_line(std::string_view line, const LineReaderOptions& options, std::int64_t line_number);

// Kafka's Utils.murmur2 and the default partitioner's choice for a keyed record.
std::int32_t murmur2(ByteView data);
std::int32_t partition_for_key(ByteView key, std::int32_t partition_count);

struct ProducerOptions {
  std::string topic;
  LineReaderOptions reader;
  std::int16_t acks = -1;  // all (Kafka 3's default), 1, 0
  wire::Compression compression = wire::Compression::none;
  std::size_t batch_bytes = 16384;           // batch.size: per partition
  std::chrono::milliseconds linger{1000};    // linger.ms: how long a line may wait for more
  std::size_t max_request_bytes = 1 << 20;   // max.request.size
  int retries = 3;                           // retriable errors (NOT_LEADER, timeouts) per batch
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds request_timeout{30000};  // the broker's wait for acks
  bool sync = false;                                 // each line on its own, acknowledged before the next
};
// The producer settings among --producer-property pairs (acks, compression.type, batch.size, linger.ms,
// max.request.size, retries, retry.backoff.ms, request.timeout.ms); other keys give a note.
Status apply_producer_properties(const std::map<std::string, std::string>& properties, ProducerOptions& options,
                                 std::vector<std::string>& notes);
Result<std::int16_t> parse_acks(std::string_view text);
Result<wire::Compression> parse_compression(std::string_view text);

struct ProduceStats {
  std::int64_t lines = 0;
  std::int64_t acknowledged = 0;
  std::int64_t failed = 0;  // not written (reported on `err` as it happened)
};
// Reads `in_fd` to its end (or until `stop`, set by a signal handler), then sends what is left.
// Per-record problems go to `err` and into stats.failed; an error means the topic cannot be written at
// all (it does not exist, we may not see it) or a line does not parse, as Kafka's tool stops there.
Status run_console_producer(ClusterClient& cluster, const ProducerOptions& options, int in_fd, std::FILE* err,
                            const std::atomic<bool>& stop, ProduceStats& stats);

// ---- Consumer ------------------------------------------------------------------------------------

// DefaultMessageFormatter's properties, with its defaults.
struct FormatOptions {
  bool print_timestamp = false;
  bool print_key = false;
  bool print_offset = false;
  bool print_partition = false;
  bool print_headers = false;
  bool print_value = true;
  std::string key_separator = "\t";  // between the fields of a line
  std::string line_separator = "\n";
  std::string headers_separator = ",";
  std::string null_literal = "null";
};
Result<FormatOptions> format_options(const std::map<std::string, std::string>& properties);

// "CreateTime:1700000000000<TAB>Partition:0<TAB>Offset:5<TAB>h1:v1<TAB>key<TAB>value\n", the fields
// present as the options say.
std::string format_record(const wire::Record& record, std::int32_t partition, bool log_append_time,
                          const FormatOptions& options);

// The consumer protocol's member metadata (ConsumerProtocolSubscription) and assignment
// (ConsumerProtocolAssignment). We write version 0; reading accepts any version (later ones only add
// fields at the end).
struct TopicPartitions {
  std::string topic;
  std::vector<std::int32_t> partitions;
  bool operator==(const TopicPartitions&) const = default;
};
Bytes encode_subscription(const std::vector<std::string>& topics);
Result<std::vector<std::string>> decode_subscription(ByteView metadata);
Bytes encode_assignment(const std::vector<TopicPartitions>& assignment);
Result<std::vector<TopicPartitions>> decode_assignment(ByteView assignment);  // empty bytes: nothing

struct MemberSubscription {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::vector<std::string> topics;
};
// Kafka's RangeAssignor: per topic, its subscribers in order (static members by instance id first,
// then by member id) take consecutive ranges, the first ones one partition more. Every member has an
// entry; topics missing from partition_counts are not assigned.
std::map<std::string, std::vector<TopicPartitions>> range_assign(
    const std::vector<MemberSubscription>& members, const std::map<std::string, std::int32_t>& partition_counts);

struct ConsumerOptions {
  std::string topic;
  std::optional<std::string> group;
  bool from_beginning = false;
  std::optional<std::int64_t> max_messages;
  std::optional<std::int32_t> partition;
  std::string offset = "latest";  // with --partition: earliest, latest or an offset
  std::optional<std::chrono::milliseconds> timeout;  // exit when no record came for this long
  FormatOptions format;
  std::string auto_offset_reset = "latest";  // earliest, latest, none
  bool enable_auto_commit = true;
  std::chrono::milliseconds auto_commit_interval{5000};
  std::chrono::milliseconds session_timeout{45000};
  std::chrono::milliseconds heartbeat_interval{3000};
  std::chrono::milliseconds max_poll_interval{300000};  // the rebalance timeout
  std::optional<std::string> group_instance_id;
  std::int32_t max_partition_fetch_bytes = 1 << 20;
  std::int32_t fetch_max_bytes = 50 << 20;
  std::int32_t fetch_max_wait_ms = 500;
};
// The consumer settings among --consumer-property pairs (group.id, auto.offset.reset, enable.auto.commit,
// auto.commit.interval.ms, session.timeout.ms, heartbeat.interval.ms, max.poll.interval.ms,
// group.instance.id, max.partition.fetch.bytes, fetch.max.bytes, fetch.max.wait.ms); others give a note.
Status apply_consumer_properties(const std::map<std::string, std::string>& properties, ConsumerOptions& options,
                                 std::vector<std::string>& notes);

struct ConsumeStats {
  std::int64_t messages = 0;
};
// Prints records to `out` until --max-messages, --timeout-ms or `stop` (set by a signal handler); like
// Kafka's, it does not stop at the end of the topic. In a group it commits what it printed and leaves
// the group on the way out. Errors are the fatal ones (the topic is not there, not authorized); `stats`
// counts what was printed either way.
Status run_console_consumer(ClusterClient& cluster, const ConsumerOptions& options, std::FILE* out, std::FILE* err,
                            const std::atomic<bool>& stop, ConsumeStats& stats);

}  // namespace bulwark::client
