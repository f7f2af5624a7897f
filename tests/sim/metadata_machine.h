// The real metadata state machine under the simulator: committed entries are KIP-631 records applied
// with cluster::MetadataDelta to a MetadataImage, exactly as a node's MetadataLoader applies them, and
// the leader runs the real controller decisions (cluster/controller.h) on a working image to choose
// what to propose, as the ControllerService does: active once its epoch's LeaderChange entry is
// applied, proposals landing at offsets it predicts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster/image.h"
#include "raft/random.h"
#include "sim/state_machine.h"

namespace bulwark::sim {

class MetadataMachine final : public ReplicatedStateMachine {
 public:
  // eager_activation: a deliberately broken controller that acts as soon as its node leads, on the
  // image it has applied, without waiting for its epoch's LeaderChange (earlier leaders' uncommitted
  // records are not in that image). The checker must catch it.
  explicit MetadataMachine(raft::NodeId node_id, bool eager_activation = false)
      : node_id_(node_id), eager_activation_(eager_activation) {}

  bool apply(const raft::LogEntry& entry) override;
  std::vector<uint8_t> snapshot() const override;
  bool load(const std::vector<uint8_t>& bytes) override;
  uint64_t digest() const override { return image_->digest(); }
  int64_t applied_end() const override { return image_->offset() + 1; }

  // Why the last committed record did not apply (empty when every one did): with a correct controller
  // a committed record always fits the image.
  const std::string& apply_failure() const { return apply_failure_; }

  // The controller's next decision as this node (the leader of `epoch`, whose log ends at
  // `log_end_offset`) would take it; nullopt when it is not the active controller of that epoch or the
  // decision changes nothing. The records are framed payloads; mark_proposed() records where they went.
  std::optional<std::vector<std::vector<uint8_t>>> next_proposal(int32_t epoch, int64_t log_end_offset, raft::Random& rng);
  // False when the core put the proposal elsewhere than the controller predicted.
  bool mark_proposed(int64_t first_offset);

 private:
  raft::NodeId node_id_;
  bool eager_activation_ = false;
  cluster::ImagePtr image_ = cluster::MetadataImage::empty();
  std::string apply_failure_;
  // The active controller: its epoch, working image and where its next proposal lands.
  int32_t active_epoch_ = -1;
  cluster::ImagePtr working_;
  int64_t next_offset_ = 0;
  std::vector<cluster::AnyRecord> pending_;  // the decision awaiting mark_proposed
};

}  // namespace bulwark::sim
