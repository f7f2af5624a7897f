// The core's only source of randomness (election timeouts, backoffs): a small seeded generator owned
// by each node, so a run is a pure function of its seed and inputs.
#pragma once

#include <cstdint>

namespace bulwark::raft {

// splitmix64: tiny, fast, statistically fine for timeouts and for driving a simulator.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound); 0 when bound <= 0.
  int64_t below(int64_t bound) { return bound <= 0 ? 0 : static_cast<int64_t>(next() % static_cast<uint64_t>(bound)); }

  // True with probability numerator / denominator.
  bool chance(uint64_t numerator, uint64_t denominator) { return next() % denominator < numerator; }

 private:
  uint64_t state_;
};

}  // namespace bulwark::raft
