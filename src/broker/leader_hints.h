// The brokers a listener's clients can reach, and KIP-951's leader hints: a Produce (v10+) or Fetch
// (v16+) answer that says NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH also names the current leader
// and its endpoint, so the client can go there without asking Metadata first.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "broker/errors.h"
#include "cluster/image.h"

namespace bulwark::broker {

// Every unfenced registered broker with an endpoint on `listener` (as Kafka lists them: a fenced broker,
// this one included, is not offered to clients). Broker is any of the generated endpoint structs.
template <class Broker>
std::vector<Broker> brokers_for(const cluster::MetadataImage& image, const std::string& listener) {
  std::vector<Broker> out;
  for (const auto& b : image.endpoints_for(listener)) {
    Broker broker;
    if constexpr (requires { broker.node_id; }) broker.node_id = b.broker_id;
    else broker.broker_id = b.broker_id;
    broker.host = b.endpoint->host;
    broker.port = b.endpoint->port;
    broker.rack = b.rack ? *b.rack : std::nullopt;
    out.push_back(std::move(broker));
  }
  return out;
}

// Fills `partition.current_leader` when its error is one a new leader explains, and adds that leader's
// endpoint on `listener` to `endpoints` once.
template <class PartitionOut, class Endpoint>
void add_leader_hint(const cluster::MetadataImage& image, const std::string& listener, const std::string& topic,
                     std::int32_t index, PartitionOut& partition, std::vector<Endpoint>& endpoints) {
  if (partition.error_code != code(KafkaError::not_leader_or_follower) &&
      partition.error_code != code(KafkaError::fenced_leader_epoch))
    return;
  const auto* state = image.partition(topic, index);
  if (!state || !state->has_leader()) return;
  partition.current_leader.leader_id = state->leader;
  partition.current_leader.leader_epoch = state->leader_epoch;
  const auto known = [&](const Endpoint& e) { return e.node_id == state->leader; };
  if (std::any_of(endpoints.begin(), endpoints.end(), known)) return;
  for (auto& broker : brokers_for<Endpoint>(image, listener))
    if (known(broker)) endpoints.push_back(std::move(broker));
}

}  // namespace bulwark::broker
