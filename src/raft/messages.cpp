#include "raft/messages.h"

namespace bulwark::raft {

const char* error_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::none: return "NONE";
    case ErrorCode::offset_out_of_range: return "OFFSET_OUT_OF_RANGE";
    case ErrorCode::not_leader_or_follower: return "NOT_LEADER_OR_FOLLOWER";
    case ErrorCode::broker_not_available: return "BROKER_NOT_AVAILABLE";
    case ErrorCode::invalid_request: return "INVALID_REQUEST";
    case ErrorCode::fenced_leader_epoch: return "FENCED_LEADER_EPOCH";
    case ErrorCode::unknown_leader_epoch: return "UNKNOWN_LEADER_EPOCH";
    case ErrorCode::inconsistent_voter_set: return "INCONSISTENT_VOTER_SET";
    case ErrorCode::snapshot_not_found: return "SNAPSHOT_NOT_FOUND";
    case ErrorCode::position_out_of_range: return "POSITION_OUT_OF_RANGE";
    case ErrorCode::inconsistent_cluster_id: return "INCONSISTENT_CLUSTER_ID";
  }
  return "UNKNOWN";
}

const char* message_name(const Message& message) {
  static const char* const names[] = {"VoteRequest",           "VoteResponse",          "BeginQuorumEpochRequest",
                                      "BeginQuorumEpochResponse", "EndQuorumEpochRequest", "EndQuorumEpochResponse",
                                      "FetchRequest",          "FetchResponse",         "FetchSnapshotRequest",
                                      "FetchSnapshotResponse"};
  return names[message.index()];
}

namespace {

void put_int32(std::vector<uint8_t>& out, int32_t value) {
  auto u = static_cast<uint32_t>(value);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(u >> shift));
}

bool get_int32(const std::vector<uint8_t>& in, size_t& pos, int32_t& value) {
  if (pos > in.size() || in.size() - pos < 4) return false;
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u = (u << 8) | in[pos++];
  value = static_cast<int32_t>(u);
  return true;
}

void put_list(std::vector<uint8_t>& out, const std::vector<NodeId>& ids) {
  put_int32(out, static_cast<int32_t>(ids.size()));
  for (NodeId id : ids) put_int32(out, id);
}

bool get_list(const std::vector<uint8_t>& in, size_t& pos, std::vector<NodeId>& ids) {
  int32_t count = 0;
  if (!get_int32(in, pos, count) || count < 0 || static_cast<size_t>(count) > (in.size() - pos) / 4) return false;
  ids.resize(static_cast<size_t>(count));
  for (auto& id : ids)
    if (!get_int32(in, pos, id)) return false;
  return true;
}

}  // namespace

// Version 0 of LeaderChangeMessage as plain big-endian fields; the wire adapter re-encodes it as the
// real control record.
std::vector<uint8_t> encode_leader_change(const LeaderChange& change) {
  std::vector<uint8_t> out;
  put_int32(out, change.leader_id);
  put_list(out, change.voters);
  put_list(out, change.granting_voters);
  return out;
}

bool decode_leader_change(const std::vector<uint8_t>& bytes, LeaderChange& out) {
  size_t pos = 0;
  return get_int32(bytes, pos, out.leader_id) && get_list(bytes, pos, out.voters) &&
         get_list(bytes, pos, out.granting_voters) && pos == bytes.size();
}

}  // namespace bulwark::raft
