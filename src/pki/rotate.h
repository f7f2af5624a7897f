// `pki rotate-ca`: replaces the CA with overlapping trust, in Strimzi's three phases but on files, so
// that running brokers follow by hot reload and no client loses its connection:
//   1. trust   a new intermediate (and a new root with new_root) is made in DIR/ca/next; every export's
//              truststore trusts both roots;
//   2. reissue the new CA becomes DIR/ca (the old moves to DIR/ca/previous); every certificate is
//              reissued from it (new keys) and every export written again; both roots stay trusted and
//              the CRL carries both intermediates' lists;
//   3. retire  the old CA is dropped from the truststores and moved to DIR/ca/retired-<time>.
// Between the phases every node must have reloaded: a broker refuses material its peers could not
// verify (docs/tls.md), so skipping ahead is refused there, not silently broken.
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"
#include "pki/pki.h"

namespace bulwark::pki {

struct RotateOptions {
  fs::path dir = "pki";
  int phase = 0;          // 1, 2 or 3; 0 = the next one
  bool new_root = false;  // phase 1: a new root as well (otherwise the root in force signs the new intermediate)
  std::string password;   // of the password-protected exports, which are written again
  std::string ca_key_password;
  int root_days = 3650;
  int intermediate_days = 1825;
};

// The phase a rotation of DIR is ready for: 1 when none is under way, else 2 or 3.
Result<int> next_rotation_phase(const fs::path& dir);
Result<Outcome> rotate_ca(const RotateOptions& options);

}  // namespace bulwark::pki
