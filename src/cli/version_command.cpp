#include <cstdio>

#include <openssl/crypto.h>

#include "cli/command.h"

std::string bulwark::cli::version_text() { return std::string("bulwark 0.1.0 (") + OpenSSL_version(OPENSSL_VERSION) + ")"; }

namespace {

void add_version_command(CLI::App& app) {
  auto* command = app.add_subcommand("version", "Print Bulwark's version and the OpenSSL it uses");
  bulwark::cli::set_action(command, [] {
    std::printf("%s\n", bulwark::cli::version_text().c_str());
    return 0;
  });
}

BULWARK_REGISTER_COMMAND(add_version_command);

}  // namespace
