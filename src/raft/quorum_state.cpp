#include "raft/quorum_state.h"

#include <limits>
#include <nlohmann/json.hpp>

namespace bulwark::raft {
namespace {

using Json = nlohmann::json;

Error corrupt(const std::string& what) { return make_error(ErrorKind::corrupt, "quorum-state: " + what); }

// Reads an integer field that must fit in [low, high].
Result<int64_t> integer_field(const Json& object, const char* name, int64_t low, int64_t high) {
  auto it = object.find(name);
  if (it == object.end()) return corrupt(std::string("missing field \"") + name + "\"");
  if (!it->is_number_integer()) return corrupt(std::string("field \"") + name + "\" is not an integer");
  int64_t value = 0;
  if (it->is_number_unsigned()) {
    auto u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return corrupt(std::string("field \"") + name + "\" is out of range");
    value = static_cast<int64_t>(u);
  } else {
    value = it->get<int64_t>();
  }
  if (value < low || value > high) return corrupt(std::string("field \"") + name + "\" is out of range");
  return value;
}

constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

Result<std::vector<NodeId>> voters_field(const Json& object) {
  std::vector<NodeId> voters;
  auto it = object.find("currentVoters");
  if (it == object.end() || it->is_null()) return voters;
  if (!it->is_array()) return corrupt("field \"currentVoters\" is not an array");
  for (const Json& voter : *it) {
    if (!voter.is_object()) return corrupt("a currentVoters element is not an object");
    auto id = integer_field(voter, "voterId", kInt32Min, kInt32Max);
    if (!id) return id.error();
    voters.push_back(static_cast<NodeId>(*id));
  }
  return voters;
}

}  // namespace

std::string encode_quorum_state(const QuorumStateData& state) {
  nlohmann::ordered_json out;
  out["clusterId"] = state.cluster_id;
  out["leaderId"] = state.leader_id;
  out["leaderEpoch"] = state.leader_epoch;
  out["votedId"] = state.voted_id;
  out["appliedOffset"] = state.applied_offset;
  auto voters = nlohmann::ordered_json::array();
  for (NodeId id : state.current_voters) voters.push_back({{"voterId", id}});
  out["currentVoters"] = voters;
  out["data_version"] = 0;
  return out.dump();
}

Result<QuorumStateData> decode_quorum_state(std::string_view text) {
  Json root = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return corrupt("not valid JSON");
  if (!root.is_object()) return corrupt("not a JSON object");

  auto version = integer_field(root, "data_version", kInt32Min, kInt32Max);
  if (!version) return version.error();
  if (*version != 0) return corrupt("unsupported data_version " + std::to_string(*version));

  QuorumStateData state;
  auto cluster = root.find("clusterId");
  if (cluster == root.end()) return corrupt("missing field \"clusterId\"");
  if (!cluster->is_string()) return corrupt("field \"clusterId\" is not a string");
  state.cluster_id = cluster->get<std::string>();

  auto leader = integer_field(root, "leaderId", kInt32Min, kInt32Max);
  if (!leader) return leader.error();
  auto epoch = integer_field(root, "leaderEpoch", kInt32Min, kInt32Max);
  if (!epoch) return epoch.error();
  auto voted = integer_field(root, "votedId", kInt32Min, kInt32Max);
  if (!voted) return voted.error();
  auto applied = integer_field(root, "appliedOffset", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  if (!applied) return applied.error();
  auto voters = voters_field(root);
  if (!voters) return voters.error();

  state.leader_id = static_cast<NodeId>(*leader);
  state.leader_epoch = static_cast<int32_t>(*epoch);
  state.voted_id = static_cast<NodeId>(*voted);
  state.applied_offset = *applied;
  state.current_voters = std::move(*voters);
  return state;
}

}  // namespace bulwark::raft
