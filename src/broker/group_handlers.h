// What the consumer-group handlers share (handlers_groups.cpp, handlers_txn_offsets.cpp): Kafka's codes
// for the coordinator's outcomes and finding a group's coordinator; offsets wait for the ISR with
// when_replicated (replication_wait.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "broker/group_partitions.h"
#include "broker/replication_wait.h"
#include "broker/state.h"
#include "groups/coordinator.h"

namespace bulwark::broker {

// Kafka's numbers for the coordinator's outcomes (the group codes are not in errors.h's table).
std::int16_t kafka_code(groups::GroupError error);

// The coordinator of `group_id` if this broker is it, else the error to answer.
GroupCoordinators::Lookup coordinator_for(const BrokerState& state, const std::string& group_id);

}  // namespace bulwark::broker
