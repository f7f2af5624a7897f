// Invariant checks inside the consensus core. A violated invariant means the core (or its driver) is
// wrong, never that the input was bad, so there is no error value to return: the handler reports the
// invariant's name and stops. Production keeps the default (print, abort); the simulator installs a
// handler that records the failure against the seed it is running.
#pragma once

namespace bulwark::raft {

using InvariantHandler = void (*)(const char* name, const char* file, int line);

// Installs a handler and returns the previous one. The handler must not return (abort, exit or throw).
InvariantHandler set_invariant_handler(InvariantHandler handler);

[[noreturn]] void invariant_failed(const char* name, const char* file, int line);

}  // namespace bulwark::raft

#define RAFT_INVARIANT(condition, name)                                   \
  do {                                                                    \
    if (!(condition)) ::bulwark::raft::invariant_failed(name, __FILE__, __LINE__); \
  } while (0)
