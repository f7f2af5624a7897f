// bulwark storage random-uuid | format | info, as kafka-storage.sh has them (KRaft only).
#include <cstdio>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "cli/command.h"
#include "config/config.h"
#include "config/meta_properties.h"

namespace {

using namespace bulwark::config;

void print_error(const std::string& message) { std::fprintf(stderr, "%s\n", message.c_str()); }

int random_uuid_action() {
  std::printf("%s\n", random_uuid().c_str());
  return 0;
}

int format_action(const std::string& cluster_id, const std::string& config_path, bool ignore_formatted,
                  const std::vector<std::string>& add_scram) {
  auto config = load_broker_config(config_path);
  if (!config) {
    print_error("cannot format: the configuration is not valid:\n" + config.error().message);
    return 1;
  }
  std::vector<bulwark::security::sasl::ScramSpec> scram;
  for (const auto& text : add_scram) {
    auto spec = bulwark::security::sasl::parse_add_scram(text);
    if (!spec) {
      print_error("cannot format: --add-scram: " + spec.error().message);
      return 2;
    }
    scram.push_back(std::move(*spec));
  }
  auto outcome = format_storage(*config, cluster_id, ignore_formatted);
  if (!outcome) {
    print_error("cannot format: " + outcome.error().message);
    return 1;
  }
  for (const auto& dir : outcome->skipped) {
    std::printf("%s is already formatted for cluster %s; skipped (--ignore-formatted)\n", dir.c_str(),
                cluster_id.c_str());
  }
  for (const auto& dir : outcome->formatted) {
    std::printf("Formatted %s (cluster.id=%s, node.id=%d)\n", dir.c_str(), cluster_id.c_str(), config->node_id);
  }
  if (outcome->formatted.empty()) std::printf("All of the log directories are already formatted.\n");
  if (!scram.empty()) {
    if (auto stored = bulwark::broker::add_scram_credentials(*config, scram); !stored) {
      print_error("cannot store the SCRAM credentials: " + stored.error().message);
      return 1;
    }
    for (const auto& spec : scram)
      std::printf("Added the %s credential of user %s\n", std::string(bulwark::security::sasl::name_of(spec.mechanism)).c_str(),
                  spec.username.c_str());
  }
  return 0;
}

int info_action(const std::string& config_path) {
  auto config = load_broker_config(config_path);
  if (!config) {
    print_error("the configuration is not valid:\n" + config.error().message);
    return 1;
  }
  bool problems = false;
  for (const auto& dir : storage_directories(*config)) {
    auto st = inspect_directory(dir);
    switch (st.state) {
      case DirectoryState::missing:
        std::printf("%s: missing (not formatted)\n", dir.c_str());
        problems = true;
        break;
      case DirectoryState::not_formatted:
        std::printf("%s: exists, not formatted (no meta.properties)\n", dir.c_str());
        problems = true;
        break;
      case DirectoryState::broken:
        std::printf("%s: unusable: %s\n", dir.c_str(), st.problem.c_str());
        problems = true;
        break;
      case DirectoryState::formatted:
        std::printf("%s: formatted (cluster.id=%s, node.id=%d, directory.id=%s, version=%d)\n", dir.c_str(),
                    st.meta->cluster_id.c_str(), st.meta->node_id.value_or(-1),
                    st.meta->directory_id.empty() ? "(none)" : st.meta->directory_id.c_str(), st.meta->version);
        break;
    }
  }
  if (!problems) {
    if (auto check = check_storage(*config); !check) {
      std::printf("Found problem: %s\n", check.error().message.c_str());
      problems = true;
    }
  }
  return problems ? 1 : 0;
}

void add_storage_commands(CLI::App& app) {
  auto* group = bulwark::cli::command_group(app, "storage", "Format and inspect a node's log directories (KRaft)");

  auto* uuid = group->add_subcommand("random-uuid", "Print a new Kafka cluster id (22 characters, base64url)");
  bulwark::cli::set_action(uuid, random_uuid_action);

  struct FormatOptions {
    std::string cluster_id;
    std::string config;
    bool ignore_formatted = false;
    std::vector<std::string> add_scram;
  };
  auto format_options = std::make_shared<FormatOptions>();
  auto* format = group->add_subcommand("format", "Write meta.properties into each of log.dirs and metadata.log.dir");
  format->add_option("-t,--cluster-id", format_options->cluster_id, "Cluster id (from `bulwark storage random-uuid`)")
      ->required();
  format->add_option("-c,--config", format_options->config, "The node's server.properties")->required();
  format->add_flag("-g,--ignore-formatted", format_options->ignore_formatted,
                   "Skip directories already formatted for this cluster instead of failing");
  format->add_option("-S,--add-scram", format_options->add_scram,
                     "A SCRAM credential to start with, as kafka-storage.sh takes it: "
                     "'SCRAM-SHA-256=[name=alice,password=alice-secret]' (repeatable)");
  bulwark::cli::set_action(format, [format_options] {
    return format_action(format_options->cluster_id, format_options->config, format_options->ignore_formatted,
                         format_options->add_scram);
  });

  auto info_config = std::make_shared<std::string>();
  auto* info = group->add_subcommand("info", "Show whether each log directory is formatted, and for which cluster");
  info->add_option("-c,--config", *info_config, "The node's server.properties")->required();
  bulwark::cli::set_action(info, [info_config] { return info_action(*info_config); });
}

BULWARK_REGISTER_COMMAND(add_storage_commands);

}  // namespace
