#include <gtest/gtest.h>

#include "raft/quorum_state.h"

namespace bulwark::raft {
namespace {

TEST(QuorumState, EncodesExactlyAsKafkaWritesIt) {
  QuorumStateData state;
  state.leader_id = 2;
  state.leader_epoch = 7;
  state.current_voters = {1, 2, 3};
  EXPECT_EQ(encode_quorum_state(state),
            R"({"clusterId":"","leaderId":2,"leaderEpoch":7,"votedId":-1,"appliedOffset":0,)"
            R"("currentVoters":[{"voterId":1},{"voterId":2},{"voterId":3}],"data_version":0})");
}

TEST(QuorumState, RoundTrips) {
  QuorumStateData state{"cluster-x", -1, 12, 3, 0, {1, 3, 5}};
  auto decoded = decode_quorum_state(encode_quorum_state(state));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, state);
}

TEST(QuorumState, DecodesKafkaFileWithOtherFieldOrderAndNullVoters) {
  auto decoded = decode_quorum_state(
      R"({"data_version":0,"votedId":2,"leaderEpoch":4,"leaderId":-1,"clusterId":"abc","appliedOffset":0,"currentVoters":null,"extra":1})"
      "\n");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->cluster_id, "abc");
  EXPECT_EQ(decoded->voted_id, 2);
  EXPECT_EQ(decoded->leader_epoch, 4);
  EXPECT_TRUE(decoded->current_voters.empty());
}

TEST(QuorumState, RejectsMalformedText) {
  const char* const bad[] = {
      "",
      "not json",
      "[1,2,3]",
      R"({"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[]})",  // no data_version
      R"({"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[],"data_version":1})",
      R"({"leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[],"data_version":0})",
      R"({"clusterId":7,"leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[],"data_version":0})",
      R"({"clusterId":"","leaderId":"1","leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[],"data_version":0})",
      R"({"clusterId":"","leaderId":1,"leaderEpoch":4294967296,"votedId":-1,"appliedOffset":0,"currentVoters":[],"data_version":0})",
      R"({"clusterId":"","leaderId":1,"leaderEpoch":1.5,"votedId":-1,"appliedOffset":0,"currentVoters":[],"data_version":0})",
      R"({"clusterId":"","leaderId":1,"leaderEpoch":1,"appliedOffset":0,"currentVoters":[],"data_version":0})",
      R"({"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":{},"data_version":0})",
      R"({"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[{"id":1}],"data_version":0})",
      R"({"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[3],"data_version":0})",
      R"({"clusterId":"","leaderId":1,"leaderEpoch":1,"votedId":-1,"appliedOffset":0,"currentVoters":[],"data_version":0)",
  };
  for (const char* text : bad) {
    auto decoded = decode_quorum_state(text);
    ASSERT_FALSE(decoded.ok()) << text;
    EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt) << text;
    EXPECT_NE(decoded.error().message.find("quorum-state"), std::string::npos);
  }
}

}  // namespace
}  // namespace bulwark::raft
