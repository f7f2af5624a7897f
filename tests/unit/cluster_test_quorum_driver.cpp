// The quorum driver over real loopback sockets: each node is a QuorumDriver plus a net::Server whose
// handler parses the Kafka request header and hands the body to QuorumDriver::handle_request, as the
// broker's controller-listener router does. Timeouts are short so elections take a fraction of a second.
#include "cluster/quorum_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/raft_wire.h"
#include "net/server.h"
#include "storage/fault_env.h"
#include "temp_dir.h"
#include "tls_test_certs.h"
#include "wire/protocol.h"

namespace bulwark::cluster {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Generous: a loaded 2-core machine.
constexpr auto kWait = 20s;

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = kWait) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string text_of(const std::vector<std::uint8_t>& b) { return std::string(b.begin(), b.end()); }

// One incarnation's state machine: the data payloads in commit order (a snapshot replaces them), and
// every committed entry as delivered.
struct Recorder {
  mutable std::mutex mutex;
  std::vector<std::string> data;
  std::vector<raft::LogEntry> committed;
  std::vector<QuorumStatus> changes;
  std::vector<raft::SnapshotId> snapshots_loaded;

  void on_committed(const std::vector<raft::LogEntry>& entries) {
    std::lock_guard lock(mutex);
    for (const auto& entry : entries) {
      committed.push_back(entry);
      if (entry.kind == raft::EntryKind::data) data.push_back(text_of(entry.payload));
    }
  }
  Status on_snapshot(const raft::SnapshotId& id, ByteView bytes) {
    std::lock_guard lock(mutex);
    data.clear();
    std::string all(bytes.begin(), bytes.end());
    for (std::size_t start = 0; start < all.size();) {
      const std::size_t end = all.find('\n', start);
      data.push_back(all.substr(start, end - start));
      start = end + 1;
    }
    snapshots_loaded.push_back(id);
    return Status::success();
  }
  std::vector<std::string> data_copy() const {
    std::lock_guard lock(mutex);
    return data;
  }
  std::vector<raft::LogEntry> committed_copy() const {
    std::lock_guard lock(mutex);
    return committed;
  }
};

std::string snapshot_bytes(const std::vector<std::string>& data) {
  std::string out;
  for (const auto& d : data) out += d + "\n";
  return out;
}

// The controller-listener router in miniature.
class DriverHandler : public net::RequestHandler {
 public:
  void attach(QuorumDriver* driver) {
    std::lock_guard lock(mutex_);
    driver_ = driver;
  }

  void on_request(net::RequestContext& ctx, Bytes frame, net::Responder responder) override {
    ByteReader reader{ByteView(frame)};
    auto header = wire::decode_request_header(reader);
    if (!header.ok()) return responder.close_connection();
    Bytes body(reader.rest().begin(), reader.rest().end());
    std::lock_guard lock(mutex_);  // held across handle_request (it only queues): attach(nullptr) waits for it
    ++requests_by_key_[header->api_key];
    subjects_.insert(ctx.peer.client_subject);
    if (driver_ == nullptr) return responder.close_connection();
    driver_->handle_request(
        header->api_key, header->api_version, std::move(body),
        [responder, key = header->api_key, version = header->api_version,
         correlation_id = header->correlation_id](Result<Bytes> result) mutable {
          if (!result.ok()) return responder.close_connection();
          const Bytes frame = encode_response_frame(WireBody{key, version, std::move(*result)}, correlation_id);
          responder.respond(Bytes(frame.begin() + 4, frame.end()));
        });
  }

  int requests(std::int16_t api_key) const {
    std::lock_guard lock(mutex_);
    auto it = requests_by_key_.find(api_key);
    return it == requests_by_key_.end() ? 0 : it->second;
  }
  std::set<std::string> subjects() const {
    std::lock_guard lock(mutex_);
    return subjects_;
  }

 private:
  mutable std::mutex mutex_;
  QuorumDriver* driver_ = nullptr;
  std::map<std::int16_t, int> requests_by_key_;
  std::set<std::string> subjects_;
};

struct Member {
  raft::NodeId id = raft::kNoNode;
  test::TempDir dir;
  DriverHandler handler;
  std::unique_ptr<net::Server> server;
  std::uint16_t port = 0;
  std::shared_ptr<Recorder> recorder;
  std::unique_ptr<QuorumDriver> driver;

  ~Member() {
    stop(0ms);
    if (server) server->stop();
  }
  void stop(std::chrono::milliseconds grace) {
    handler.attach(nullptr);
    if (driver) driver->stop(grace);
    driver.reset();
  }
  bool running() const { return driver != nullptr; }
};

class TestCluster {
 public:
  explicit TestCluster(int size, bool tls = false) : tls_(tls) {
    for (int i = 1; i <= size; ++i) {
      auto member = std::make_unique<Member>();
      member->id = i;
      net::ServerOptions server_options;
      server_options.threads = 1;
      member->server = std::make_unique<net::Server>(server_options, member->handler);
      net::ListenerSpec spec;
      spec.name = "CONTROLLER";
      spec.host = "127.0.0.1";
      if (tls) {
        auto context = tls::make_server_context(testing::server_settings(tls::ClientAuth::required));
        EXPECT_TRUE(context.ok()) << context.error().message;
        spec.protocol = net::SecurityProtocol::ssl;
        spec.tls = *context;
      }
      Status added = member->server->add_listener(spec);
      EXPECT_TRUE(added.ok()) << added.error().message;
      member->port = member->server->bound_port("CONTROLLER");
      Status started = member->server->start();
      EXPECT_TRUE(started.ok()) << started.error().message;
      voters_.push_back(i);
      members_.push_back(std::move(member));
    }
  }
  ~TestCluster() {
    for (auto& m : members_) m->stop(0ms);  // all drivers first: no resignations, no reconnect noise
  }

  Member& at(raft::NodeId id) { return *members_.at(static_cast<std::size_t>(id - 1)); }
  QuorumDriver& driver(raft::NodeId id) { return *at(id).driver; }
  Recorder& recorder(raft::NodeId id) { return *at(id).recorder; }

  QuorumDriverOptions options_for(raft::NodeId id, const std::vector<raft::NodeId>& voters) {
    QuorumDriverOptions o;
    o.raft.cluster_id = "driver-test";
    o.raft.node_id = id;
    o.raft.voters = voters;
    o.raft.election_timeout_ms = 200;
    o.raft.fetch_timeout_ms = 600;
    o.raft.election_backoff_max_ms = 200;
    o.raft.request_timeout_ms = 300;
    o.raft.fetch_backoff_ms = 10;
    o.metadata_dir = at(id).dir.path();
    for (raft::NodeId v : voters) o.voters.push_back({v, "127.0.0.1", at(v).port});
    o.outbound.client_id = "node-" + std::to_string(id);
    o.outbound.reconnect_backoff = 20ms;
    o.outbound.reconnect_backoff_max = 100ms;
    o.outbound.connect_timeout = 2000ms;
    if (tls_) {
      auto context = tls::make_client_context(testing::client_settings(testing::ClientCert::good));
      EXPECT_TRUE(context.ok()) << context.error().message;
      o.outbound.protocol = net::SecurityProtocol::ssl;
      o.outbound.tls = *context;
    }
    o.seed = static_cast<std::uint64_t>(id) * 7919 + 1;
    o.env = env;
    return o;
  }

  // Opens (or reopens, from its directory) and starts node `id`.
  Status start(raft::NodeId id, std::optional<std::vector<raft::NodeId>> voters = std::nullopt) {
    Member& m = at(id);
    auto recorder = std::make_shared<Recorder>();
    QuorumDriverOptions o = options_for(id, voters.value_or(voters_));
    o.on_committed = [recorder](const std::vector<raft::LogEntry>& entries) { recorder->on_committed(entries); };
    o.on_snapshot = [recorder](const raft::SnapshotId& sid, ByteView bytes) { return recorder->on_snapshot(sid, bytes); };
    o.on_change = [recorder](const QuorumStatus& status) {
      std::lock_guard lock(recorder->mutex);
      recorder->changes.push_back(status);
    };
    auto driver = QuorumDriver::open(std::move(o));
    if (!driver.ok()) return driver.error();
    m.recorder = recorder;
    m.driver = std::move(*driver);
    m.handler.attach(m.driver.get());
    return m.driver->start();
  }
  void start_all() {
    for (raft::NodeId id : voters_) {
      Status s = start(id);
      ASSERT_TRUE(s.ok()) << s.error().message;
    }
  }

  // The leader every running node agrees on (same leader and epoch, and it alone leads), if any.
  std::optional<raft::NodeId> agreed_leader() {
    std::optional<QuorumStatus> first;
    int leaders = 0;
    for (auto& m : members_) {
      if (!m->running()) continue;
      const QuorumStatus s = m->driver->status();
      if (s.is_leader()) ++leaders;
      if (s.leader_id == raft::kNoNode) return std::nullopt;
      if (first && (first->leader_id != s.leader_id || first->epoch != s.epoch)) return std::nullopt;
      if (!first) first = s;
    }
    if (!first || leaders != 1 || !at(first->leader_id).running() || !at(first->leader_id).driver->status().is_leader())
      return std::nullopt;
    return first->leader_id;
  }
  raft::NodeId wait_for_leader() {
    std::optional<raft::NodeId> leader;
    EXPECT_TRUE(eventually([&] { return (leader = agreed_leader()).has_value(); })) << "no agreed leader";
    return leader.value_or(raft::kNoNode);
  }

  // Every running node's data equals `expected`.
  bool all_have(const std::vector<std::string>& expected) {
    for (auto& m : members_)
      if (m->running() && m->recorder->data_copy() != expected) return false;
    return true;
  }

  const std::vector<raft::NodeId>& voters() const { return voters_; }
  storage::Env* env = nullptr;  // for the drivers opened from now on

 private:
  bool tls_;
  std::vector<raft::NodeId> voters_;
  std::vector<std::unique_ptr<Member>> members_;
};

raft::ProposeResult propose_now(QuorumDriver& driver, std::vector<Bytes> payloads) {
  auto promise = std::make_shared<std::promise<raft::ProposeResult>>();
  auto future = promise->get_future();
  driver.propose(std::move(payloads), [promise](raft::ProposeResult r) { promise->set_value(r); });
  EXPECT_EQ(future.wait_for(kWait), std::future_status::ready);
  return future.get();
}

// Proposes one payload per call, all queued at once; returns the payloads.
std::vector<std::string> propose_each(QuorumDriver& driver, const std::string& prefix, int count) {
  std::vector<std::string> payloads;
  std::vector<std::future<raft::ProposeResult>> results;
  for (int i = 0; i < count; ++i) {
    payloads.push_back(prefix + std::to_string(i));
    auto promise = std::make_shared<std::promise<raft::ProposeResult>>();
    results.push_back(promise->get_future());
    driver.propose({bytes_of(payloads.back())}, [promise](raft::ProposeResult r) { promise->set_value(r); });
  }
  std::int64_t last = -1;
  for (auto& f : results) {
    EXPECT_EQ(f.wait_for(kWait), std::future_status::ready);
    const raft::ProposeResult r = f.get();
    EXPECT_EQ(r.error, raft::ErrorCode::none);
    EXPECT_EQ(r.first_offset, r.last_offset);
    EXPECT_GT(r.first_offset, last) << "proposals append in the order they were made";
    last = r.first_offset;
  }
  return payloads;
}

raft::QuorumDescription describe_now(QuorumDriver& driver) {
  auto promise = std::make_shared<std::promise<raft::QuorumDescription>>();
  auto future = promise->get_future();
  driver.describe([promise](raft::QuorumDescription d) { promise->set_value(std::move(d)); });
  EXPECT_EQ(future.wait_for(kWait), std::future_status::ready);
  return future.get();
}

Result<Bytes> request_now(QuorumDriver& driver, std::int16_t api_key, std::int16_t version, Bytes body) {
  auto promise = std::make_shared<std::promise<Result<Bytes>>>();
  auto future = promise->get_future();
  driver.handle_request(api_key, version, std::move(body), [promise](Result<Bytes> r) { promise->set_value(std::move(r)); });
  EXPECT_EQ(future.wait_for(kWait), std::future_status::ready);
  return future.get();
}

// ---- Tests ------------------------------------------------------------------------------------------

TEST(QuorumDriver, ThreeNodesElectExactlyOneLeader) {
  TestCluster cluster(3);
  cluster.start_all();
  const raft::NodeId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, raft::kNoNode);
  const QuorumStatus leader_status = cluster.driver(leader).status();
  EXPECT_GE(leader_status.epoch, 1);
  for (raft::NodeId id : cluster.voters()) {
    const QuorumStatus s = cluster.driver(id).status();
    EXPECT_EQ(s.leader_id, leader);
    EXPECT_EQ(s.epoch, leader_status.epoch);
    EXPECT_EQ(s.role, id == leader ? raft::Role::leader : raft::Role::follower) << "node " << id;
    std::lock_guard lock(cluster.recorder(id).mutex);
    const auto& changes = cluster.recorder(id).changes;
    ASSERT_FALSE(changes.empty());
    EXPECT_EQ(changes.front().epoch, 0) << "on_change runs once at start with the restored (empty) state";
  }
  // The leader's LEADER_CHANGE entry commits everywhere.
  EXPECT_TRUE(eventually([&] {
    for (raft::NodeId id : cluster.voters())
      if (cluster.driver(id).status().high_watermark < 1) return false;
    return true;
  }));

  const raft::QuorumDescription d = describe_now(cluster.driver(leader));
  EXPECT_EQ(d.error_code, raft::ErrorCode::none);
  EXPECT_EQ(d.leader_id, leader);
  EXPECT_EQ(d.leader_epoch, leader_status.epoch);
  EXPECT_EQ(d.current_voters.size(), 3u);
  const raft::NodeId follower = leader == 1 ? 2 : 1;
  const raft::QuorumDescription f = describe_now(cluster.driver(follower));
  EXPECT_EQ(f.error_code, raft::ErrorCode::not_leader_or_follower);
  EXPECT_EQ(f.leader_id, leader);
}

TEST(QuorumDriver, ProposalsCommitInTheSameOrderOnEveryNode) {
  TestCluster cluster(3);
  cluster.start_all();
  const raft::NodeId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, raft::kNoNode);

  const raft::NodeId follower = leader == 1 ? 2 : 1;
  const raft::ProposeResult refused = propose_now(cluster.driver(follower), {bytes_of("nope")});
  EXPECT_EQ(refused.error, raft::ErrorCode::not_leader_or_follower);
  EXPECT_EQ(refused.leader.leader_id, leader);

  const std::vector<std::string> expected = propose_each(cluster.driver(leader), "entry-", 100);
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); })) << "every node commits the 100 payloads";
  // Every committed entry, LEADER_CHANGE included, is the same on every node (same offsets and epochs).
  ASSERT_TRUE(eventually([&] {
    const auto reference = cluster.recorder(leader).committed_copy();
    for (raft::NodeId id : cluster.voters())
      if (cluster.recorder(id).committed_copy() != reference) return false;
    return true;
  }));
  const auto committed = cluster.recorder(leader).committed_copy();
  for (std::size_t i = 0; i < committed.size(); ++i) EXPECT_EQ(committed[i].offset, static_cast<std::int64_t>(i));
  EXPECT_EQ(cluster.driver(leader).status().high_watermark, static_cast<std::int64_t>(committed.size()));
}

TEST(QuorumDriver, NewLeaderAfterAbruptStopAndTheRestartedNodeCatchesUp) {
  TestCluster cluster(3);
  cluster.start_all();
  const raft::NodeId first_leader = cluster.wait_for_leader();
  ASSERT_NE(first_leader, raft::kNoNode);
  const int32_t first_epoch = cluster.driver(first_leader).status().epoch;
  std::vector<std::string> expected = propose_each(cluster.driver(first_leader), "before-", 20);
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); }));

  const auto stopped_at = std::chrono::steady_clock::now();
  cluster.at(first_leader).stop(0ms);  // abrupt: no resignation
  const raft::NodeId second_leader = cluster.wait_for_leader();
  ASSERT_NE(second_leader, raft::kNoNode);
  EXPECT_NE(second_leader, first_leader);
  EXPECT_GT(cluster.driver(second_leader).status().epoch, first_epoch);
  std::cout << "failover took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stopped_at).count()
            << " ms\n";

  const std::vector<std::string> after = propose_each(cluster.driver(second_leader), "after-", 20);
  expected.insert(expected.end(), after.begin(), after.end());
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); })) << "the two survivors commit";

  Status restarted = cluster.start(first_leader);
  ASSERT_TRUE(restarted.ok()) << restarted.error().message;
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); })) << "the restarted node catches up";
  ASSERT_TRUE(eventually([&] {
    return cluster.recorder(first_leader).committed_copy() == cluster.recorder(second_leader).committed_copy();
  }));
  EXPECT_EQ(cluster.driver(first_leader).status().leader_id, second_leader);
}

TEST(QuorumDriver, RestartWithOtherVotersIsRefusedNamingBoth) {
  TestCluster cluster(3);
  cluster.start_all();
  ASSERT_NE(cluster.wait_for_leader(), raft::kNoNode);  // every node has written its quorum-state
  cluster.at(3).stop(0ms);
  Status reopened = cluster.start(3, std::vector<raft::NodeId>{1, 3});
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.error().kind, ErrorKind::invalid_argument);
  EXPECT_THAT(reopened.error().message, HasSubstr("1,2,3"));
  EXPECT_THAT(reopened.error().message, HasSubstr("controller.quorum.voters is"));
  EXPECT_THAT(reopened.error().message, HasSubstr("1,3"));
  EXPECT_FALSE(cluster.at(3).running());
}

TEST(QuorumDriver, ElectsAndCommitsOverMutualTls) {
  TestCluster cluster(3, /*tls=*/true);
  cluster.start_all();
  const raft::NodeId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, raft::kNoNode);
  const std::vector<std::string> expected = propose_each(cluster.driver(leader), "tls-", 10);
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); }));
  for (raft::NodeId id : cluster.voters()) {
    const auto subjects = cluster.at(id).handler.subjects();
    ASSERT_EQ(subjects.size(), 1u) << "every request came over a connection with a client certificate";
    EXPECT_THAT(*subjects.begin(), HasSubstr("CN=admin-1"));
  }
}

TEST(QuorumDriver, GracefulStopOfTheLeaderSendsEndQuorumEpoch) {
  TestCluster cluster(3);
  cluster.start_all();
  const raft::NodeId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, raft::kNoNode);
  const int32_t epoch = cluster.driver(leader).status().epoch;
  constexpr std::int16_t kEndQuorumEpoch = 54;
  cluster.at(leader).stop(2000ms);
  for (raft::NodeId id : cluster.voters()) {
    if (id == leader) continue;
    EXPECT_GE(cluster.at(id).handler.requests(kEndQuorumEpoch), 1) << "node " << id;
  }
  const raft::NodeId successor = cluster.wait_for_leader();
  EXPECT_NE(successor, leader);
  EXPECT_GT(cluster.driver(successor).status().epoch, epoch);
}

TEST(QuorumDriver, OneVoterElectsItselfCommitsAndRestartsFromItsSnapshot) {
  TestCluster cluster(1);
  ASSERT_TRUE(cluster.start(1, std::vector<raft::NodeId>{1}).ok());
  ASSERT_TRUE(eventually([&] { return cluster.driver(1).status().is_leader(); }));
  const std::vector<std::string> expected = propose_each(cluster.driver(1), "solo-", 10);
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); }));

  // Snapshot everything committed, then two more entries after it.
  const std::int64_t end = cluster.driver(1).status().high_watermark;
  ASSERT_TRUE(eventually([&] { return cluster.recorder(1).committed_copy().size() == static_cast<std::size_t>(end); }));
  auto saved = std::make_shared<std::promise<Status>>();
  auto saved_future = saved->get_future();
  cluster.driver(1).save_snapshot(end, bytes_of(snapshot_bytes(cluster.recorder(1).data_copy())),
                                  [saved](Status s) { saved->set_value(s); });
  ASSERT_EQ(saved_future.wait_for(kWait), std::future_status::ready);
  const Status saved_status = saved_future.get();
  ASSERT_TRUE(saved_status.ok()) << saved_status.error().message;
  std::vector<std::string> all = expected;
  for (const auto& p : propose_each(cluster.driver(1), "later-", 2)) all.push_back(p);
  ASSERT_TRUE(eventually([&] { return cluster.all_have(all); }));

  cluster.at(1).stop(500ms);
  ASSERT_TRUE(cluster.start(1, std::vector<raft::NodeId>{1}).ok());
  ASSERT_TRUE(eventually([&] { return cluster.all_have(all); })) << "snapshot loaded at start, then the entries after it";
  std::lock_guard lock(cluster.recorder(1).mutex);
  ASSERT_EQ(cluster.recorder(1).snapshots_loaded.size(), 1u);
  EXPECT_EQ(cluster.recorder(1).snapshots_loaded[0].end_offset, end);
  ASSERT_FALSE(cluster.recorder(1).committed.empty());
  EXPECT_EQ(cluster.recorder(1).committed.front().offset, end) << "nothing below the snapshot is delivered again";
}

TEST(QuorumDriver, LaggingFollowerInstallsTheLeadersSnapshot) {
  TestCluster cluster(3);
  cluster.start_all();
  const raft::NodeId leader = cluster.wait_for_leader();
  ASSERT_NE(leader, raft::kNoNode);
  const raft::NodeId lagging = leader == 3 ? 2 : 3;
  cluster.at(lagging).stop(0ms);
  std::vector<std::string> expected = propose_each(cluster.driver(leader), "early-", 30);
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); }));

  const std::int64_t end = cluster.driver(leader).status().high_watermark;
  ASSERT_TRUE(eventually([&] { return cluster.recorder(leader).committed_copy().size() == static_cast<std::size_t>(end); }));
  auto saved = std::make_shared<std::promise<Status>>();
  auto saved_future = saved->get_future();
  cluster.driver(leader).save_snapshot(end, bytes_of(snapshot_bytes(cluster.recorder(leader).data_copy())),
                                       [saved](Status s) { saved->set_value(s); });
  ASSERT_EQ(saved_future.wait_for(kWait), std::future_status::ready);
  ASSERT_TRUE(saved_future.get().ok());
  for (const auto& p : propose_each(cluster.driver(leader), "late-", 5)) expected.push_back(p);
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); }));

  ASSERT_TRUE(cluster.start(lagging).ok());
  ASSERT_TRUE(eventually([&] { return cluster.all_have(expected); })) << "snapshot from the leader, then the rest";
  std::lock_guard lock(cluster.recorder(lagging).mutex);
  ASSERT_EQ(cluster.recorder(lagging).snapshots_loaded.size(), 1u);
  EXPECT_EQ(cluster.recorder(lagging).snapshots_loaded[0].end_offset, end);
}

TEST(QuorumDriver, InboundRequestsThatCannotBeServed) {
  TestCluster cluster(1);
  ASSERT_TRUE(cluster.start(1, std::vector<raft::NodeId>{1}).ok());
  ASSERT_TRUE(eventually([&] { return cluster.driver(1).status().is_leader(); }));
  QuorumDriver& driver = cluster.driver(1);

  // Bytes that do not decode, and a version the adapter does not speak: an error (close the connection).
  auto garbage = request_now(driver, 52, 0, Bytes{0xff, 0x01});
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().kind, ErrorKind::corrupt);
  auto too_new = request_now(driver, 52, 7, Bytes{});
  ASSERT_FALSE(too_new.ok());
  EXPECT_EQ(too_new.error().kind, ErrorKind::unsupported);

  // Well-formed but for another partition: Kafka's INVALID_REQUEST.
  msg::VoteRequest vote = to_wire(raft::VoteRequest{"driver-test", 5, 2, 0, 0});
  vote.topics.at(0).partitions.at(0).partition_index = 3;
  ByteWriter w;
  vote.encode(w, kVoteVersion);
  auto refused = request_now(driver, 52, kVoteVersion, w.take());
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  auto decoded = decode_response(52, kVoteVersion, ByteView(*refused));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<raft::VoteResponse>(*decoded).error_code, raft::ErrorCode::invalid_request);

  // A Vote from a node outside the voter set: the core's answer, encoded.
  auto outsider = encode_request(raft::Message(raft::VoteRequest{"driver-test", 99, 7, 0, 0}));
  ASSERT_TRUE(outsider.ok());
  auto answer = request_now(driver, 52, kVoteVersion, outsider->body);
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  auto vote_answer = decode_response(52, kVoteVersion, ByteView(*answer));
  ASSERT_TRUE(vote_answer.ok());
  EXPECT_EQ(std::get<raft::VoteResponse>(*vote_answer).error_code, raft::ErrorCode::inconsistent_voter_set);
  EXPECT_FALSE(std::get<raft::VoteResponse>(*vote_answer).vote_granted);

  // DescribeQuorum through the request path.
  ByteWriter dq;
  describe_quorum_request().encode(dq, kDescribeQuorumVersion);
  auto described = request_now(driver, 55, kDescribeQuorumVersion, dq.take());
  ASSERT_TRUE(described.ok()) << described.error().message;
  msg::DescribeQuorumResponse response;
  ByteReader r{ByteView(*described)};
  ASSERT_TRUE(response.decode(r, kDescribeQuorumVersion));
  auto description = from_wire(response);
  ASSERT_TRUE(description.ok()) << description.error().message;
  EXPECT_EQ(description->error_code, raft::ErrorCode::none);
  EXPECT_EQ(description->leader_id, 1);
  ASSERT_EQ(description->current_voters.size(), 1u);
}

TEST(QuorumDriver, CallsAfterStopFailWithoutHanging) {
  TestCluster cluster(1);
  ASSERT_TRUE(cluster.start(1, std::vector<raft::NodeId>{1}).ok());
  ASSERT_TRUE(eventually([&] { return cluster.driver(1).status().is_leader(); }));
  QuorumDriver& driver = cluster.driver(1);
  driver.stop(0ms);
  driver.stop(0ms);  // idempotent
  EXPECT_EQ(propose_now(driver, {bytes_of("late")}).error, raft::ErrorCode::not_leader_or_follower);
  auto answer = request_now(driver, 52, kVoteVersion, Bytes{});
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().kind, ErrorKind::unavailable);
  EXPECT_EQ(describe_now(driver).error_code, raft::ErrorCode::not_leader_or_follower);
  EXPECT_FALSE(driver.start().ok());
}

TEST(QuorumDriver, AFailedFsyncTakesTheNodeOutOfTheQuorum) {
  storage::FaultEnv env;
  TestCluster cluster(1);
  cluster.env = &env;
  ASSERT_TRUE(cluster.start(1, std::vector<raft::NodeId>{1}).ok());
  QuorumDriver& driver = cluster.driver(1);
  ASSERT_TRUE(eventually([&] { return driver.status().is_leader() && driver.status().high_watermark >= 1; }));
  EXPECT_FALSE(driver.failed());
  env.fail_sync(1, EIO);
  EXPECT_EQ(propose_now(driver, {bytes_of("lost")}).error, raft::ErrorCode::none) << "appended, not yet durable";
  ASSERT_TRUE(eventually([&] { return driver.failed() && !driver.status().is_leader(); }));
  EXPECT_FALSE(driver.status().is_leader());
  EXPECT_EQ(driver.status().leader_id, raft::kNoNode);
  {
    std::lock_guard lock(cluster.recorder(1).mutex);
    EXPECT_EQ(cluster.recorder(1).changes.back().role, raft::Role::unattached) << "on_change says it no longer leads";
    EXPECT_TRUE(cluster.recorder(1).data.empty()) << "nothing that failed to become durable was committed";
  }
  EXPECT_EQ(propose_now(driver, {bytes_of("later")}).error, raft::ErrorCode::not_leader_or_follower);
  auto answer = request_now(driver, 52, kVoteVersion, Bytes{});
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().kind, ErrorKind::unavailable);
  cluster.at(1).stop(0ms);
}

TEST(QuorumDriver, OpenRefusesVotersWithoutAddresses) {
  test::TempDir dir;
  QuorumDriverOptions o;
  o.raft.cluster_id = "driver-test";
  o.raft.node_id = 1;
  o.raft.voters = {1, 2};
  o.metadata_dir = dir.path();
  o.voters = {{1, "127.0.0.1", 1}};
  auto driver = QuorumDriver::open(o);
  ASSERT_FALSE(driver.ok());
  EXPECT_THAT(driver.error().message, HasSubstr("voter 2"));
}

}  // namespace
}  // namespace bulwark::cluster
