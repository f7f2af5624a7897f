#include "groups/consumer/assignors.h"

#include <algorithm>

namespace bulwark::groups::consumer {
namespace {

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

bool subscribes(const AssignmentSpec& spec, const std::string& member, const std::string& topic) {
  auto it = spec.subscriptions.find(member);
  return it != spec.subscriptions.end() && it->second.count(topic) > 0;
}

// Topic -> its subscribers, for the topics that exist.
std::map<std::string, std::vector<std::string>> subscribers_by_topic(const AssignmentSpec& spec) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [member, topics] : spec.subscriptions)
    for (const auto& topic : topics)
      if (auto count = spec.partition_counts.find(topic); count != spec.partition_counts.end() && count->second > 0)
        out[topic].push_back(member);  // members come sorted by id (map order)
  return out;
}

GroupAssignment empty_assignment(const AssignmentSpec& spec) {
  GroupAssignment out;
  for (const auto& [member, topics] : spec.subscriptions) out[member];
  return out;
}

// The least loaded of `candidates` (ties: the smallest member id).
const std::string* least_loaded(const std::vector<std::string>& candidates, const std::map<std::string, std::size_t>& load) {
  const std::string* best = nullptr;
  for (const auto& m : candidates)
    if (!best || load.at(m) < load.at(*best)) best = &m;
  return best;
}

}  // namespace

GroupAssignment assign_uniform(const AssignmentSpec& spec) {
  const auto subscribers = subscribers_by_topic(spec);
  std::map<TopicPartition, std::string> owner;
  std::map<std::string, std::size_t> load;
  for (const auto& [member, topics] : spec.subscriptions) load[member] = 0;
  std::size_t total = 0;
  std::set<std::string> active;  // members subscribed to at least one existing topic
  for (const auto& [topic, members] : subscribers) {
    total += static_cast<std::size_t>(spec.partition_counts.at(topic));
    active.insert(members.begin(), members.end());
  }
  if (active.empty()) return empty_assignment(spec);
  const std::size_t cap = (total + active.size() - 1) / active.size();

  // 1. Stickiness: a member keeps the current partitions it may still have, up to the even share.
  for (const auto& [member, partitions] : spec.current) {
    if (!load.count(member)) continue;
    for (const auto& [topic, ids] : partitions) {
      auto count = spec.partition_counts.find(topic);
      if (count == spec.partition_counts.end() || !subscribes(spec, member, topic)) continue;
      for (auto p : ids) {
        TopicPartition tp{topic, p};
        if (p < 0 || p >= count->second || owner.count(tp) || load[member] >= cap) continue;
        owner[tp] = member;
        ++load[member];
      }
    }
  }
  // 2. The rest, most constrained topics first, each to its least loaded subscriber.
  std::vector<const std::pair<const std::string, std::vector<std::string>>*> topics;
  for (const auto& entry : subscribers) topics.push_back(&entry);
  std::stable_sort(topics.begin(), topics.end(), [](auto* a, auto* b) { return a->second.size() < b->second.size(); });
  for (const auto* entry : topics)
    for (std::int32_t p = 0; p < spec.partition_counts.at(entry->first); ++p) {
      TopicPartition tp{entry->first, p};
      if (owner.count(tp)) continue;
      const auto& chosen = *least_loaded(entry->second, load);
      owner[tp] = chosen;
      ++load[chosen];
    }
  // 3. Balance: move a partition while some subscriber of it has at least two fewer partitions than
  // its owner. Each move lowers the sum of squared loads, so this ends.
  for (bool moved = true; moved;) {
    moved = false;
    for (auto& [tp, member] : owner) {
      const auto& target = *least_loaded(subscribers.at(tp.topic), load);
      if (load[member] > load[target] + 1) {
        --load[member];
        ++load[target];
        member = target;
        moved = true;
      }
    }
  }
  auto out = empty_assignment(spec);
  for (const auto& [tp, member] : owner) out[member][tp.topic].insert(tp.partition);
  return out;
}

GroupAssignment assign_range(const AssignmentSpec& spec) {
  auto out = empty_assignment(spec);
  for (const auto& [topic, members] : subscribers_by_topic(spec)) {
    const auto partitions = spec.partition_counts.at(topic);
    const auto count = static_cast<std::int32_t>(members.size());
    const std::int32_t share = partitions / count, extra = partitions % count;
    std::int32_t next = 0;
    for (std::int32_t i = 0; i < count; ++i) {
      const std::int32_t n = share + (i < extra ? 1 : 0);
      for (std::int32_t p = next; p < next + n; ++p) out[members[static_cast<std::size_t>(i)]][topic].insert(p);
      next += n;
    }
  }
  return out;
}

const std::vector<std::string>& assignor_names() {
  static const std::vector<std::string> names{"uniform", "range"};
  return names;
}

bool is_known_assignor(const std::string& name) {
  const auto& names = assignor_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

GroupAssignment assign(const std::string& assignor, const AssignmentSpec& spec) {
  return assignor == "range" ? assign_range(spec) : assign_uniform(spec);
}

}  // namespace bulwark::groups::consumer
