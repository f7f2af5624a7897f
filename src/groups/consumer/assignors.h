// KIP-848's server-side assignors: the coordinator computes every member's target assignment from the
// members' subscriptions and the subscribed topics' partition counts. Pure functions, no clock, no I/O.
//
// Both assignors give every partition of a subscribed topic to exactly one member subscribed to it.
// "uniform" (the default, as Kafka's UniformAssignor) balances the partition counts over the whole
// group and keeps a member's current partitions where that stays balanced (fewer revocations);
// "range" (Kafka's RangeAssignor) gives each member a contiguous range of each topic it subscribes to,
// sorted by member id, the first members of a topic getting one partition more.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace bulwark::groups::consumer {

// Partitions by topic name.
using Partitions = std::map<std::string, std::set<std::int32_t>>;

struct AssignmentSpec {
  std::map<std::string, std::set<std::string>> subscriptions;  // member id -> subscribed topic names
  std::map<std::string, std::int32_t> partition_counts;        // topic -> partitions (existing topics only)
  std::map<std::string, Partitions> current;                   // member id -> its current target (stickiness)
};

// member id -> target partitions; every member of the spec has an entry (possibly empty).
using GroupAssignment = std::map<std::string, Partitions>;

GroupAssignment assign_uniform(const AssignmentSpec& spec);
GroupAssignment assign_range(const AssignmentSpec& spec);

// The assignors by name ("uniform", "range"); false when the name is not one of them.
bool is_known_assignor(const std::string& name);
GroupAssignment assign(const std::string& assignor, const AssignmentSpec& spec);
const std::vector<std::string>& assignor_names();

}  // namespace bulwark::groups::consumer
