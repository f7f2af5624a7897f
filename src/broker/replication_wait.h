// Waiting until the ISR has appends this broker made as leader (Kafka's DelayedProduce): Produce with
// acks=all, WriteTxnMarkers, and the group and transaction coordinators' writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "broker/errors.h"
#include "net/server.h"
#include "replication/partition.h"

namespace bulwark::broker {

struct BrokerState;

// Each append settles once: replicated (KafkaError::none) when the high watermark covers it,
// NOT_LEADER_OR_FOLLOWER when this broker no longer leads the partition in the epoch of the append,
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR has it but has shrunk below min_insync meanwhile, or
// REQUEST_TIMED_OUT. The waiting happens on `loop`: the timer and the append notifications post there.
class ReplicationWait : public std::enable_shared_from_this<ReplicationWait> {
 public:
  using Settled = std::function<void(std::size_t index, KafkaError error)>;

  ReplicationWait(BrokerState& state, net::EventLoop& loop) : state_(state), loop_(loop) {}

  // Right after the append: the partition's leader epoch now is the one the append must stay in.
  // Returns the append's index for `settled`.
  std::size_t add(std::shared_ptr<replication::Partition> partition, std::int64_t required_offset,
                  std::int32_t min_insync = 0);
  bool empty() const { return pending_.empty(); }

  // From any thread, once. `settled` is called for each append, then `finished`, on the calling
  // thread when everything has settled already, else on the loop's.
  void start(std::chrono::milliseconds timeout, Settled settled, std::function<void()> finished);

 private:
  struct Pending {
    std::shared_ptr<replication::Partition> partition;
    std::int32_t leader_epoch;
    std::int64_t required_offset;  // the high watermark that covers the append
    std::int32_t min_insync;
    bool done = false;
  };

  void wait(std::chrono::milliseconds timeout);
  bool check();  // settles what can be settled; true when nothing is left waiting
  void settle(std::size_t index, KafkaError error);
  void try_complete(bool timed_out);
  void finish();

  BrokerState& state_;
  net::EventLoop& loop_;
  std::vector<Pending> pending_;
  Settled settled_;
  std::function<void()> finished_;
  bool finished_called_ = false;
  std::uint64_t watch_id_ = 0;
  net::TimerId timer_id_ = 0;
};

// One append: done(true) once it is replicated, done(false) when the leadership goes, the ISR shrank
// below min_insync (0: any ISR) or `timeout` passes; on `loop`, or at once on the calling thread when
// the answer is known already.
void when_replicated(BrokerState& state, net::EventLoop& loop, std::shared_ptr<replication::Partition> partition,
                     std::int64_t offset, std::chrono::milliseconds timeout, std::function<void(bool)> done);

}  // namespace bulwark::broker
