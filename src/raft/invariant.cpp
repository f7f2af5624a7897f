#include "raft/invariant.h"

#include <cstdio>
#include <cstdlib>

namespace bulwark::raft {
namespace {

[[noreturn]] void print_and_abort(const char* name, const char* file, int line) {
  std::fprintf(stderr, "raft invariant violated: %s (%s:%d)\n", name, file, line);
  std::abort();
}

InvariantHandler current_handler = &print_and_abort;

}  // namespace

InvariantHandler set_invariant_handler(InvariantHandler handler) {
  InvariantHandler previous = current_handler;
  current_handler = handler ? handler : &print_and_abort;
  return previous;
}

void invariant_failed(const char* name, const char* file, int line) {
  current_handler(name, file, line);
  // A handler that returns would let a broken core run on.
  print_and_abort(name, file, line);
}

}  // namespace bulwark::raft
