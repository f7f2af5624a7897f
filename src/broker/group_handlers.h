// What the consumer-group handlers share (handlers_groups.cpp, handlers_txn_offsets.cpp): Kafka's codes
// for the coordinator's outcomes, finding a group's coordinator, and waiting for offsets to replicate.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "broker/group_partitions.h"
#include "broker/state.h"
#include "groups/coordinator.h"

namespace bulwark::broker {

// Kafka's numbers for the coordinator's outcomes (the group codes are not in errors.h's table).
std::int16_t kafka_code(groups::GroupError error);

// The coordinator of `group_id` if this broker is it, else the error to answer.
GroupCoordinators::Lookup coordinator_for(const BrokerState& state, const std::string& group_id);

// Calls done(true) once `partition`'s high watermark reaches `offset` while this broker still leads
// it at the same epoch, done(false) when the leadership goes or `timeout` passes; on `loop` (or at once,
// on the calling thread, when the answer is known already).
void when_replicated(BrokerState& state, net::EventLoop& loop, std::shared_ptr<replication::Partition> partition,
                     std::int64_t offset, std::chrono::milliseconds timeout, std::function<void(bool)> done);

}  // namespace bulwark::broker
