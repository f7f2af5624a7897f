#include <openssl/ssl.h>

#include <vector>

#include "cli/command.h"

namespace bulwark::cli {
namespace {
std::vector<AddCommand>& registered_commands() {
  static std::vector<AddCommand> commands;
  return commands;
}
}  // namespace

CommandRegistration::CommandRegistration(AddCommand add) { registered_commands().push_back(add); }

CLI::App* command_group(CLI::App& app, const std::string& name, const std::string& description) {
  for (auto* existing : app.get_subcommands([](CLI::App*) { return true; }))
    if (existing->get_name() == name) return existing;
  auto* group = app.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

void set_action(CLI::App* command, std::function<int()> action) {
  command->callback([action = std::move(action)] {
    if (int code = action(); code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace bulwark::cli

int main(int argc, char** argv) {
  OPENSSL_init_ssl(0, nullptr);
  CLI::App app{"bulwark: a Kafka-compatible broker cluster, encrypted and authenticated by default"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  for (auto add : bulwark::cli::registered_commands()) add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own exit code (see set_action)
  } catch (const CLI::ParseError& e) {
    // Help prints and exits 0; every usage error exits 2, as command-line tools conventionally do.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}
