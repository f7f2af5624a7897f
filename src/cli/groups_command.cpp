// `bulwark groups`: kafka-consumer-groups.sh's options and tables, spoken to any Kafka-compatible
// broker. One command with action flags as Kafka has it (`groups --describe --group G`); the action
// may also be given as a word (`groups describe --group G`). The rules, tables and round trips are in
// src/client (client/groups_admin.h).
//
// Exit codes: 0 done, 1 the broker or the connection failed (or a group does not exist, or is active
// when a reset needs it idle), 2 usage errors.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/cluster.h"
#include "client/groups_admin.h"

namespace {

using namespace bulwark;

using cli::fail;
using cli::kBrokerError;
using cli::kUsageError;

enum class Action { list, describe, remove, reset, delete_offsets };

struct GroupsFlags {
  client::ConnectionFlags connection;
  std::string action_word;
  bool list = false, describe = false, remove = false, reset = false, delete_offsets = false;
  std::vector<std::string> groups;
  bool all_groups = false;
  std::vector<std::string> topics;
  bool all_topics = false;
  bool members = false, verbose = false, offsets = false;
  std::string state;
  bool to_earliest = false, to_latest = false, to_current = false;
  std::int64_t to_offset = 0, shift_by = 0, timeout_ms = 0;
  std::string to_datetime, by_duration;
  bool dry_run = false, execute = false;
  CLI::Option* state_option = nullptr;
  CLI::Option* to_offset_option = nullptr;
  CLI::Option* shift_by_option = nullptr;
  CLI::Option* to_datetime_option = nullptr;
  CLI::Option* by_duration_option = nullptr;
  CLI::Option* timeout_option = nullptr;
};

// A connection failure: `code` says whose fault it was (settings: usage; the broker: 1).
int fail_with(const Error& error, int code) {
  std::fprintf(stderr, "error: %s\n", error.message.c_str());
  return code;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return kUsageError;
}

void print(const std::string& text) { std::fputs(text.c_str(), stdout); }

Result<Action> chosen_action(const GroupsFlags& f) {
  std::vector<Action> chosen;
  if (f.list || f.action_word == "list") chosen.push_back(Action::list);
  if (f.describe || f.action_word == "describe") chosen.push_back(Action::describe);
  if (f.remove || f.action_word == "delete") chosen.push_back(Action::remove);
  if (f.reset || f.action_word == "reset-offsets") chosen.push_back(Action::reset);
  if (f.delete_offsets || f.action_word == "delete-offsets") chosen.push_back(Action::delete_offsets);
  if (chosen.size() != 1) {
    return make_error(ErrorKind::invalid_argument,
                      "the command must include exactly one action: --list, --describe, --delete, --reset-offsets or "
                      "--delete-offsets (or the word list, describe, delete, reset-offsets or delete-offsets)");
  }
  return chosen.front();
}

Result<std::unique_ptr<client::ClusterClient>> connect(const GroupsFlags& f, int& exit_code) {
  auto settings = cli::admin_settings(f.connection);
  if (!settings) {
    exit_code = kUsageError;
    return settings.error();
  }
  if (f.timeout_option->count() > 0) settings->timeout = std::chrono::milliseconds(f.timeout_ms);
  auto cluster = client::ClusterClient::connect(*settings);
  if (!cluster) exit_code = kBrokerError;
  return cluster;
}

// --group G... or every consumer group (--all-groups), sorted as Kafka prints them.
Result<std::vector<std::string>> chosen_groups(client::ClusterClient& cluster, const GroupsFlags& f) {
  std::set<std::string> ids(f.groups.begin(), f.groups.end());
  if (f.all_groups) {
    auto listed = client::list_groups(cluster);
    if (!listed) return listed.error();
    for (const auto& g : *listed) ids.insert(g.group_id);
  }
  return std::vector<std::string>(ids.begin(), ids.end());
}

Status check_group_choice(const GroupsFlags& f, const char* action) {
  if (f.groups.empty() && !f.all_groups)
    return make_error(ErrorKind::invalid_argument, fmt::format("{} needs --group or --all-groups", action));
  if (!f.groups.empty() && f.all_groups)
    return make_error(ErrorKind::invalid_argument, fmt::format("{} takes --group or --all-groups, not both", action));
  return Status::success();
}

Result<std::vector<client::TopicSelection>> topic_selections(const GroupsFlags& f) {
  std::vector<client::TopicSelection> out;
  for (const auto& t : f.topics) {
    auto s = client::parse_topic_arg(t);
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

// ---- --list --------------------------------------------------------------------------------------

int run_list(const GroupsFlags& f) {
  std::vector<std::string> states;
  if (!f.state.empty()) {
    auto parsed = client::parse_group_states(f.state);
    if (!parsed) return fail(parsed.error());
    states = std::move(*parsed);
  }
  int code = 0;
  auto cluster = connect(f, code);
  if (!cluster) return fail_with(cluster.error(), code);
  auto groups = client::list_groups(**cluster, states);
  if (!groups) return fail(groups.error());
  print(client::render_group_list(*groups, f.state_option->count() > 0));
  return 0;
}

// ---- --describe ----------------------------------------------------------------------------------

Result<std::string> offsets_view(client::ClusterClient& cluster, const client::GroupDescription& group) {
  auto committed = client::committed_offsets(cluster, group.group_id);
  if (!committed) return committed.error();
  std::set<client::TopicPartition> partitions;
  for (const auto& m : group.members) partitions.insert(m.assignment.begin(), m.assignment.end());
  for (const auto& entry : *committed) partitions.insert(entry.first);
  BULWARK_TRY(cluster.refresh_metadata());
  auto log_end = client::list_offsets(cluster, {partitions.begin(), partitions.end()}, -1);
  if (!log_end) return log_end.error();
  return client::render_offsets(client::offset_rows(group, *committed, *log_end));
}

int run_describe(const GroupsFlags& f) {
  if (auto ok = check_group_choice(f, "--describe"); !ok) return fail(ok.error());
  int code = 0;
  auto cluster = connect(f, code);
  if (!cluster) return fail_with(cluster.error(), code);
  auto ids = chosen_groups(**cluster, f);
  if (!ids) return fail(ids.error());
  // Kafka: the offsets view unless --members or --state alone ask for another.
  const bool state_view = f.state_option->count() > 0;
  const bool offsets = f.offsets || (!f.members && !state_view);
  for (const auto& id : *ids) {
    auto group = client::describe_group(**cluster, id);
    if (!group) {
      std::fprintf(stderr, "error: %s\n", group.error().message.c_str());
      code = kBrokerError;
      continue;
    }
    if (auto note = client::group_state_note(*group)) std::fprintf(stderr, "%s\n", note->c_str());
    if (!client::group_exists(*group)) {
      code = kBrokerError;
      continue;
    }
    if (offsets) {
      auto view = offsets_view(**cluster, *group);
      if (!view) {
        std::fprintf(stderr, "error: %s\n", view.error().message.c_str());
        code = kBrokerError;
        continue;
      }
      print(*view);
    } else if (f.members) {
      print(client::render_members(*group, f.verbose));
    } else {
      print(client::render_state(*group));
    }
  }
  return code;
}

// ---- --reset-offsets -----------------------------------------------------------------------------

Result<client::ResetSpec> reset_spec(const GroupsFlags& f) {
  using K = client::ResetSpec::Kind;
  std::vector<client::ResetSpec> chosen;
  if (f.to_earliest) chosen.push_back({K::earliest, 0});
  if (f.to_latest) chosen.push_back({K::latest, 0});
  if (f.to_current) chosen.push_back({K::current, 0});
  if (f.to_offset_option->count() > 0) chosen.push_back({K::to_offset, f.to_offset});
  if (f.shift_by_option->count() > 0) chosen.push_back({K::shift_by, f.shift_by});
  if (f.to_datetime_option->count() > 0) {
    auto ts = client::parse_datetime(f.to_datetime);
    if (!ts) return ts.error();
    chosen.push_back({K::to_datetime, *ts});
  }
  if (f.by_duration_option->count() > 0) {
    auto ms = client::parse_duration(f.by_duration);
    if (!ms) return ms.error();
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    chosen.push_back({K::by_duration, now - *ms});
  }
  if (chosen.size() != 1) {
    return make_error(ErrorKind::invalid_argument,
                      "--reset-offsets needs exactly one of --to-earliest, --to-latest, --to-current, --to-offset, "
                      "--shift-by, --to-datetime, --by-duration");
  }
  return chosen.front();
}

Status check_reset_flags(const GroupsFlags& f) {
  BULWARK_TRY(check_group_choice(f, "--reset-offsets"));
  if (f.topics.empty() == !f.all_topics)
    return make_error(ErrorKind::invalid_argument, "--reset-offsets needs one scope: --topic or --all-topics");
  if (f.dry_run && f.execute)
    return make_error(ErrorKind::invalid_argument, "--dry-run and --execute exclude each other");
  return Status::success();
}

// The new offset of every partition in scope for one idle group.
Result<std::map<client::TopicPartition, std::int64_t>> plan_reset(client::ClusterClient& cluster,
                                                                  const std::string& group, const GroupsFlags& f,
                                                                  const client::ResetSpec& spec,
                                                                  const std::vector<client::TopicSelection>& topics) {
  auto committed = client::committed_offsets(cluster, group);
  if (!committed) return committed.error();
  std::vector<client::TopicPartition> partitions;
  if (f.all_topics) {
    for (const auto& entry : *committed) partitions.push_back(entry.first);
    BULWARK_TRY(cluster.refresh_metadata());
  } else {
    auto resolved = client::resolve_partitions(cluster, topics);
    if (!resolved) return resolved.error();
    partitions = std::move(*resolved);
  }
  auto starts = client::list_offsets(cluster, partitions, -2);
  if (!starts) return starts.error();
  auto ends = client::list_offsets(cluster, partitions, -1);
  if (!ends) return ends.error();
  std::map<client::TopicPartition, std::int64_t> by_time;
  if (auto ts = client::reset_timestamp(spec)) {
    auto found = client::list_offsets(cluster, partitions, *ts);
    if (!found) return found.error();
    by_time = std::move(*found);
  }
  auto known = [](const std::map<client::TopicPartition, std::int64_t>& m, const client::TopicPartition& tp) {
    auto it = m.find(tp);
    return it == m.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
  };
  std::map<client::TopicPartition, std::int64_t> plan;
  for (const auto& tp : partitions) {
    client::PartitionOffsets o{known(*committed, tp), known(*starts, tp), known(*ends, tp), known(by_time, tp)};
    if (o.by_time && *o.by_time < 0) {
      std::fprintf(stderr, "Warn: Partition %d from topic %s is empty. Falling back to latest known offset.\n",
                   tp.partition, tp.topic.c_str());
    }
    auto offset = client::new_offset(spec, tp, o);
    if (!offset) return offset.error();
    plan[tp] = *offset;
  }
  return plan;
}

int run_reset(const GroupsFlags& f) {
  if (auto ok = check_reset_flags(f); !ok) return fail(ok.error());
  auto spec = reset_spec(f);
  if (!spec) return fail(spec.error());
  auto topics = topic_selections(f);
  if (!topics) return fail(topics.error());
  if (!f.dry_run && !f.execute)
    std::fprintf(stderr, "WARN: No action will be performed as the --execute option is missing. Add --dry-run to "
                         "say so explicitly.\n");
  int code = 0;
  auto cluster = connect(f, code);
  if (!cluster) return fail_with(cluster.error(), code);
  auto ids = chosen_groups(**cluster, f);
  if (!ids) return fail(ids.error());
  std::map<std::string, std::map<client::TopicPartition, std::int64_t>> plans;
  for (const auto& id : *ids) {
    auto group = client::describe_group(**cluster, id);
    if (!group) return fail(group.error());
    if (!client::group_inactive(*group)) {
      std::fprintf(stderr,
                   "Error: Assignments can only be reset if the group '%s' is inactive, but the current state is %s.\n",
                   id.c_str(), group->state.c_str());
      code = kBrokerError;
      continue;
    }
    auto plan = plan_reset(**cluster, id, f, *spec, *topics);
    if (!plan) return fail(plan.error());
    if (f.execute) {
      auto errors = client::commit_offsets(**cluster, id, *plan);
      if (!errors) return fail(errors.error());
      for (const auto& entry : *errors) {
        if (entry.second == 0) continue;
        std::fprintf(stderr, "error: the offset of %s was not reset: %s\n", client::to_string(entry.first).c_str(),
                     client::explain_group_error(entry.second, id, "commit offsets of", (*cluster)->any().identity())
                         .c_str());
        code = kBrokerError;
      }
    }
    plans[id] = std::move(*plan);
  }
  print(client::render_reset(plans));
  return code;
}

// ---- --delete, --delete-offsets ------------------------------------------------------------------

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out;
}

int run_delete(const GroupsFlags& f) {
  if (auto ok = check_group_choice(f, "--delete"); !ok) return fail(ok.error());
  int code = 0;
  auto cluster = connect(f, code);
  if (!cluster) return fail_with(cluster.error(), code);
  auto ids = chosen_groups(**cluster, f);
  if (!ids) return fail(ids.error());
  if (ids->empty()) {
    std::printf("There are no consumer groups to delete.\n");
    return 0;
  }
  auto results = client::delete_groups(**cluster, *ids);
  if (!results) return fail(results.error());
  std::vector<std::string> deleted, failed;
  for (const auto& id : *ids) {
    auto it = results->find(id);
    (it != results->end() && it->second == 0 ? deleted : failed).push_back(id);
  }
  if (failed.empty()) {
    std::printf("Deletion of requested consumer groups (%s) was successful.\n", quoted_list(deleted).c_str());
    return 0;
  }
  std::fprintf(stderr, "Error: Deletion of some consumer groups failed:\n");
  for (const auto& id : failed) {
    auto it = results->find(id);
    const std::int16_t error = it == results->end() ? -1 : it->second;
    std::fprintf(stderr, "* Group '%s' could not be deleted due to: %s\n", id.c_str(),
                 client::explain_group_error(error, id, "delete", (*cluster)->any().identity()).c_str());
  }
  if (!deleted.empty())
    std::printf("These consumer groups were deleted successfully: %s\n", quoted_list(deleted).c_str());
  return kBrokerError;
}

int run_delete_offsets(const GroupsFlags& f) {
  if (f.groups.size() != 1 || f.all_groups) return usage_error("--delete-offsets takes exactly one --group");
  if (f.topics.empty()) return usage_error("--delete-offsets needs --topic");
  auto topics = topic_selections(f);
  if (!topics) return fail(topics.error());
  int code = 0;
  auto cluster = connect(f, code);
  if (!cluster) return fail_with(cluster.error(), code);
  auto partitions = client::resolve_partitions(**cluster, *topics);
  if (!partitions) return fail(partitions.error());
  const std::string& group = f.groups.front();
  auto result = client::delete_offsets(**cluster, group, *partitions);
  if (!result) return fail(result.error());
  bool failed = result->error_code != 0;
  if (!failed) {
    for (const auto& entry : result->partitions) failed = failed || entry.second != 0;
  }
  if (!failed) {
    std::printf("Request succeeded for deleting offsets from group %s.\n", group.c_str());
  } else if (result->error_code == 0) {
    std::fprintf(stderr, "Error: Encountered some partition-level error, see the follow-up details.\n");
  } else {
    std::fprintf(stderr, "Error: %s\n",
                 client::explain_group_error(result->error_code, group, "delete offsets of",
                                             (*cluster)->any().identity())
                     .c_str());
  }
  if (!result->partitions.empty()) print(client::render_offset_deletion(result->partitions));
  return failed ? kBrokerError : 0;
}

// ---- The command ---------------------------------------------------------------------------------

int run(const GroupsFlags& f) {
  auto action = chosen_action(f);
  if (!action) return fail(action.error());
  switch (*action) {
    case Action::list:
      return run_list(f);
    case Action::describe:
      return run_describe(f);
    case Action::remove:
      return run_delete(f);
    case Action::reset:
      return run_reset(f);
    case Action::delete_offsets:
      return run_delete_offsets(f);
  }
  return kUsageError;
}

void add_action_flags(CLI::App* cmd, GroupsFlags& f) {
  cmd->add_option("action", f.action_word, "The action as a word instead of a flag")
      ->check(CLI::IsMember({"list", "describe", "delete", "reset-offsets", "delete-offsets"}));
  cmd->add_flag("--list", f.list, "List every consumer group (ListGroups on each broker)");
  cmd->add_flag("--describe", f.describe, "Describe groups: committed offsets, log end and lag (default), "
                                          "--members or --state");
  cmd->add_flag("--delete", f.remove, "Delete groups that have no active members");
  cmd->add_flag("--reset-offsets", f.reset, "Reset a group's committed offsets (the group must be inactive)");
  cmd->add_flag("--delete-offsets", f.delete_offsets, "Delete a group's committed offsets of --topic");
}

void add_selection_flags(CLI::App* cmd, GroupsFlags& f) {
  cmd->add_option("--group", f.groups, "Consumer group (repeatable)");
  cmd->add_flag("--all-groups", f.all_groups, "Every consumer group (--describe, --delete, --reset-offsets)");
  cmd->add_option("--topic", f.topics, "Topic, or topic:0,1,2 for some partitions (repeatable)");
  cmd->add_flag("--all-topics", f.all_topics, "Every topic the group has offsets for (--reset-offsets)");
  cmd->add_flag("--members", f.members, "With --describe: the members and their partitions");
  cmd->add_flag("--verbose", f.verbose, "With --describe --members: each member's assigned partitions");
  cmd->add_flag("--offsets", f.offsets, "With --describe: the offsets view (the default)");
  f.state_option = cmd->add_option("--state", f.state,
                                   "With --describe: the group's state and coordinator. With --list: show states, "
                                   "and only those given (e.g. Stable,Empty)")
                       ->expected(0, 1);
  f.timeout_option = cmd->add_option("--timeout", f.timeout_ms, "Milliseconds to wait for each connection and reply");
}

void add_reset_flags(CLI::App* cmd, GroupsFlags& f) {
  cmd->add_flag("--to-earliest", f.to_earliest, "Reset to the earliest offset");
  cmd->add_flag("--to-latest", f.to_latest, "Reset to the log end");
  cmd->add_flag("--to-current", f.to_current, "Reset to the committed offset (the log end without one)");
  f.to_offset_option = cmd->add_option("--to-offset", f.to_offset, "Reset to this offset (kept within the log)");
  f.shift_by_option = cmd->add_option("--shift-by", f.shift_by, "Move the committed offset by N (may be negative)");
  f.to_datetime_option = cmd->add_option("--to-datetime", f.to_datetime,
                                         "Reset to the first record at or after YYYY-MM-DDTHH:mm:SS.sss[Z|+hh:mm]");
  f.by_duration_option = cmd->add_option("--by-duration", f.by_duration,
                                         "Reset to the first record at or after now minus PnDTnHnMnS");
  cmd->add_flag("--dry-run", f.dry_run, "Show the new offsets only (the default)");
  cmd->add_flag("--execute", f.execute, "Commit the new offsets");
}

void add_groups_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("groups", "List, describe, delete consumer groups and reset their offsets on any "
                                           "Kafka-compatible broker (as kafka-consumer-groups.sh)");
  auto flags = std::make_shared<GroupsFlags>();
  cli::add_admin_connection_flags(cmd, flags->connection, "kafka-consumer-groups.sh");
  add_action_flags(cmd, *flags);
  add_selection_flags(cmd, *flags);
  add_reset_flags(cmd, *flags);
  cli::set_action(cmd, [flags] { return run(*flags); });
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_groups_command);
