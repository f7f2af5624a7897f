// Wall-clock time as Kafka counts it: milliseconds since the Unix epoch (record timestamps, lag times,
// session deadlines that travel between nodes). Code that a simulator must drive takes time as an
// argument instead.
#pragma once

#include <chrono>
#include <cstdint>

namespace bulwark {

inline std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace bulwark
