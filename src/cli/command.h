// How a `bulwark <verb>` command plugs into the binary: each cli/*_command.cpp registers a function
// that adds its CLI11 subcommand, so commands live beside each other without a central list to edit.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace bulwark::cli {

using AddCommand = void (*)(CLI::App& app);

struct CommandRegistration {
  explicit CommandRegistration(AddCommand add);
};

// The command group `name` (e.g. "pki"), created on first use, so several files can add verbs to it.
CLI::App* command_group(CLI::App& app, const std::string& name, const std::string& description);

// Runs `action` when the subcommand is chosen; its return value becomes the process exit code.
void set_action(CLI::App* command, std::function<int()> action);

// "bulwark <version> (<OpenSSL version>)": `bulwark version` and `bulwark --version`.
std::string version_text();

}  // namespace bulwark::cli

#define BULWARK_CONCAT_INNER(a, b) a##b
#define BULWARK_CONCAT(a, b) BULWARK_CONCAT_INNER(a, b)
#define BULWARK_REGISTER_COMMAND(add_function) \
  static ::bulwark::cli::CommandRegistration BULWARK_CONCAT(bulwark_command_, __LINE__)(add_function)
