// Invariant checks in the transaction coordinator. A violated invariant means the coordinator's own
// logic is wrong (never that a client sent something bad), so it stops the process with the
// invariant's name rather than return an error.
#pragma once

namespace bulwark::txn {
[[noreturn]] void invariant_failed(const char* name, const char* file, int line);
}  // namespace bulwark::txn

#define TXN_INVARIANT(condition, name)                                              \
  do {                                                                              \
    if (!(condition)) ::bulwark::txn::invariant_failed(name, __FILE__, __LINE__);   \
  } while (0)
