// The console producer: lines from a file descriptor, batched per partition, sent to each leader.
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "client/console.h"
#include "wire/generated/produce.h"

namespace bulwark::client {
namespace {

using namespace kafka_errors;
using Clock = std::chrono::steady_clock;

// Lines of a file descriptor, each waited for at most a given time (so lingering batches can be sent
// while an interactive user thinks).
class LineInput {
 public:
  explicit LineInput(int fd) : fd_(fd) {}
  enum class Got { line, timeout, end };

  Result<Got> next(std::string& line, std::chrono::milliseconds wait) {
    for (;;) {
      if (take_line(line)) return Got::line;
      if (eof_) return Got::end;
      pollfd p{fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(wait.count()));
      if (n == 0 || (n < 0 && errno == EINTR)) return Got::timeout;
      if (n < 0) return make_error(ErrorKind::io, fmt::format("cannot read the input: {}", std::strerror(errno)));
      BULWARK_TRY(fill());
    }
  }

 private:
  // A whole line from the buffer; at the end, the last one even without its newline (as readLine).
  bool take_line(std::string& line) {
    const auto nl = buffer_.find('\n', pos_);
    if (nl == std::string::npos && !(eof_ && pos_ < buffer_.size())) return false;
    const auto end = nl == std::string::npos ? buffer_.size() : nl;
    line.assign(buffer_, pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    pos_ = nl == std::string::npos ? buffer_.size() : nl + 1;
    return true;
  }

  Status fill() {
    if (pos_ > 0) {
      buffer_.erase(0, pos_);
      pos_ = 0;
    }
    char chunk[64 * 1024];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno != EINTR && errno != EAGAIN)
      return make_error(ErrorKind::io, fmt::format("cannot read the input: {}", std::strerror(errno)));
    if (n == 0) eof_ = true;
    if (n > 0) buffer_.append(chunk, static_cast<std::size_t>(n));
    return Status::success();
  }

  int fd_;
  std::string buffer_;
  std::size_t pos_ = 0;
  bool eof_ = false;
};

// Records that wait for one partition, and the input lines they came from (for messages).
struct Pending {
  std::vector<wire::Record> records;
  std::vector<std::int64_t> lines;
  std::size_t bytes = 0;
};

// One encoded batch on its way, with the tries it has had.
struct Batch {
  std::int32_t partition = 0;
  Bytes bytes;
  std::vector<std::int64_t> lines;  // one per record
  int attempts = 0;
  std::string last_error;
};

bool retriable(std::int16_t code) {
  switch (code) {
    case kUnknownTopicOrPartition:  // metadata may lag a new topic or partition
    case kLeaderNotAvailable:
    case kNotLeaderOrFollower:
    case kRequestTimedOut:
    case kNetworkException:
    case kNotEnoughReplicas:
    case kNotEnoughReplicasAfterAppend:
    case kKafkaStorageError:
    case kFencedLeaderEpoch:
    case kUnknownLeaderEpoch:
      return true;
    default:
      return false;
  }
}

std::size_t record_size(const wire::Record& r) {
  std::size_t size = 21 + (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  for (const auto& h : r.headers) size += 10 + h.key.size() + (h.value ? h.value->size() : 0);
  return size;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ConsoleProducer {
 public:
  ConsoleProducer(ClusterClient& cluster, const ProducerOptions& options, std::int32_t partitions, std::FILE* err,
                  ProduceStats& stats)
      : cluster_(cluster), options_(options), partitions_(partitions), err_(err), stats_(stats) {
    sticky_ = static_cast<std::int32_t>(std::random_device{}() % static_cast<unsigned>(partitions));
  }

  void add(wire::Record record, std::int64_t line) {
    const std::int32_t partition = choose_partition(record);
    Pending& p = pending_[partition];
    if (pending_bytes_ == 0) first_pending_ = Clock::now();
    p.lines.push_back(line);
    record.offset = static_cast<std::int64_t>(p.records.size());
    record.timestamp = now_ms();
    const std::size_t size = record_size(record);
    p.bytes += size;
    pending_bytes_ += size;
    full_ = full_ || p.bytes >= options_.batch_bytes;
    p.records.push_back(std::move(record));
  }

  // A batch is full, the request would grow too big, or every line goes on its own (--sync).
  bool due() const {
    return pending_bytes_ > 0 && (options_.sync || full_ || pending_bytes_ >= options_.max_request_bytes);
  }
  bool empty() const { return pending_bytes_ == 0; }
  // How long the oldest waiting line may still wait.
  std::chrono::milliseconds linger_left() const {
    const auto left = first_pending_ + options_.linger - Clock::now();
    return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(left));
  }

  void flush() {
    std::vector<Batch> batches = encode_pending();
    while (!batches.empty()) {
      std::vector<Batch> again;
      send_all(std::move(batches), again);
      batches.clear();
      for (auto& b : again) {
        if (++b.attempts > options_.retries) fail(b, b.last_error + " (gave up after " +
                                                         std::to_string(options_.retries) + " retries)");
        else batches.push_back(std::move(b));
      }
      if (batches.empty()) break;
      std::this_thread::sleep_for(options_.retry_backoff);
      (void)cluster_.refresh_metadata({options_.topic});  // a failure shows again on the retry
    }
  }

 private:
  std::int32_t choose_partition(const wire::Record& record) {
    if (record.key) return partition_for_key(*record.key, partitions_);
    // Sticky, as Kafka's built-in partitioner: one partition per batch.size of unkeyed records.
    if (sticky_bytes_ >= options_.batch_bytes) {
      sticky_ = (sticky_ + 1) % partitions_;
      sticky_bytes_ = 0;
    }
    sticky_bytes_ += record_size(record);
    return sticky_;
  }

  std::vector<Batch> encode_pending() {
    std::vector<Batch> batches;
    wire::BatchOptions batch_options;
    batch_options.compression = options_.compression;
    for (auto& [partition, p] : pending_) {
      Batch b{partition, {}, std::move(p.lines), 0, {}};
      auto bytes = wire::encode_batch(p.records, batch_options);
      if (!bytes) {
        fail(b, bytes.error().message);
        continue;
      }
      b.bytes = std::move(*bytes);
      batches.push_back(std::move(b));
    }
    pending_.clear();
    pending_bytes_ = 0;
    full_ = false;
    return batches;
  }

  // Sends every batch to its leader; those worth another try go to `again`.
  void send_all(std::vector<Batch> batches, std::vector<Batch>& again) {
    std::map<std::int32_t, std::vector<Batch>> by_leader;
    for (auto& b : batches) {
      auto leader = cluster_.leader(options_.topic, b.partition);
      auto id = cluster_.leader_id(options_.topic, b.partition);
      if (!leader || !id) {
        b.last_error = leader ? "no leader" : leader.error().message;
        again.push_back(std::move(b));
        continue;
      }
      by_leader[*id].push_back(std::move(b));
    }
    for (auto& [node, list] : by_leader) {
      // Requests of at most max.request.size (a batch larger than that goes alone).
      std::vector<Batch> request;
      std::size_t size = 0;
      for (auto& b : list) {
        if (!request.empty() && size + b.bytes.size() > options_.max_request_bytes) {
          send(node, std::move(request), again);
          request.clear();
          size = 0;
        }
        size += b.bytes.size();
        request.push_back(std::move(b));
      }
      if (!request.empty()) send(node, std::move(request), again);
    }
  }

  void send(std::int32_t node, std::vector<Batch> batches, std::vector<Batch>& again) {
    wire::msg::ProduceRequest request;
    // The admin connection has no one-way send, so acks=0 waits for the leader as acks=1 does.
    request.acks = options_.acks == 0 ? 1 : options_.acks;
    request.timeout_ms = static_cast<std::int32_t>(options_.request_timeout.count());
    wire::msg::ProduceRequest::TopicProduceData topic;
    topic.name = options_.topic;
    for (const auto& b : batches) topic.partition_data.push_back({b.partition, b.bytes, {}});
    request.topic_data.push_back(std::move(topic));
    auto connection = cluster_.broker(node);
    if (!connection) return retry_all(batches, connection.error().message, again);
    auto response = (*connection)->call<wire::msg::ProduceRequest, wire::msg::ProduceResponse>(request);
    if (!response) {
      if (response.error().kind == ErrorKind::io) cluster_.drop_connection(node);
      return retry_all(batches, response.error().message, again);
    }
    identity_ = (*connection)->identity();
    for (auto& b : batches) settle(b, find_result(*response, b.partition), again);
  }

  void retry_all(std::vector<Batch>& batches, const std::string& why, std::vector<Batch>& again) {
    for (auto& b : batches) {
      b.last_error = why;
      again.push_back(std::move(b));
    }
  }

  const wire::msg::ProduceResponse::PartitionProduceResponse* find_result(const wire::msg::ProduceResponse& response,
                                                                           std::int32_t partition) const {
    for (const auto& t : response.responses)
      for (const auto& p : t.partition_responses)
        if (p.index == partition && (t.name == options_.topic || t.name.empty())) return &p;
    return nullptr;
  }

  void settle(Batch& b, const wire::msg::ProduceResponse::PartitionProduceResponse* result,
              std::vector<Batch>& again) {
    if (!result) {
      b.last_error = "the broker did not answer for the partition";
      again.push_back(std::move(b));
    } else if (result->error_code == 0) {
      stats_.acknowledged += static_cast<std::int64_t>(b.lines.size());
    } else if (retriable(result->error_code)) {
      b.last_error = partition_error_words(result->error_code, options_.topic, b.partition, "write", identity_);
      again.push_back(std::move(b));
    } else {
      std::string why = partition_error_words(result->error_code, options_.topic, b.partition, "write", identity_);
      if (result->error_message && !result->error_message->empty()) why += ": " + *result->error_message;
      for (const auto& e : result->record_errors) {
        if (e.batch_index < 0 || static_cast<std::size_t>(e.batch_index) >= b.lines.size()) continue;
        why += fmt::format("; line {}: {}", b.lines[static_cast<std::size_t>(e.batch_index)],
                           e.batch_index_error_message.value_or("invalid record"));
      }
      fail(b, why);
    }
  }

  void fail(const Batch& b, const std::string& why) {
    stats_.failed += static_cast<std::int64_t>(b.lines.size());
    const std::string lines = b.lines.size() == 1
                                  ? fmt::format("line {}", b.lines.front())
                                  : fmt::format("{} records (lines {}-{})", b.lines.size(), b.lines.front(), b.lines.back());
    std::fprintf(err_, "error: %s for %s-%d not written: %s\n", lines.c_str(), options_.topic.c_str(), b.partition,
                 why.c_str());
  }

  ClusterClient& cluster_;
  const ProducerOptions& options_;
  const std::int32_t partitions_;
  std::FILE* err_;
  ProduceStats& stats_;
  std::string identity_ = cluster_.any().identity();
  std::map<std::int32_t, Pending> pending_;
  std::size_t pending_bytes_ = 0;
  bool full_ = false;
  Clock::time_point first_pending_{};
  std::int32_t sticky_ = 0;
  std::size_t sticky_bytes_ = 0;
};

// How long to wait for input: the linger time of what waits, else a while (to notice `stop`).
std::chrono::milliseconds input_wait(const ConsoleProducer& producer) {
  constexpr std::chrono::milliseconds kIdle{500};
  return producer.empty() ? kIdle : std::min(kIdle, producer.linger_left());
}

}  // namespace

Status run_console_producer(ClusterClient& cluster, const ProducerOptions& options, int in_fd, std::FILE* err,
                            const std::atomic<bool>& stop, ProduceStats& stats) {
  auto topic = describe_topic(cluster, options.topic, /*create=*/true);
  if (!topic) return topic.error();
  ConsoleProducer producer(cluster, options, topic->partitions, err, stats);
  LineInput input(in_fd);
  std::string line;
  Status outcome;
  while (!stop.load()) {
    auto got = input.next(line, input_wait(producer));
    if (!got) {
      outcome = got.error();
      break;
    }
    if (*got == LineInput::Got::end) break;
    if (*got == LineInput::Got::line) {
      auto record = parse_line(line, options.reader, stats.lines + 1);
      if (!record) {
        outcome = record.error();  // Kafka's tool stops at a line it cannot read
        break;
      }
      producer.add(std::move(*record), ++stats.lines);
    }
    if (producer.due() || (!producer.empty() && producer.linger_left().count() == 0)) producer.flush();
  }
  producer.flush();
  return outcome;
}

}  // namespace bulwark::client
