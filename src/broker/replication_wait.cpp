#include "broker/replication_wait.h"

#include "broker/state.h"

namespace bulwark::broker {

std::size_t ReplicationWait::add(std::shared_ptr<replication::Partition> partition, std::int64_t required_offset,
                                 std::int32_t min_insync) {
  const auto epoch = partition->leader_epoch();
  pending_.push_back(Pending{std::move(partition), epoch, required_offset, min_insync});
  return pending_.size() - 1;
}

void ReplicationWait::start(std::chrono::milliseconds timeout, Settled settled, std::function<void()> finished) {
  settled_ = std::move(settled);
  finished_ = std::move(finished);
  if (check()) return finish();
  loop_.post([self = shared_from_this(), timeout] { self->wait(timeout); });
}

void ReplicationWait::wait(std::chrono::milliseconds timeout) {
  std::vector<storage::TopicPartition> partitions;
  for (const auto& p : pending_) partitions.push_back(p.partition->topic_partition());
  std::weak_ptr<ReplicationWait> weak = shared_from_this();
  watch_id_ = state_.notifier.watch(partitions, [weak] {
    if (auto self = weak.lock()) self->loop_.post([self] { self->try_complete(false); });
  });
  auto self = shared_from_this();
  timer_id_ = loop_.run_after(std::max(timeout, std::chrono::milliseconds(0)), [self] { self->try_complete(true); });
  if (check()) try_complete(false);  // the ISR caught up before the watch was in place
}

bool ReplicationWait::check() {
  bool all = true;
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    const auto& p = pending_[i];
    if (p.done) continue;
    // Another epoch, even of this broker's leadership, may have truncated the append away.
    const bool leads = p.partition->role() == replication::Role::leader && p.partition->leader_epoch() == p.leader_epoch &&
                       state_.replicas->get(p.partition->topic_partition()) == p.partition;
    if (!leads) {
      settle(i, KafkaError::not_leader_or_follower);
    } else if (p.partition->high_watermark() >= p.required_offset) {
      // As Kafka: written to every ISR member, but the ISR may have shrunk below min.insync.replicas.
      const bool too_few = p.partition->isr().size() < static_cast<std::size_t>(p.min_insync);
      settle(i, too_few ? KafkaError::not_enough_replicas_after_append : KafkaError::none);
    } else {
      all = false;
    }
  }
  return all;
}

void ReplicationWait::settle(std::size_t index, KafkaError error) {
  pending_[index].done = true;
  settled_(index, error);
}

void ReplicationWait::try_complete(bool timed_out) {
  if (finished_called_) return;
  if (!check()) {
    if (!timed_out) return;
    for (std::size_t i = 0; i < pending_.size(); ++i)
      if (!pending_[i].done) settle(i, KafkaError::request_timed_out);
  } else if (!timed_out) {
    loop_.cancel(timer_id_);
  }
  finish();
}

void ReplicationWait::finish() {
  finished_called_ = true;
  if (watch_id_) state_.notifier.unwatch(watch_id_);
  auto finished = std::move(finished_);
  settled_ = nullptr;  // what the callbacks hold goes with them
  finished();
}

void when_replicated(BrokerState& state, net::EventLoop& loop, std::shared_ptr<replication::Partition> partition,
                     std::int64_t offset, std::chrono::milliseconds timeout, std::function<void(bool)> done) {
  auto wait = std::make_shared<ReplicationWait>(state, loop);
  wait->add(std::move(partition), offset);
  auto replicated = std::make_shared<bool>(false);
  wait->start(timeout, [replicated](std::size_t, KafkaError error) { *replicated = error == KafkaError::none; },
              [replicated, done = std::move(done)] { done(*replicated); });
}

}  // namespace bulwark::broker
