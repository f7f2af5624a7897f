#include "cluster/quorum_driver.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/clock.h"
#include "base/log.h"
#include "cluster/quorum_store.h"
#include "cluster/raft_wire.h"

namespace bulwark::cluster {
namespace {

using Clock = std::chrono::steady_clock;

// How long one driver round waits for I/O: the resolution of the core's timers.
constexpr std::chrono::milliseconds kTickInterval{10};
constexpr std::int16_t kInvalidRequest = static_cast<std::int16_t>(raft::ErrorCode::invalid_request);

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}


std::uint64_t random_seed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

// Who sent a request: the id it names itself by (the transport does not authenticate node ids).
raft::NodeId sender_of(const raft::Message& message) {
  return std::visit(
      [](const auto& m) -> raft::NodeId {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, raft::VoteRequest>) return m.candidate_id;
        else if constexpr (std::is_same_v<T, raft::BeginQuorumEpochRequest> || std::is_same_v<T, raft::EndQuorumEpochRequest>)
          return m.leader_id;
        else if constexpr (std::is_same_v<T, raft::FetchRequest> || std::is_same_v<T, raft::FetchSnapshotRequest>)
          return m.replica_id;
        else return raft::kNoNode;
      },
      message);
}

std::string ids_text(const std::vector<raft::NodeId>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out;
}

// Every voter but this node needs an address, and only voters may have one.
Status check_voter_addresses(const QuorumDriverOptions& options) {
  const auto& voters = options.raft.voters;
  std::set<raft::NodeId> addressed;
  for (const auto& address : options.voters) {
    if (std::find(voters.begin(), voters.end(), address.id) == voters.end())
      return make_error(ErrorKind::invalid_argument, "quorum driver: node " + std::to_string(address.id) +
                                                         " has an address but is not among the voters " +
                                                         ids_text(voters));
    if (!addressed.insert(address.id).second)
      return make_error(ErrorKind::invalid_argument,
                        "quorum driver: voter " + std::to_string(address.id) + " has two addresses");
  }
  for (raft::NodeId voter : voters)
    if (voter != options.raft.node_id && !addressed.count(voter))
      return make_error(ErrorKind::invalid_argument,
                        "quorum driver: no controller listener address for voter " + std::to_string(voter));
  return Status::success();
}

QuorumStatus status_of(const raft::RaftNode& node) {
  return QuorumStatus{node.role(), node.epoch(), node.leader_id(), node.high_watermark(), node.durable_end_offset()};
}

bool same_leadership(const QuorumStatus& a, const QuorumStatus& b) {
  return a.role == b.role && a.epoch == b.epoch && a.leader_id == b.leader_id;
}

}  // namespace

struct QuorumDriver::Impl {
  // A call from another thread, run on the driver thread with running = true, or (once the driver is
  // stopping or stopped) with running = false to fail its callback.
  using Task = std::function<void(bool running)>;

  struct PendingInbound {
    ResponseCallback respond;
    std::int16_t api_version = 0;
    std::size_t max_record_bytes = SIZE_MAX;  // Fetch: the request's partition budget
    std::int64_t deadline_ms = 0;
  };

  Impl(QuorumDriverOptions o, QuorumStore s, raft::RaftNode n, std::unique_ptr<net::OutboundClient> c,
       std::optional<raft::SnapshotInstall> restored, std::int64_t offset)
      : options(std::move(o)),
        store(std::move(s)),
        node(std::move(n)),
        outbound(std::move(c)),
        restored_snapshot(std::move(restored)),
        clock_offset_ms(offset) {}

  // ---- Any thread ----------------------------------------------------------------------------------

  void submit(Task task) {
    {
      std::lock_guard lock(mutex);
      if (accepting) {
        tasks.push_back(std::move(task));
        outbound->wake();
        return;
      }
    }
    task(false);
  }

  void request_stop(std::chrono::milliseconds grace) {
    {
      std::lock_guard lock(mutex);
      const auto deadline = Clock::now() + grace;
      stop_deadline = stop_requested ? std::min(stop_deadline, deadline) : deadline;
      stop_requested = true;
    }
    outbound->wake();
  }

  QuorumStatus status() const {
    std::lock_guard lock(mutex);
    return published;
  }

  // These four may run on a caller's thread (once the driver stopped): they read no core state.
  Error not_running() const {
    return make_error(ErrorKind::unavailable, "node " + std::to_string(options.raft.node_id) +
                                                  ": the quorum driver is stopped or stopping");
  }
  Error store_failed() const {
    return make_error(ErrorKind::unavailable, "node " + std::to_string(options.raft.node_id) +
                                                  ": the metadata log failed; this node no longer takes part in the quorum");
  }
  // What propose and describe answer when the core cannot be asked: no leader known here.
  raft::ProposeResult not_leader() const {
    raft::ProposeResult result;
    result.error = raft::ErrorCode::not_leader_or_follower;
    result.leader = raft::LeaderIdAndEpoch{raft::kNoNode, status().epoch};
    return result;
  }
  raft::QuorumDescription no_description() const {
    raft::QuorumDescription description;
    description.error_code = raft::ErrorCode::not_leader_or_follower;
    description.leader_epoch = status().epoch;
    return description;
  }

  // ---- The driver thread ---------------------------------------------------------------------------

  std::int64_t now_ms() const { return steady_ms() + clock_offset_ms; }

  void run() {
    load_restored_snapshot();
    // Restoring may already have work (a dropped log prefix, a one-voter election): make it durable
    // before the first status says so.
    drain_ready();
    publish_status();
    for (;;) {
      outbound->poll(kTickInterval);
      run_tasks();
      if (!failed) {
        const std::int64_t now = now_ms();
        node.tick(now);
        drain_ready();
        expire_inbound(now);
      }
      publish_status();
      if (should_exit()) break;
    }
    finish();
  }

  // The state machine starts from the durable snapshot the core restarts at, if any.
  void load_restored_snapshot() {
    if (!restored_snapshot) return;
    raft::SnapshotInstall snapshot = std::move(*restored_snapshot);
    restored_snapshot.reset();
    if (!options.on_snapshot) return;
    Status loaded = options.on_snapshot(snapshot.id, ByteView(snapshot.bytes));
    if (!loaded.ok()) fail("the state machine could not load the snapshot at offset " +
                           std::to_string(snapshot.id.end_offset) + ": " + loaded.error().message);
  }

  void run_tasks() {
    std::vector<Task> batch;
    {
      std::lock_guard lock(mutex);
      batch.swap(tasks);
    }
    for (auto& task : batch) task(true);
  }

  // Contract of raft/node.h: durable first, then messages, then committed entries, then a snapshot.
  void drain_ready() {
    while (!failed && node.has_ready()) {
      raft::Ready ready = node.take_ready();
      if (!make_durable(ready)) return;
      for (const auto& message : ready.messages) {
        if (is_request(message.message)) send_request(message);
        else answer_inbound(message);
      }
      if (!ready.committed.empty() && options.on_committed) options.on_committed(ready.committed);
      if (ready.install_snapshot) install_snapshot(*ready.install_snapshot);
    }
  }

  bool make_durable(const raft::Ready& ready) {
    if (ready.write_id == 0) return true;
    auto durable = store.apply(ready);
    if (!durable.ok()) {
      fail(durable.error().message);
      return false;
    }
    const std::int64_t now = now_ms();
    if (durable->quorum_state) node.on_quorum_state_persisted(now, durable->write_id);
    // apply() is synchronous, so the whole batch (and every earlier one) is durable now, log or not;
    // saying so also for a batch without log writes lets the core forget it at once.
    node.on_log_durable(now, durable->write_id);
    return true;
  }

  void install_snapshot(const raft::SnapshotInstall& install) {
    Status saved = store.install_snapshot(install);
    if (!saved.ok()) return fail(saved.error().message);
    if (options.on_snapshot) {
      Status loaded = options.on_snapshot(install.id, ByteView(install.bytes));
      if (!loaded.ok())
        return fail("the state machine could not load the leader's snapshot at offset " +
                    std::to_string(install.id.end_offset) + ": " + loaded.error().message);
    }
    node.on_snapshot_loaded(now_ms(), install.id);
  }

  // The store (or the state machine) failed: the node stops taking part. Logged once.
  void fail(const std::string& why) {
    if (failed) return;
    failed = true;
    log::error("quorum driver of node {}: {}; this node no longer takes part in the quorum", node.id(), why);
    publish_status();  // no longer leading: say so now, not at the end of the round
    auto pending = std::exchange(inbound, {});
    for (auto& [id, request] : pending) request.respond(store_failed());
  }

  // ---- Outbound requests ----

  void send_request(const raft::OutgoingMessage& out) {
    auto body = encode_request(out.message);
    if (!body.ok()) {
      log::error("quorum driver of node {}: cannot encode {} to node {}: {}", node.id(), raft::message_name(out.message),
                 out.to, body.error().message);
      return;  // a lost message: the core's timers retry
    }
    net::OutboundRequest request;
    request.api_key = body->api_key;
    request.api_version = body->api_version;
    request.body = std::move(body->body);
    request.timeout = std::chrono::milliseconds(options.raft.request_timeout_ms);
    const bool resignation = resigning && std::holds_alternative<raft::EndQuorumEpochRequest>(out.message);
    if (resignation) ++resignations_in_flight;
    outbound->send(out.to, std::move(request),
                   [this, to = out.to, key = body->api_key, version = body->api_version,
                    correlation_id = out.correlation_id, resignation](net::OutboundResponse response) {
                     if (resignation) --resignations_in_flight;
                     on_response(to, key, version, correlation_id, std::move(response));
                   });
  }

  void on_response(raft::NodeId from, std::int16_t api_key, std::int16_t api_version, std::int32_t correlation_id,
                   net::OutboundResponse response) {
    if (shutting_down || failed) return;
    if (!response.ok()) {
      // A lost message (the outbound client logs connection failures): the core retries on its timers.
      log::debug("quorum driver of node {}: request to node {} failed: {}", node.id(), from, response.message);
      return;
    }
    auto message = decode_response(api_key, api_version, ByteView(response.body));
    if (!message.ok()) {
      log::warn("quorum driver of node {}: dropping a response from node {}: {}", node.id(), from,
                message.error().message);
      return;
    }
    node.receive(now_ms(), from, *message, correlation_id);
  }

  // ---- Inbound requests ----

  void receive_request(std::int16_t api_key, std::int16_t api_version, const Bytes& body, ResponseCallback respond) {
    if (failed) return respond(store_failed());
    if (api_key == msg::DescribeQuorumRequest::api_key) return answer_describe_quorum(api_version, body, respond);
    auto message = decode_request(api_key, api_version, ByteView(body));
    if (!message.ok()) {
      // Well-formed but not about the metadata partition: Kafka answers INVALID_REQUEST. Bytes that
      // do not decode, or a version we do not speak, close the connection.
      if (message.error().kind == ErrorKind::invalid_argument)
        return respond_with_error_code(api_key, api_version, kInvalidRequest, respond);
      return respond(message.error());
    }
    const raft::NodeId from = sender_of(*message);
    // The core ignores messages from itself or from no node; answer rather than leave them hanging.
    if (from < 0 || from == node.id()) return respond_with_error_code(api_key, api_version, kInvalidRequest, respond);

    const std::int32_t id = next_inbound_id();
    PendingInbound pending;
    pending.respond = std::move(respond);
    pending.api_version = api_version;
    if (const auto* fetch = std::get_if<raft::FetchRequest>(&*message); fetch && fetch->partition_max_bytes > 0)
      pending.max_record_bytes = static_cast<std::size_t>(fetch->partition_max_bytes);
    const std::int64_t now = now_ms();
    pending.deadline_ms = now + options.raft.request_timeout_ms;
    inbound[id] = std::move(pending);
    node.receive(now, from, *message, id);
  }

  // Inbound requests get negative correlation ids: the core's own requests count in [0, INT32_MAX]
  // and its responses echo the id they answer, so a negative one is always an inbound request's.
  std::int32_t next_inbound_id() {
    const std::int32_t id = inbound_id;
    inbound_id = inbound_id == INT32_MIN ? -1 : inbound_id - 1;
    return id;
  }

  void answer_inbound(const raft::OutgoingMessage& out) {
    auto it = inbound.find(out.correlation_id);
    if (it == inbound.end()) return;  // expired meanwhile (or not an answer to anyone)
    PendingInbound pending = std::move(it->second);
    inbound.erase(it);
    RecordEncoding encoding;
    encoding.max_bytes = pending.max_record_bytes;
    encoding.timestamp_ms = wall_clock_ms();
    auto body = encode_response(out.message, pending.api_version, encoding);
    if (!body.ok()) {
      log::error("quorum driver of node {}: cannot encode {} to node {}: {}", node.id(), raft::message_name(out.message),
                 out.to, body.error().message);
      return pending.respond(body.error());
    }
    pending.respond(std::move(body->body));
  }

  void respond_with_error_code(std::int16_t api_key, std::int16_t api_version, std::int16_t error,
                               const ResponseCallback& respond) {
    auto body = encode_error_response(api_key, api_version, error);
    if (!body.ok()) return respond(body.error());
    respond(std::move(body->body));
  }

  void answer_describe_quorum(std::int16_t api_version, const Bytes& body, const ResponseCallback& respond) {
    if (!raft_version_supported(msg::DescribeQuorumRequest::api_key, api_version))
      return respond(make_error(ErrorKind::unsupported, "DescribeQuorum v" + std::to_string(api_version) +
                                                            " is not supported"));
    msg::DescribeQuorumRequest request;
    ByteReader reader{ByteView(body)};
    if (!request.decode(reader, api_version) || !reader.at_end())
      return respond(make_error(ErrorKind::corrupt, "DescribeQuorum request v" + std::to_string(api_version) +
                                                        " is truncated or malformed"));
    const msg::DescribeQuorumResponse response =
        check_describe_quorum_request(request).ok() ? to_wire(node.describe_quorum(now_ms()))
                                                    : describe_quorum_partition_error(request, kUnknownTopicOrPartition);
    ByteWriter writer;
    response.encode(writer, api_version);
    respond(writer.take());
  }

  // Requests the core left unanswered (it answers every request it accepts at once, so this is rare).
  void expire_inbound(std::int64_t now) {
    for (auto it = inbound.begin(); it != inbound.end();) {
      if (it->second.deadline_ms > now) {
        ++it;
        continue;
      }
      auto respond = std::move(it->second.respond);
      it = inbound.erase(it);
      respond(make_error(ErrorKind::unavailable, "node " + std::to_string(node.id()) +
                                                     ": the request was not answered within " +
                                                     std::to_string(options.raft.request_timeout_ms) + " ms"));
    }
  }

  // ---- Status and shutdown ----

  void publish_status() {
    QuorumStatus now = status_of(node);
    if (failed) {  // no longer part of the quorum: nobody to follow, certainly not leading
      now.role = raft::Role::unattached;
      now.leader_id = raft::kNoNode;
    }
    {
      std::lock_guard lock(mutex);
      published = now;
    }
    if (reported && same_leadership(*reported, now)) return;
    reported = now;
    if (options.on_change) options.on_change(now);
  }

  // A stop was asked for: a leader resigns first and waits (up to the grace) for its EndQuorumEpoch
  // requests to be answered or to fail, so the others elect a successor without waiting for a timeout.
  bool should_exit() {
    Clock::time_point deadline;
    {
      std::lock_guard lock(mutex);
      if (!stop_requested) return false;
      deadline = stop_deadline;
    }
    if (failed || Clock::now() >= deadline) return true;
    if (!resigning) {
      if (node.role() != raft::Role::leader) return true;
      resigning = true;
      node.resign(now_ms());
      drain_ready();  // sends the EndQuorumEpoch requests
      publish_status();
    }
    return resignations_in_flight == 0;
  }

  // Ends every pending callback: inbound requests and queued calls get unavailable.
  void finish() {
    {
      std::lock_guard lock(mutex);
      accepting = false;
    }
    shutting_down = true;
    outbound->stop();  // its callbacks run here and are ignored
    auto pending = std::exchange(inbound, {});
    for (auto& [id, request] : pending) request.respond(not_running());
    std::vector<Task> left;
    {
      std::lock_guard lock(mutex);
      left.swap(tasks);
    }
    for (auto& task : left) task(false);
  }

  QuorumDriverOptions options;
  QuorumStore store;
  raft::RaftNode node;
  std::unique_ptr<net::OutboundClient> outbound;
  std::optional<raft::SnapshotInstall> restored_snapshot;
  const std::int64_t clock_offset_ms;  // the core's clock: steady, but near wall-clock ms (DescribeQuorum shows it)

  // start() and stop().
  std::mutex lifecycle_mutex;
  enum class Lifecycle { created, running, stopped } lifecycle = Lifecycle::created;
  std::thread thread;
  std::atomic<std::thread::id> driver_thread_id{};

  // Shared with other threads, under `mutex`.
  mutable std::mutex mutex;
  std::vector<Task> tasks;
  bool accepting = true;
  bool stop_requested = false;
  Clock::time_point stop_deadline;
  QuorumStatus published;
  std::atomic<bool> failed{false};

  // The driver thread's own.
  std::map<std::int32_t, PendingInbound> inbound;
  std::int32_t inbound_id = -1;
  std::optional<QuorumStatus> reported;
  bool resigning = false;
  int resignations_in_flight = 0;
  bool shutting_down = false;
};

Result<std::unique_ptr<QuorumDriver>> QuorumDriver::open(QuorumDriverOptions options) {
  BULWARK_TRY(check_voter_addresses(options));
  if (options.env == nullptr) options.env = storage::Env::posix();
  auto store = QuorumStore::open(options.metadata_dir, options.raft.cluster_id, options.raft.node_id,
                                 options.raft.voters, options.env);
  if (!store.ok()) return store.error();
  raft::PersistedState persisted = store->take_persisted();
  std::optional<raft::SnapshotInstall> restored;
  if (persisted.snapshot.valid()) restored = raft::SnapshotInstall{persisted.snapshot, persisted.snapshot_bytes};

  const std::int64_t clock_offset_ms = wall_clock_ms() - steady_ms();
  const std::uint64_t seed = options.seed != 0 ? options.seed : random_seed();
  auto node = raft::RaftNode::create(options.raft, std::move(persisted), seed, steady_ms() + clock_offset_ms);
  if (!node.ok()) return node.error();
  auto outbound = net::OutboundClient::create(options.outbound);
  if (!outbound.ok()) return outbound.error();
  for (const auto& voter : options.voters)
    if (voter.id != options.raft.node_id) (*outbound)->set_peer(voter.id, voter.host, voter.port);

  auto impl = std::make_unique<Impl>(std::move(options), std::move(*store), std::move(*node), std::move(*outbound),
                                     std::move(restored), clock_offset_ms);
  // Until start() makes the restored state durable: its epoch, no role or leader yet.
  impl->published = status_of(impl->node);
  impl->published.role = raft::Role::unattached;
  impl->published.leader_id = raft::kNoNode;
  return std::unique_ptr<QuorumDriver>(new QuorumDriver(std::move(impl)));
}

QuorumDriver::QuorumDriver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

QuorumDriver::~QuorumDriver() {
  if (impl_) stop();
}

Status QuorumDriver::start() {
  Impl& impl = *impl_;
  std::lock_guard lock(impl.lifecycle_mutex);
  if (impl.lifecycle != Impl::Lifecycle::created)
    return make_error(ErrorKind::invalid_argument, "quorum driver: start() after start() or stop()");
  impl.thread = std::thread([&impl] {
    impl.driver_thread_id = std::this_thread::get_id();
    impl.run();
  });
  impl.lifecycle = Impl::Lifecycle::running;
  return Status::success();
}

void QuorumDriver::stop(std::chrono::milliseconds grace) {
  Impl& impl = *impl_;
  // From a callback: the thread cannot join itself, so only ask; it stops after the current round.
  if (impl.driver_thread_id.load() == std::this_thread::get_id()) return impl.request_stop(grace);
  std::lock_guard lock(impl.lifecycle_mutex);
  switch (impl.lifecycle) {
    case Impl::Lifecycle::stopped: return;
    case Impl::Lifecycle::running:
      impl.request_stop(grace);
      impl.thread.join();
      break;
    case Impl::Lifecycle::created: impl.finish(); break;  // never ran: fail what was queued
  }
  impl.lifecycle = Impl::Lifecycle::stopped;
}

void QuorumDriver::handle_request(std::int16_t api_key, std::int16_t api_version, Bytes body, ResponseCallback respond) {
  Impl* impl = impl_.get();
  impl->submit([impl, api_key, api_version, body = std::move(body), respond = std::move(respond)](bool running) {
    if (!running) return respond(impl->not_running());
    impl->receive_request(api_key, api_version, body, respond);
  });
}

void QuorumDriver::propose(std::vector<Bytes> payloads, std::function<void(raft::ProposeResult)> done) {
  Impl* impl = impl_.get();
  impl->submit([impl, payloads = std::move(payloads), done = std::move(done)](bool running) mutable {
    if (!running || impl->failed) return done(impl->not_leader());
    done(impl->node.propose(impl->now_ms(), std::move(payloads)));
  });
}

void QuorumDriver::save_snapshot(std::int64_t end_offset, Bytes bytes, std::function<void(Status)> done) {
  Impl* impl = impl_.get();
  impl->submit([impl, end_offset, bytes = std::move(bytes), done = std::move(done)](bool running) mutable {
    if (!running) return done(impl->not_running());
    if (impl->failed) return done(impl->store_failed());
    auto id = impl->node.snapshot_id_at(end_offset);
    if (!id.ok()) return done(id.error());
    Status saved = impl->store.save_snapshot(*id, ByteView(bytes));
    if (!saved.ok()) {
      impl->fail(saved.error().message);
      return done(saved);
    }
    done(impl->node.on_snapshot_saved(impl->now_ms(), *id, std::move(bytes)));
  });
}

QuorumStatus QuorumDriver::status() const { return impl_->status(); }

void QuorumDriver::describe(std::function<void(raft::QuorumDescription)> done) {
  Impl* impl = impl_.get();
  impl->submit([impl, done = std::move(done)](bool running) {
    if (!running || impl->failed) return done(impl->no_description());
    done(impl->node.describe_quorum(impl->now_ms()));
  });
}

bool QuorumDriver::failed() const { return impl_->failed; }

}  // namespace bulwark::cluster
