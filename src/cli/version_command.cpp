#include <cstdio>

#include <openssl/crypto.h>

#include "cli/command.h"

namespace {

void add_version_command(CLI::App& app) {
  auto* command = app.add_subcommand("version", "Print Bulwark's version and the OpenSSL it uses");
  bulwark::cli::set_action(command, [] {
    std::printf("bulwark 0.1.0 (%s)\n", OpenSSL_version(OPENSSL_VERSION));
    return 0;
  });
}

BULWARK_REGISTER_COMMAND(add_version_command);

}  // namespace
