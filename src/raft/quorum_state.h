// The `quorum-state` file of a KRaft node (<metadata dir>/__cluster_metadata-0/quorum-state): one JSON
// line, exactly as Kafka 3.7 writes it (QuorumStateData v0 plus "data_version":0). Only the text is
// handled here; the driver writes it to a temp file, fsyncs and renames.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "raft/messages.h"

namespace bulwark::raft {

struct QuorumStateData {
  std::string cluster_id;
  NodeId leader_id = kNoNode;
  int32_t leader_epoch = kNoEpoch;
  NodeId voted_id = kNoNode;
  int64_t applied_offset = 0;
  std::vector<NodeId> current_voters;
  friend bool operator==(const QuorumStateData&, const QuorumStateData&) = default;
};

// {"clusterId":"","leaderId":1,"leaderEpoch":2,"votedId":-1,"appliedOffset":0,
//  "currentVoters":[{"voterId":1},...],"data_version":0}  (no trailing newline)
std::string encode_quorum_state(const QuorumStateData& state);

// Accepts what Kafka accepts: the fields above in any order, unknown fields ignored, currentVoters
// null or absent meaning none. Rejects non-JSON, a missing or non-zero data_version, missing or
// mistyped fields and out-of-range numbers with ErrorKind::corrupt.
Result<QuorumStateData> decode_quorum_state(std::string_view text);

}  // namespace bulwark::raft
