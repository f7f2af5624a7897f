// The pure pieces of the console producer and consumer: Kafka's line reader and message formatter,
// its murmur2 partitioner, the consumer protocol's bytes and the range assignor.
#include "client/console.h"

#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <set>
#include <thread>
#include <type_traits>

#include "wire/compression.h"

namespace bulwark::client {
namespace {

using namespace kafka_errors;

Error invalid(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

template <class Int>
Result<Int> parse_int(std::string_view key, std::string_view text) {
  Int value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    return invalid(fmt::format("{}: '{}' is not a number", key, text));
  return value;
}

Result<bool> parse_bool(std::string_view key, std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "true") return true;
  if (lower == "false") return false;
  return invalid(fmt::format("{}: '{}' is neither true nor false", key, text));
}

template <class Int>
Status set_int(std::string_view key, const std::string& text, Int& target) {
  auto v = parse_int<Int>(key, text);
  if (!v) return v.error();
  if constexpr (std::is_signed_v<Int>) {
    if (*v < 0) return invalid(fmt::format("{}: {} is negative", key, text));
  }
  target = *v;
  return Status::success();
}

Status set_ms(std::string_view key, const std::string& text, std::chrono::milliseconds& target) {
  std::int64_t ms = 0;
  BULWARK_TRY(set_int(key, text, ms));
  target = std::chrono::milliseconds(ms);
  return Status::success();
}

Status set_bool(std::string_view key, const std::string& text, bool& target) {
  auto v = parse_bool(key, text);
  if (!v) return v.error();
  target = *v;
  return Status::success();
}

std::optional<Bytes> bytes_unless_null(std::string_view text, const std::optional<std::string>& null_marker) {
  if (null_marker && text == *null_marker) return std::nullopt;
  auto view = as_bytes(text);
  return Bytes(view.begin(), view.end());
}

// The text before `delimiter` from `start`; nullopt (ignore.error) or an error when it is missing.
Result<std::optional<std::string_view>> field_before(std::string_view line, std::size_t start,
                                                     std::string_view delimiter, std::string_view name,
                                                     const LineReaderOptions& options, std::int64_t line_number) {
  const auto at = line.find(delimiter, start);
  if (at == std::string_view::npos) {
    if (options.ignore_error) return std::optional<std::string_view>();
    return invalid(fmt::format("No {} found on line number {}: '{}'", name, line_number, line));
  }
  return std::optional<std::string_view>(line.substr(start, at - start));
}

std::vector<std::string_view> split(std::string_view text, std::string_view separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + separator.size();
  }
  return parts;
}

Result<std::vector<wire::RecordHeader>> parse_headers(std::string_view text, const LineReaderOptions& options,
                                                      std::int64_t line_number) {
  std::vector<wire::RecordHeader> headers;
  for (auto pair : split(text, options.headers_separator)) {
    if (pair.empty()) continue;  // Java's String.split drops empty trailing parts
    const auto at = pair.find(options.headers_key_separator);
    if (at == std::string_view::npos) {
      if (!options.ignore_error)
        return invalid(fmt::format("No header key separator found in pair '{}' on line number {}", pair, line_number));
      headers.push_back({std::string(pair), std::nullopt});
      continue;
    }
    const auto key = pair.substr(0, at);
    if (options.null_marker && key == *options.null_marker)
      return invalid(fmt::format("Header keys should not be equal to the null marker '{}' as they can't be null",
                                 *options.null_marker));
    headers.push_back({std::string(key),
                       bytes_unless_null(pair.substr(at + options.headers_key_separator.size()), options.null_marker)});
  }
  return headers;
}

// Big-endian readers of the consumer protocol's (non-flexible) fields.
bool read_string(ByteReader& r, std::string& out) {
  std::int16_t length = 0;
  ByteView bytes;
  if (!r.read_i16(length) || length < 0 || !r.read_bytes(static_cast<std::size_t>(length), bytes)) return false;
  out.assign(as_chars(bytes));
  return true;
}

void write_string(ByteWriter& w, std::string_view s) {
  w.write_i16(static_cast<std::int16_t>(s.size()));
  w.write_bytes(s);
}

Error not_consumer_protocol(std::string_view what) {
  return make_error(ErrorKind::corrupt, fmt::format("the {} is not in the consumer protocol's layout", what));
}

bool member_before(const MemberSubscription& a, const MemberSubscription& b) {
  if (a.group_instance_id && b.group_instance_id) return *a.group_instance_id < *b.group_instance_id;
  if (a.group_instance_id || b.group_instance_id) return a.group_instance_id.has_value();
  return a.member_id < b.member_id;
}

}  // namespace

Result<std::map<std::string, std::string>> parse_key_values(const std::vector<std::string>& pairs,
                                                            std::string_view flag) {
  std::map<std::string, std::string> out;
  for (const auto& pair : pairs) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) return invalid(fmt::format("{} {}: expected key=value", flag, pair));
    out[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return out;
}

namespace {
std::atomic<bool>* stop_flag = nullptr;
void on_stop_signal(int) { stop_flag->store(true); }
}  // namespace

void stop_on_signals(std::atomic<bool>& stop) {
  stop_flag = &stop;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

Result<TopicInfo> describe_topic(ClusterClient& cluster, const std::string& topic, bool create) {
  // A topic being created has no leaders for a moment (LEADER_NOT_AVAILABLE); wait for them.
  const auto deadline = std::chrono::steady_clock::now() + cluster.settings().timeout;
  for (int attempt = 0;; ++attempt) {
    auto metadata = cluster.fetch_metadata({topic}, create);
    if (!metadata) return metadata.error();
    std::int16_t error = kUnknownTopicOrPartition;
    for (const auto& t : metadata->topics) {
      if (t.name != topic) continue;
      error = t.error_code;
      bool leaders = !t.partitions.empty();
      for (const auto& p : t.partitions) leaders = leaders && p.leader_id >= 0;
      if (error == 0 && leaders) return TopicInfo{static_cast<std::int32_t>(t.partitions.size()), t.topic_id};
      if (error == 0) error = kLeaderNotAvailable;
    }
    const bool wait = error == kLeaderNotAvailable || (error == kUnknownTopicOrPartition && create && attempt < 3);
    if (!wait || std::chrono::steady_clock::now() >= deadline) {
      if (error == kUnknownTopicOrPartition)
        return make_error(ErrorKind::not_found, fmt::format("topic {} does not exist{}", topic,
                                                            create ? " (and the broker does not create topics on "
                                                                     "first use)"
                                                                   : ""));
      return make_error(error == kTopicAuthorizationFailed ? ErrorKind::unauthenticated : ErrorKind::unavailable,
                        partition_error_words(error, topic, -1, "describe", cluster.any().identity()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::string partition_error_words(std::int16_t code, const std::string& topic, std::int32_t partition,
                                  std::string_view operation, const std::string& identity) {
  const std::string where = partition < 0 ? "topic " + topic : fmt::format("{}-{}", topic, partition);
  switch (code) {
    case kTopicAuthorizationFailed: {
      std::string acl(operation);
      std::transform(acl.begin(), acl.end(), acl.begin(), [](unsigned char c) { return std::toupper(c); });
      return fmt::format("{} is not allowed to {} topic {} (TOPIC_AUTHORIZATION_FAILED): an ACL granting {} on it "
                         "is missing",
                         identity, operation, topic, acl);
    }
    case kUnknownTopicOrPartition:
      return fmt::format("{} does not exist (UNKNOWN_TOPIC_OR_PARTITION)", where);
    case kLeaderNotAvailable:
    case kNotLeaderOrFollower:
      return fmt::format("{} has no leader that takes it now ({})", where, error_name(code));
    case kMessageTooLarge:
      return fmt::format("the batch for {} is larger than the broker takes (MESSAGE_TOO_LARGE): lower --batch-size "
                         "or raise the topic's max.message.bytes",
                         where);
    default:
      return fmt::format("{}: {}", where, error_name(code));
  }
}

// ---- Producer ------------------------------------------------------------------------------------

Result<LineReaderOptions> line_reader_options(const std::map<std::string, std::string>& properties) {
  LineReaderOptions o;
  for (const auto& [key, value] : properties) {
    Status status;
    if (key == "parse.key") status = set_bool(key, value, o.parse_key);
    else if (key == "key.separator") o.key_separator = value;
    else if (key == "parse.headers") status = set_bool(key, value, o.parse_headers);
    else if (key == "headers.delimiter") o.headers_delimiter = value;
    else if (key == "headers.separator") o.headers_separator = value;
    else if (key == "headers.key.separator") o.headers_key_separator = value;
    else if (key == "ignore.error") status = set_bool(key, value, o.ignore_error);
    else if (key == "null.marker") o.null_marker = value;
    else
      return invalid(fmt::format("--property {}: not a line reader property (parse.key, key.separator, parse.headers, "
                                 "headers.delimiter, headers.separator, headers.key.separator, ignore.error, "
                                 "null.marker)",
                                 key));
    if (!status) return status.error();
  }
  for (const auto* s : {&o.key_separator, &o.headers_delimiter, &o.headers_separator, &o.headers_key_separator})
    if (s->empty()) return invalid("--property: separators and delimiters may not be empty");
  // Kafka's checks: header separators that are equal make lines ambiguous.
  if (o.headers_delimiter == o.headers_separator)
    return invalid("headers.delimiter and headers.separator may not be equal");
  if (o.headers_delimiter == o.headers_key_separator)
    return invalid("headers.delimiter and headers.key.separator may not be equal");
  if (o.headers_separator == o.headers_key_separator)
    return invalid("headers.separator and headers.key.separator may not be equal");
  if (o.null_marker && o.null_marker->empty()) return invalid("null.marker may not be empty");
  return o;
}

Result<wire::Record> parse_line(std::string_view line, const LineReaderOptions& options, std::int64_t line_number) {
  wire::Record record;
  std::size_t offset = 0;
  if (options.parse_headers) {
    auto headers = field_before(line, 0, options.headers_delimiter, "headers delimiter", options, line_number);
    if (!headers) return headers.error();
    if (*headers) {
      offset = (*headers)->size() + options.headers_delimiter.size();
      if (!options.null_marker || **headers != *options.null_marker) {
        auto parsed = parse_headers(**headers, options, line_number);
        if (!parsed) return parsed.error();
        record.headers = std::move(*parsed);
      }
    }
  }
  if (options.parse_key) {
    auto key = field_before(line, offset, options.key_separator, "key separator", options, line_number);
    if (!key) return key.error();
    if (*key) {
      offset += (*key)->size() + options.key_separator.size();
      record.key = bytes_unless_null(**key, options.null_marker);
    }
  }
  record.value = bytes_unless_null(line.substr(offset), options.null_marker);
  return record;
}

std::int32_t murmur2(ByteView data) {
  // Kafka's Utils.murmur2, in unsigned arithmetic (Java's int wraps the same way).
  const std::uint32_t m = 0x5bd1e995;
  const auto length = static_cast<std::uint32_t>(data.size());
  std::uint32_t h = 0x9747b28cu ^ length;
  const std::size_t whole = data.size() / 4 * 4;
  for (std::size_t i = 0; i < whole; i += 4) {
    std::uint32_t k = std::uint32_t{data[i]} | std::uint32_t{data[i + 1]} << 8 | std::uint32_t{data[i + 2]} << 16 |
                      std::uint32_t{data[i + 3]} << 24;
    k *= m;
    k ^= k >> 24;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (data.size() % 4) {
    case 3:
      h ^= std::uint32_t{data[whole + 2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= std::uint32_t{data[whole + 1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= std::uint32_t{data[whole]};
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<std::int32_t>(h);
}

std::int32_t partition_for_key(ByteView key, std::int32_t partition_count) {
  // Utils.toPositive: the sign bit cleared, not the absolute value.
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(murmur2(key)) & 0x7fffffffu) % partition_count;
}

Result<std::int16_t> parse_acks(std::string_view text) {
  if (text == "all" || text == "-1") return std::int16_t{-1};
  if (text == "1") return std::int16_t{1};
  if (text == "0") return std::int16_t{0};
  return invalid(fmt::format("acks: '{}' is not one of all, -1, 1, 0", text));
}

Result<wire::Compression> parse_compression(std::string_view text) {
  for (auto codec : {wire::Compression::none, wire::Compression::gzip, wire::Compression::snappy,
                     wire::Compression::lz4, wire::Compression::zstd})
    if (text == compression_name(codec)) return codec;
  return invalid(fmt::format("compression codec '{}' is not one of none, gzip, snappy, lz4, zstd", text));
}

Status apply_producer_properties(const std::map<std::string, std::string>& properties, ProducerOptions& o,
                                 std::vector<std::string>& notes) {
  for (const auto& [key, value] : properties) {
    if (key == "acks") {
      auto acks = parse_acks(value);
      if (!acks) return acks.error();
      o.acks = *acks;
    } else if (key == "compression.type") {
      auto codec = parse_compression(value);
      if (!codec) return codec.error();
      o.compression = *codec;
    } else if (key == "batch.size") {
      BULWARK_TRY(set_int(key, value, o.batch_bytes));
    } else if (key == "linger.ms") {
      BULWARK_TRY(set_ms(key, value, o.linger));
    } else if (key == "max.request.size") {
      BULWARK_TRY(set_int(key, value, o.max_request_bytes));
    } else if (key == "retries") {
      BULWARK_TRY(set_int(key, value, o.retries));
    } else if (key == "retry.backoff.ms") {
      BULWARK_TRY(set_ms(key, value, o.retry_backoff));
    } else if (key == "request.timeout.ms") {
      BULWARK_TRY(set_ms(key, value, o.request_timeout));
    } else {
      notes.push_back(fmt::format("producer property {} is not used by bulwark produce (connection settings go in "
                                  "--command-config)",
                                  key));
    }
  }
  return Status::success();
}

// ---- Consumer ------------------------------------------------------------------------------------

Result<FormatOptions> format_options(const std::map<std::string, std::string>& properties) {
  FormatOptions o;
  for (const auto& [key, value] : properties) {
    Status status;
    if (key == "print.timestamp") status = set_bool(key, value, o.print_timestamp);
    else if (key == "print.key") status = set_bool(key, value, o.print_key);
    else if (key == "print.offset") status = set_bool(key, value, o.print_offset);
    else if (key == "print.partition") status = set_bool(key, value, o.print_partition);
    else if (key == "print.headers") status = set_bool(key, value, o.print_headers);
    else if (key == "print.value") status = set_bool(key, value, o.print_value);
    else if (key == "key.separator") o.key_separator = value;
    else if (key == "line.separator") o.line_separator = value;
    else if (key == "headers.separator") o.headers_separator = value;
    else if (key == "null.literal") o.null_literal = value;
    else
      return invalid(fmt::format("--property {}: not a formatter property (print.timestamp, print.key, print.offset, "
                                 "print.partition, print.headers, print.value, key.separator, line.separator, "
                                 "headers.separator, null.literal)",
                                 key));
    if (!status) return status.error();
  }
  return o;
}

std::string format_record(const wire::Record& record, std::int32_t partition, bool log_append_time,
                          const FormatOptions& o) {
  std::string out;
  auto bytes_or_null = [&](const std::optional<Bytes>& b) {
    if (b) out.append(as_chars(*b));
    else out.append(o.null_literal);
  };
  // Each field ends with the column separator when another follows, else with the line separator.
  const bool more[] = {o.print_partition || o.print_offset || o.print_headers || o.print_key || o.print_value,
                       o.print_offset || o.print_headers || o.print_key || o.print_value,
                       o.print_headers || o.print_key || o.print_value, o.print_key || o.print_value,
                       o.print_value};
  auto end_field = [&](int field) { out.append(more[field] ? o.key_separator : o.line_separator); };
  if (o.print_timestamp) {
    out.append(fmt::format("{}:{}", log_append_time ? "LogAppendTime" : "CreateTime", record.timestamp));
    end_field(0);
  }
  if (o.print_partition) {
    out.append(fmt::format("Partition:{}", partition));
    end_field(1);
  }
  if (o.print_offset) {
    out.append(fmt::format("Offset:{}", record.offset));
    end_field(2);
  }
  if (o.print_headers) {
    if (record.headers.empty()) out.append("NO_HEADERS");
    for (std::size_t i = 0; i < record.headers.size(); ++i) {
      if (i > 0) out.append(o.headers_separator);
      out.append(record.headers[i].key).append(":");
      bytes_or_null(record.headers[i].value);
    }
    end_field(3);
  }
  if (o.print_key) {
    bytes_or_null(record.key);
    end_field(4);
  }
  if (o.print_value) {
    bytes_or_null(record.value);
    out.append(o.line_separator);
  }
  return out;
}

Bytes encode_subscription(const std::vector<std::string>& topics) {
  ByteWriter w;
  w.write_i16(0);  // version
  w.write_i32(static_cast<std::int32_t>(topics.size()));
  for (const auto& t : topics) write_string(w, t);
  w.write_i32(-1);  // user data: null
  return w.take();
}

Result<std::vector<std::string>> decode_subscription(ByteView metadata) {
  ByteReader r(metadata);
  std::int16_t version = 0;
  std::int32_t count = 0;
  if (!r.read_i16(version) || version < 0 || !r.read_i32(count) || count < 0 ||
      static_cast<std::size_t>(count) > r.remaining() / 2)
    return not_consumer_protocol("subscription");
  std::vector<std::string> topics(static_cast<std::size_t>(count));
  for (auto& t : topics)
    if (!read_string(r, t)) return not_consumer_protocol("subscription");
  return topics;
}

Bytes encode_assignment(const std::vector<TopicPartitions>& assignment) {
  ByteWriter w;
  w.write_i16(0);  // version
  w.write_i32(static_cast<std::int32_t>(assignment.size()));
  for (const auto& tp : assignment) {
    write_string(w, tp.topic);
    w.write_i32(static_cast<std::int32_t>(tp.partitions.size()));
    for (auto p : tp.partitions) w.write_i32(p);
  }
  w.write_i32(-1);  // user data: null
  return w.take();
}

Result<std::vector<TopicPartitions>> decode_assignment(ByteView assignment) {
  if (assignment.empty()) return std::vector<TopicPartitions>{};
  ByteReader r(assignment);
  std::int16_t version = 0;
  std::int32_t topics = 0;
  if (!r.read_i16(version) || version < 0 || !r.read_i32(topics) || topics < 0 ||
      static_cast<std::size_t>(topics) > r.remaining() / 6)
    return not_consumer_protocol("assignment");
  std::vector<TopicPartitions> out(static_cast<std::size_t>(topics));
  for (auto& tp : out) {
    std::int32_t count = 0;
    if (!read_string(r, tp.topic) || !r.read_i32(count) || count < 0 ||
        static_cast<std::size_t>(count) > r.remaining() / 4)
      return not_consumer_protocol("assignment");
    tp.partitions.resize(static_cast<std::size_t>(count));
    for (auto& p : tp.partitions)
      if (!r.read_i32(p)) return not_consumer_protocol("assignment");
  }
  return out;
}

std::map<std::string, std::vector<TopicPartitions>> range_assign(
    const std::vector<MemberSubscription>& members, const std::map<std::string, std::int32_t>& partition_counts) {
  std::map<std::string, std::vector<TopicPartitions>> out;
  std::map<std::string, std::vector<const MemberSubscription*>> subscribers;
  for (const auto& m : members) {
    out[m.member_id];
    for (const auto& t : std::set<std::string>(m.topics.begin(), m.topics.end())) subscribers[t].push_back(&m);
  }
  for (auto& [topic, subs] : subscribers) {
    auto count = partition_counts.find(topic);
    if (count == partition_counts.end()) continue;
    std::sort(subs.begin(), subs.end(), [](const auto* a, const auto* b) { return member_before(*a, *b); });
    const auto n = static_cast<std::int32_t>(subs.size());
    const std::int32_t each = count->second / n;
    const std::int32_t extra = count->second % n;
    for (std::int32_t i = 0; i < n; ++i) {
      const std::int32_t start = each * i + std::min(i, extra);
      const std::int32_t length = each + (i < extra ? 1 : 0);
      if (length == 0) continue;
      TopicPartitions tp{topic, {}};
      for (std::int32_t p = start; p < start + length; ++p) tp.partitions.push_back(p);
      out[subs[static_cast<std::size_t>(i)]->member_id].push_back(std::move(tp));
    }
  }
  return out;
}

Status apply_consumer_properties(const std::map<std::string, std::string>& properties, ConsumerOptions& o,
                                 std::vector<std::string>& notes) {
  for (const auto& [key, value] : properties) {
    Status status;
    if (key == "group.id") o.group = value;
    else if (key == "group.instance.id") o.group_instance_id = value;
    else if (key == "auto.offset.reset") {
      if (value != "earliest" && value != "latest" && value != "none")
        return invalid(fmt::format("auto.offset.reset: '{}' is not one of earliest, latest, none", value));
      o.auto_offset_reset = value;
    } else if (key == "enable.auto.commit") status = set_bool(key, value, o.enable_auto_commit);
    else if (key == "auto.commit.interval.ms") status = set_ms(key, value, o.auto_commit_interval);
    else if (key == "session.timeout.ms") status = set_ms(key, value, o.session_timeout);
    else if (key == "heartbeat.interval.ms") status = set_ms(key, value, o.heartbeat_interval);
    else if (key == "max.poll.interval.ms") status = set_ms(key, value, o.max_poll_interval);
    else if (key == "max.partition.fetch.bytes") status = set_int(key, value, o.max_partition_fetch_bytes);
    else if (key == "fetch.max.bytes") status = set_int(key, value, o.fetch_max_bytes);
    else if (key == "fetch.max.wait.ms") status = set_int(key, value, o.fetch_max_wait_ms);
    else
      notes.push_back(fmt::format("consumer property {} is not used by bulwark consume (connection settings go in "
                                  "--command-config)",
                                  key));
    if (!status) return status.error();
  }
  return Status::success();
}

}  // namespace bulwark::client
