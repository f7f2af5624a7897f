// The replicated state machine the simulator runs on every node. An interface, so the real metadata
// image can be plugged in later; for now a small deterministic key-value map with a hash chain over
// every applied entry, which makes "same entries in the same order" cheap to compare.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "raft/messages.h"

namespace bulwark::sim {

class ReplicatedStateMachine {
 public:
  virtual ~ReplicatedStateMachine() = default;
  // Entries arrive in offset order, each exactly once per incarnation; false if `entry` is not the
  // next offset.
  virtual bool apply(const raft::LogEntry& entry) = 0;
  virtual std::vector<uint8_t> snapshot() const = 0;
  virtual bool load(const std::vector<uint8_t>& bytes) = 0;
  virtual uint64_t digest() const = 0;
  virtual int64_t applied_end() const = 0;  // the next offset it expects
};

// Data payloads are 8 bytes: a big-endian key and value (uint32 each); other payloads only feed the
// hash chain.
class HashChainMachine final : public ReplicatedStateMachine {
 public:
  bool apply(const raft::LogEntry& entry) override;
  std::vector<uint8_t> snapshot() const override;
  bool load(const std::vector<uint8_t>& bytes) override;
  uint64_t digest() const override { return chain_; }
  int64_t applied_end() const override { return next_offset_; }

  static std::vector<uint8_t> make_payload(uint32_t key, uint32_t value);

 private:
  int64_t next_offset_ = 0;
  uint64_t chain_ = 0x6a09e667f3bcc908ULL;
  std::map<uint32_t, uint32_t> values_;
};

}  // namespace bulwark::sim
