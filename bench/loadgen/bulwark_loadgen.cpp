// bulwark_loadgen: a load generator for Kafka-compatible brokers built on the librdkafka C API.
//
//   bulwark_loadgen produce --bootstrap HOST:PORT --topic T [--messages N] [--size BYTES] [--acks A]
//                           [--compression none|gzip|snappy|lz4|zstd] [--linger-ms MS] [--batch-size BYTES]
//                           [--rate MSG_PER_S] [--transaction-records N] [--keys N] [--tombstones FRACTION]
//                           [--latency-file FILE] [-X key=value ...]
//   bulwark_loadgen consume --bootstrap HOST:PORT --topic T [--messages N] [-X key=value ...]
//   bulwark_loadgen e2e     --bootstrap HOST:PORT --topic T [--messages N] [--size BYTES] --rate MSG_PER_S ...
//
// produce: MB/s (1 MB = 10^6 bytes of message values) and the latency of each message from produce() to
//          its delivery report (p50/p99/max); with --rate 0 the producer runs as fast as it can, so the
//          latency then includes the time a message waits in librdkafka's queue.
//          --transaction-records N: a transactional producer (transactional.id bulwark-loadgen-<pid> unless
//          -X sets one) commits every N records; flush_us is the flush before each commit and commit_us
//          the commit_transaction() call after it (EndTxn and its markers); flush_and_commit_us, their sum
//          per transaction, is what one commit_transaction() without the flush would take. --keys N: each record gets a random key of
//          N ("key-<i>"); --tombstones F: that fraction of them a null value instead (needs --keys).
//          --latency-file FILE: one line per delivered record, "<send time, unix us> <latency us>".
// consume: reads N messages from the beginning of every partition of the topic (legacy consumer API, no
//          group), MB/s measured from the first to the last message.
// e2e:     a consumer positioned at the end of every partition runs in one thread while a rate-limited
//          producer runs in another; latency = receive time - send time written in the first 8 bytes of
//          each value (microseconds, same clock), and also - the message timestamp (milliseconds).
//
// -X passes any librdkafka property to every client (e.g. security.protocol=ssl, ssl.ca.location=...,
// ssl.certificate.location=..., ssl.key.location=...). Output: one JSON line on stdout.
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct Options {
  std::string mode;
  std::string bootstrap = "127.0.0.1:9092";
  std::string topic = "bench";
  long long messages = 100000;
  size_t size = 1024;
  std::string acks = "1";
  std::string compression = "none";
  std::string linger_ms;
  std::string batch_size;
  double rate = 0;
  double timeout_s = 120;
  std::string group;  // consume as a member of this consumer group (subscribe) instead of by assignment
  long long transaction_records = 0;  // > 0: a transactional producer committing every that many records
  long long keys = 0;                 // > 0: random keys out of this many
  double tombstones = 0;              // fraction of keyed records sent with a null value
  std::string latency_file;           // per-record send time and latency
  std::vector<std::pair<std::string, std::string>> extra;
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "bulwark_loadgen: %s\n", msg.c_str());
  std::exit(2);
}

void usage() {
  std::fprintf(stderr,
               "usage: bulwark_loadgen produce|consume|e2e --bootstrap HOST:PORT --topic T [--messages N]\n"
               "         [--size BYTES] [--acks A] [--compression C] [--linger-ms MS] [--batch-size BYTES]\n"
               "         [--rate MSG_PER_S (0 = as fast as possible)] [--timeout S] [--group G]\n"
               "         [--transaction-records N] [--keys N] [--tombstones FRACTION] [--latency-file FILE]\n"
               "         [-X key=value ...]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) usage();
  o.mode = argv[1];
  if (o.mode != "produce" && o.mode != "consume" && o.mode != "e2e") usage();
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--bootstrap") o.bootstrap = next();
    else if (a == "--topic") o.topic = next();
    else if (a == "--messages") o.messages = std::stoll(next());
    else if (a == "--size") o.size = std::stoul(next());
    else if (a == "--acks") o.acks = next();
    else if (a == "--compression") o.compression = next();
    else if (a == "--linger-ms") o.linger_ms = next();
    else if (a == "--batch-size") o.batch_size = next();
    else if (a == "--rate") o.rate = std::stod(next());
    else if (a == "--timeout") o.timeout_s = std::stod(next());
    else if (a == "--group") o.group = next();
    else if (a == "--transaction-records") o.transaction_records = std::stoll(next());
    else if (a == "--keys") o.keys = std::stoll(next());
    else if (a == "--tombstones") o.tombstones = std::stod(next());
    else if (a == "--latency-file") o.latency_file = next();
    else if (a == "-X") {
      std::string kv = next();
      auto eq = kv.find('=');
      if (eq == std::string::npos) die("-X wants key=value, got " + kv);
      o.extra.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (a == "-h" || a == "--help") usage();
    else die("unknown argument " + a);
  }
  if (o.messages <= 0) die("--messages must be > 0");
  if (o.mode == "e2e" && o.rate <= 0) die("e2e needs --rate > 0");
  if (o.mode != "consume" && o.size < 8) die("--size must be >= 8 (the value carries the send time)");
  if (o.tombstones < 0 || o.tombstones > 1 || (o.tombstones > 0 && o.keys <= 0))
    die("--tombstones wants a fraction in [0, 1] and --keys");
  if (o.transaction_records > 0 && o.mode != "produce") die("--transaction-records is for produce only");
  return o;
}

using Clock = std::chrono::steady_clock;

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    die("config " + key + "=" + value + ": " + err);
}

rd_kafka_conf_t* base_conf(const Options& o) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", o.bootstrap);
  set(conf, "client.id", "bulwark-loadgen");
  for (auto& [k, v] : o.extra) set(conf, k, v);
  return conf;
}

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0, mean = 0;
  size_t count = 0;
};

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]; };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

std::string json_pct(const char* name, const Percentiles& p) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "\"%s\":{\"count\":%zu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"mean\":%.1f}", name,
                p.count, p.p50, p.p99, p.max, p.mean);
  return buf;
}

// ---------------------------------------------------------------------------------------------- produce
struct ProduceState {
  std::vector<double> latency_us;
  std::vector<std::pair<int64_t, double>> samples;  // (send time in unix us, latency us) for --latency-file
  bool keep_samples = false;
  int64_t wall_minus_mono_us = 0;  // turns a monotonic send time into a wall-clock one
  double bytes = 0;                // value bytes delivered
  std::atomic<long long> delivered{0};
  std::atomic<long long> failed{0};
  std::string first_error;
  // Transactions (--transaction-records): flush before each commit, then the commit itself.
  std::vector<double> flush_us, commit_us, flush_and_commit_us;
  long long tombstones = 0;
};

void dr_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* st = static_cast<ProduceState*>(opaque);
  if (m->err) {
    if (st->first_error.empty()) st->first_error = rd_kafka_err2str(m->err);
    st->failed.fetch_add(1, std::memory_order_relaxed);
  } else {
    int64_t sent_ns = static_cast<int64_t>(reinterpret_cast<intptr_t>(m->_private));
    double latency = static_cast<double>(mono_ns() - sent_ns) / 1000.0;
    st->latency_us.push_back(latency);
    st->bytes += static_cast<double>(m->len);
    if (st->keep_samples) st->samples.emplace_back(sent_ns / 1000 + st->wall_minus_mono_us, latency);
  }
  st->delivered.fetch_add(1, std::memory_order_relaxed);
}

struct ProduceResult {
  double seconds = 0;
  long long sent = 0;
  ProduceState* state = nullptr;
};

void check(rd_kafka_error_t* error, const char* what) {
  if (!error) return;
  std::string message = std::string(what) + ": " + rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  die(message);
}

bool has_extra(const Options& o, const std::string& key) {
  return std::any_of(o.extra.begin(), o.extra.end(), [&](const auto& kv) { return kv.first == key; });
}

// Ends the open transaction: flush (its records' delivery), then commit_transaction(), each timed.
void commit(rd_kafka_t* rk, const Options& o, ProduceState& st) {
  const int timeout_ms = static_cast<int>(o.timeout_s * 1000);
  int64_t t0 = mono_ns();
  if (rd_kafka_flush(rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) die("flush before commit timed out");
  int64_t t1 = mono_ns();
  check(rd_kafka_commit_transaction(rk, timeout_ms), "commit_transaction");
  int64_t t2 = mono_ns();
  st.flush_us.push_back(static_cast<double>(t1 - t0) / 1000.0);
  st.commit_us.push_back(static_cast<double>(t2 - t1) / 1000.0);
  st.flush_and_commit_us.push_back(static_cast<double>(t2 - t0) / 1000.0);
}

// The key of record i (--keys) and whether it is a tombstone (--tombstones).
struct KeyChooser {
  std::mt19937_64 rng{7};
  char buf[32];
  size_t len = 0;
  bool tombstone = false;
  void next(const Options& o) {
    if (o.keys <= 0) return;
    len = static_cast<size_t>(std::snprintf(buf, sizeof buf, "key-%llu", static_cast<unsigned long long>(rng() % static_cast<uint64_t>(o.keys))));
    tombstone = o.tombstones > 0 && static_cast<double>(rng() % 1000000) < o.tombstones * 1e6;
  }
};

// Produces o.messages values of o.size bytes; each carries wall_us() in its first 8 bytes.
ProduceResult run_producer(const Options& o, ProduceState& st, const std::atomic<bool>* stop = nullptr) {
  rd_kafka_conf_t* conf = base_conf(o);
  const bool txn = o.transaction_records > 0;
  if (txn && !has_extra(o, "transactional.id"))
    set(conf, "transactional.id", "bulwark-loadgen-" + std::to_string(static_cast<long long>(getpid())));
  set(conf, "acks", o.acks);
  set(conf, "compression.type", o.compression);
  if (!o.linger_ms.empty()) set(conf, "linger.ms", o.linger_ms);
  if (!o.batch_size.empty()) set(conf, "batch.size", o.batch_size);
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_opaque(conf, &st);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die(std::string("producer: ") + err);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, o.topic.c_str(), nullptr);
  st.latency_us.reserve(static_cast<size_t>(o.messages));
  st.keep_samples = !o.latency_file.empty();
  st.wall_minus_mono_us = wall_us() - mono_ns() / 1000;
  if (txn) check(rd_kafka_init_transactions(rk, static_cast<int>(o.timeout_s * 1000)), "init_transactions");
  KeyChooser keys;

  std::vector<char> payload(o.size);
  std::mt19937_64 rng(42);
  for (size_t i = 0; i < payload.size(); i += 8) {
    uint64_t r = rng();
    std::memcpy(payload.data() + i, &r, std::min<size_t>(8, payload.size() - i));
  }
  // Connect and learn the topic's metadata before the clock starts.
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_metadata_destroy(md);

  auto start = Clock::now();
  long long i = 0;
  for (; i < o.messages; ++i) {
    if (stop && stop->load()) break;
    if (o.rate > 0) {
      auto due = start + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * 1e9 / o.rate));
      while (Clock::now() < due) {
        rd_kafka_poll(rk, 0);
        auto left = due - Clock::now();
        if (left > std::chrono::microseconds(200)) std::this_thread::sleep_for(left - std::chrono::microseconds(100));
      }
    }
    int64_t now_wall = wall_us();
    std::memcpy(payload.data(), &now_wall, 8);
    if (txn && i % o.transaction_records == 0) check(rd_kafka_begin_transaction(rk), "begin_transaction");
    keys.next(o);
    st.tombstones += keys.tombstone ? 1 : 0;
    for (;;) {
      int64_t t = mono_ns();
      if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, keys.tombstone ? nullptr : payload.data(),
                           keys.tombstone ? 0 : payload.size(), keys.len ? keys.buf : nullptr, keys.len,
                           reinterpret_cast<void*>(static_cast<intptr_t>(t))) == 0)
        break;
      rd_kafka_resp_err_t e = rd_kafka_last_error();
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("produce: ") + rd_kafka_err2str(e));
      rd_kafka_poll(rk, 1);
    }
    rd_kafka_poll(rk, 0);
    if (txn && ((i + 1) % o.transaction_records == 0 || i + 1 == o.messages)) commit(rk, o, st);
  }
  if (txn && i % o.transaction_records != 0 && i < o.messages) commit(rk, o, st);  // stopped mid-transaction
  auto deadline = Clock::now() + std::chrono::duration<double>(o.timeout_s);
  while (st.delivered.load() < i && Clock::now() < deadline) rd_kafka_poll(rk, 10);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  rd_kafka_flush(rk, 5000);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return {seconds, i, &st};
}

void write_samples(const std::string& path, const ProduceState& st) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) die("cannot write " + path);
  for (const auto& [sent, latency] : st.samples) std::fprintf(f, "%" PRId64 " %.1f\n", sent, latency);
  std::fclose(f);
}

// The transaction and key fields of the produce JSON line (empty when neither was asked for).
std::string txn_and_key_json(const Options& o, const ProduceState& st) {
  std::string out;
  if (o.transaction_records > 0)
    out += ",\"transaction_records\":" + std::to_string(o.transaction_records) +
           ",\"transactions\":" + std::to_string(st.commit_us.size()) + "," +
           json_pct("flush_us", percentiles(st.flush_us)) + "," + json_pct("commit_us", percentiles(st.commit_us)) + "," +
           json_pct("flush_and_commit_us", percentiles(st.flush_and_commit_us));
  if (o.keys > 0) out += ",\"keys\":" + std::to_string(o.keys) + ",\"tombstones\":" + std::to_string(st.tombstones);
  return out;
}

int produce(const Options& o) {
  ProduceState st;
  ProduceResult r = run_producer(o, st);
  long long ok = static_cast<long long>(st.latency_us.size());
  if (!o.latency_file.empty()) write_samples(o.latency_file, st);
  std::printf("{\"mode\":\"produce\",\"messages\":%lld,\"delivered\":%lld,\"failed\":%lld,\"size\":%zu,"
              "\"bytes\":%.0f,\"seconds\":%.3f,\"mb_per_s\":%.2f,\"msgs_per_s\":%.0f,\"acks\":\"%s\","
              "\"compression\":\"%s\",\"rate\":%.0f%s,%s%s%s%s}\n",
              r.sent, ok, st.failed.load(), o.size, st.bytes, r.seconds, st.bytes / 1e6 / r.seconds,
              static_cast<double>(ok) / r.seconds, o.acks.c_str(), o.compression.c_str(), o.rate,
              txn_and_key_json(o, st).c_str(), json_pct("latency_us", percentiles(st.latency_us)).c_str(),
              st.first_error.empty() ? "" : ",\"error\":\"", st.first_error.c_str(),
              st.first_error.empty() ? "" : "\"");
  return (st.failed.load() == 0 && ok == r.sent) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------- consume
struct Consumer {
  rd_kafka_t* rk = nullptr;
  rd_kafka_topic_t* rkt = nullptr;
  rd_kafka_queue_t* q = nullptr;
  std::vector<int32_t> partitions;
  bool group = false;
};

// A group member: subscribes to the topic, gets partitions from the broker's group coordinator and
// starts at the earliest offset (a new group has no commits).
Consumer start_group_consumer(const Options& o) {
  rd_kafka_conf_t* conf = base_conf(o);
  set(conf, "group.id", o.group);
  set(conf, "auto.offset.reset", "earliest");
  set(conf, "enable.partition.eof", "false");
  char err[512];
  Consumer c;
  c.group = true;
  c.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!c.rk) die(std::string("consumer: ") + err);
  rd_kafka_poll_set_consumer(c.rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, o.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(c.rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) die(std::string("subscribe: ") + rd_kafka_err2str(e));
  c.q = rd_kafka_queue_get_consumer(c.rk);
  return c;
}

// Starts a legacy (group-less) consumer on every partition of the topic; at_end starts at each
// partition's high watermark, otherwise at the beginning.
Consumer start_consumer(const Options& o, bool at_end) {
  rd_kafka_conf_t* conf = base_conf(o);
  set(conf, "enable.partition.eof", "false");
  char err[512];
  Consumer c;
  c.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!c.rk) die(std::string("consumer: ") + err);
  c.rkt = rd_kafka_topic_new(c.rk, o.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  auto deadline = Clock::now() + std::chrono::seconds(20);
  for (;;) {
    rd_kafka_resp_err_t e = rd_kafka_metadata(c.rk, 0, c.rkt, &md, 5000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == 0 &&
        md->topics[0].partition_cnt > 0)
      break;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_metadata_destroy(md);
    if (Clock::now() > deadline) die("no metadata for topic " + o.topic);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (int i = 0; i < md->topics[0].partition_cnt; ++i) c.partitions.push_back(md->topics[0].partitions[i].id);
  rd_kafka_metadata_destroy(md);
  c.q = rd_kafka_queue_new(c.rk);
  for (int32_t p : c.partitions) {
    int64_t offset = RD_KAFKA_OFFSET_BEGINNING;
    if (at_end) {
      int64_t lo = 0, hi = 0;
      rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c.rk, o.topic.c_str(), p, &lo, &hi, 10000);
      if (e) die(std::string("watermarks: ") + rd_kafka_err2str(e));
      offset = hi;
    }
    if (rd_kafka_consume_start_queue(c.rkt, p, offset, c.q) == -1)
      die(std::string("consume_start: ") + rd_kafka_err2str(rd_kafka_last_error()));
  }
  return c;
}

void stop_consumer(Consumer& c) {
  if (c.group) {
    rd_kafka_queue_destroy(c.q);
    rd_kafka_consumer_close(c.rk);  // leaves the group cleanly
    rd_kafka_destroy(c.rk);
    return;
  }
  for (int32_t p : c.partitions) rd_kafka_consume_stop(c.rkt, p);
  rd_kafka_queue_destroy(c.q);
  rd_kafka_topic_destroy(c.rkt);
  rd_kafka_destroy(c.rk);
}

int consume(const Options& o) {
  Consumer c = o.group.empty() ? start_consumer(o, false) : start_group_consumer(o);
  auto t0 = Clock::now();
  Clock::time_point first{}, last{};
  long long n = 0, errors = 0;
  double bytes = 0;
  std::string first_error;
  std::vector<rd_kafka_message_t*> batch(4096);
  auto deadline = t0 + std::chrono::duration<double>(o.timeout_s);
  while (n < o.messages && Clock::now() < deadline) {
    // Ask for no more than is still wanted: the batch call waits until its batch is full or it times out.
    const size_t want = static_cast<size_t>(std::min<long long>(o.messages - n, static_cast<long long>(batch.size())));
    ssize_t got = rd_kafka_consume_batch_queue(c.q, 200, batch.data(), want);
    for (ssize_t i = 0; i < got; ++i) {
      rd_kafka_message_t* m = batch[static_cast<size_t>(i)];
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          ++errors;
          if (first_error.empty()) first_error = rd_kafka_message_errstr(m);
        }
      } else if (n < o.messages) {
        if (n == 0) first = Clock::now();
        ++n;
        bytes += static_cast<double>(m->len);
        last = Clock::now();
      }
      rd_kafka_message_destroy(m);
    }
  }
  double seconds = n > 1 ? std::chrono::duration<double>(last - first).count() : 0;
  double total = std::chrono::duration<double>(Clock::now() - t0).count();
  stop_consumer(c);
  std::printf("{\"mode\":\"%s\",", o.group.empty() ? "consume" : "consume-group");
  std::printf("\"messages\":%lld,\"wanted\":%lld,\"bytes\":%.0f,\"seconds\":%.3f,"
              "\"seconds_with_start\":%.3f,\"mb_per_s\":%.2f,\"msgs_per_s\":%.0f,\"errors\":%lld%s%s%s}\n",
              n, o.messages, bytes, seconds, total, seconds > 0 ? bytes / 1e6 / seconds : 0,
              seconds > 0 ? static_cast<double>(n) / seconds : 0, errors, first_error.empty() ? "" : ",\"error\":\"",
              first_error.c_str(), first_error.empty() ? "" : "\"");
  return n == o.messages ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------- e2e
// A producer's metadata request lets the broker auto-create the topic (a consumer's does not).
void touch_topic(const Options& o) {
  rd_kafka_conf_t* conf = base_conf(o);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die(std::string("producer: ") + err);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, o.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
}

int e2e(const Options& o) {
  touch_topic(o);
  Consumer c = start_consumer(o, true);
  // Give the consumer a moment to send its first fetch before the producer starts.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::atomic<bool> stop{false};
  std::vector<double> lat_us, lat_ts_ms;
  lat_us.reserve(static_cast<size_t>(o.messages));
  lat_ts_ms.reserve(static_cast<size_t>(o.messages));
  long long received = 0;
  std::thread reader([&] {
    // One message at a time: rd_kafka_consume_batch_queue() would wait to fill its batch.
    auto deadline = Clock::now() + std::chrono::duration<double>(o.timeout_s + static_cast<double>(o.messages) / o.rate);
    while (received < o.messages && Clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consume_queue(c.q, 100);
      if (!m) continue;
      int64_t now = wall_us();
      if (!m->err && m->len >= 8) {
        int64_t sent = 0;
        std::memcpy(&sent, m->payload, 8);
        lat_us.push_back(static_cast<double>(now - sent));
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        if (ts > 0) lat_ts_ms.push_back(static_cast<double>(now / 1000 - ts));
        ++received;
      }
      rd_kafka_message_destroy(m);
    }
    stop = true;
  });
  ProduceState st;
  ProduceResult r = run_producer(o, st, &stop);
  reader.join();
  stop_consumer(c);
  // The first 5 % are warm-up (connections, first fetches): left out of the percentiles.
  size_t skip = lat_us.size() / 20;
  std::vector<double> steady(lat_us.begin() + static_cast<std::ptrdiff_t>(skip), lat_us.end());
  std::vector<double> steady_ts(lat_ts_ms.begin() + static_cast<std::ptrdiff_t>(std::min(skip, lat_ts_ms.size())),
                                lat_ts_ms.end());
  std::printf("{\"mode\":\"e2e\",\"messages\":%lld,\"received\":%lld,\"size\":%zu,\"rate\":%.0f,\"seconds\":%.3f,"
              "\"warmup_skipped\":%zu,%s,%s,%s}\n",
              r.sent, received, o.size, o.rate, r.seconds, skip, json_pct("e2e_us", percentiles(steady)).c_str(),
              json_pct("e2e_timestamp_ms", percentiles(steady_ts)).c_str(),
              json_pct("produce_latency_us", percentiles(st.latency_us)).c_str());
  return received == o.messages ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  if (o.mode == "produce") return produce(o);
  if (o.mode == "consume") return consume(o);
  return e2e(o);
}
