#include <openssl/ssl.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/edit_distance.h"
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

namespace {

std::string command_list(const CLI::App& app) {
  std::string out;
  for (const auto* sub : app.get_subcommands({})) out += (out.empty() ? "" : ", ") + sub->get_name();
  return out;
}

// CLI11 answers an unknown or missing command with "A subcommand is required". Says instead which
// word it did not know (and the nearest command), or which commands a group has; true when it did.
bool explain_command_error(const CLI::App& root, int argc, char** argv) {
  const CLI::App* app = &root;
  std::string path = "bulwark";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.starts_with("-")) break;  // options: CLI11's own messages name them
    if (app->get_subcommands({}).empty()) return false;  // a command's own arguments
    const CLI::App* next = nullptr;
    std::vector<std::string> names;
    for (const auto* sub : app->get_subcommands({})) {
      names.push_back(sub->get_name());
      if (sub->get_name() == word) next = sub;
    }
    if (!next) {
      auto meant = bulwark::nearest_word(word, names);
      std::fprintf(stderr, "%s: unknown command '%s'%s\nCommands: %s\nRun '%s --help' for more information.\n",
                   path.c_str(), word.c_str(), meant ? (" (did you mean '" + *meant + "'?)").c_str() : "",
                   command_list(*app).c_str(), path.c_str());
      return true;
    }
    app = next;
    path += " " + word;
  }
  if (app->get_subcommands({}).empty()) return false;
  std::fprintf(stderr, "%s: a command is required: %s\nRun '%s --help' for more information.\n", path.c_str(),
               command_list(*app).c_str(), path.c_str());
  return true;
}

}  // namespace

}  // namespace bulwark::cli

int main(int argc, char** argv) {
  OPENSSL_init_ssl(0, nullptr);
  CLI::App app{"bulwark: a Kafka-compatible broker cluster, encrypted and authenticated by default"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  app.set_version_flag("--version", bulwark::cli::version_text());
  app.footer("Exit codes: 0 success; 1 the command failed (its message says why); 2 a usage error (an unknown\n"
             "command or option, a missing or bad argument).");
  for (auto add : bulwark::cli::registered_commands()) add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own exit code (see set_action)
  } catch (const CLI::ParseError& e) {
    // Help prints and exits 0; every usage error exits 2, as command-line tools conventionally do.
    if (e.get_exit_code() != 0 && bulwark::cli::explain_command_error(app, argc, argv)) return 2;
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}
