// `bulwark scram set|delete|list`: SCRAM credentials on any Kafka-compatible broker, as
// kafka-configs.sh --entity-type users --alter --add-config 'SCRAM-SHA-256=[...]' does it
// (AlterUserScramCredentials / DescribeUserScramCredentials, KIP-554). The password is read from a
// file or stdin, salted and hashed here; only salt and SaltedPassword travel, and nothing secret is printed.
//
// Exit codes: 0 done, 1 the broker or the connection failed, 2 usage errors.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/files.h"
#include "cli/admin_flags.h"
#include "cli/command.h"
#include "client/client.h"
#include "client/scram.h"

namespace {

using namespace bulwark;
namespace sasl = security::sasl;

using cli::kBrokerError;
using cli::kUsageError;

struct ScramFlags {
  client::ConnectionFlags connection;
  std::vector<std::string> users;
  std::string mechanism;
  int iterations = sasl::kMinScramIterations;
  std::string password_file;
};

Result<sasl::Mechanism> scram_mechanism(const std::string& name) {
  auto m = sasl::mechanism_from(name);
  if (!m || !sasl::is_scram(*m)) {
    return make_error(ErrorKind::invalid_argument,
                      "--mechanism '" + name + "' is not SCRAM-SHA-256 or SCRAM-SHA-512");
  }
  return *m;
}

// The first line of a file, or of stdin for "-" (the line end is not part of the password).
Result<std::string> read_password(const std::string& source) {
  std::string line;
  if (source == "-") {
    if (!std::getline(std::cin, line)) {
      return make_error(ErrorKind::invalid_argument, "no password on standard input (--password-file -)");
    }
  } else {
    auto text = read_file(source);
    if (!text) return text.error();
    line = text->substr(0, text->find('\n'));
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) {
    return make_error(ErrorKind::invalid_argument,
                      "the password from " + (source == "-" ? std::string("standard input") : source) + " is empty");
  }
  return line;
}

int usage_error(const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.message.c_str());
  return kUsageError;
}

int broker_error(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return kBrokerError;
}

int report_alter(const Result<std::vector<client::ScramResult>>& results, const client::AdminConnection& connection,
                 const std::string& done_message) {
  if (!results) return broker_error(results.error().message);
  bool failed = false;
  for (const auto& r : *results) {
    if (r.error_code != 0) {
      failed = true;
      std::fprintf(stderr, "error: %s\n",
                   client::explain_scram_error(r.error_code, r.error_message, r.user, connection.identity()).c_str());
    }
  }
  if (failed) return kBrokerError;
  std::printf("%s\n", done_message.c_str());
  return 0;
}

int run_set(const ScramFlags& f) {
  auto mechanism = scram_mechanism(f.mechanism);
  if (!mechanism) return usage_error(mechanism.error());
  auto password = read_password(f.password_file);
  if (!password) return usage_error(password.error());
  client::ScramUpsert upsert{f.users.front(), *mechanism, f.iterations, *password};
  if (auto check = client::make_upsertion(upsert); !check) return usage_error(check.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  auto results = client::alter_scram_credentials(**connection, {upsert}, {});
  return report_alter(results, **connection,
                      "Set the " + f.mechanism + " credential of user " + upsert.user + " (" +
                          std::to_string(f.iterations) + " iterations).");
}

int run_delete(const ScramFlags& f) {
  auto mechanism = scram_mechanism(f.mechanism);
  if (!mechanism) return usage_error(mechanism.error());
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  auto results = client::alter_scram_credentials(**connection, {}, {{f.users.front(), *mechanism}});
  return report_alter(results, **connection,
                      "Deleted the " + f.mechanism + " credential of user " + f.users.front() + ".");
}

int run_list(const ScramFlags& f) {
  int code = 0;
  auto connection = cli::connect_admin(f.connection, code);
  if (!connection) {
    std::fprintf(stderr, "error: %s\n", connection.error().message.c_str());
    return code;
  }
  auto users = client::describe_scram_credentials(**connection, f.users);
  if (!users) return broker_error(users.error().message);
  bool failed = false;
  for (const auto& u : *users) {
    if (u.error_code != 0) {
      failed = true;
      std::fprintf(stderr, "error: %s\n",
                   client::explain_scram_error(u.error_code, u.error_message, u.user, (*connection)->identity()).c_str());
      continue;
    }
    // kafka-configs.sh's wording, so scripts written for it keep working.
    std::string configs;
    for (const auto& c : u.credentials) {
      auto m = sasl::scram_mechanism_from_wire(c.mechanism);
      std::string name = m ? std::string(sasl::name_of(*m)) : "UNKNOWN(" + std::to_string(c.mechanism) + ")";
      configs += (configs.empty() ? "" : ", ") + name + "=iterations=" + std::to_string(c.iterations);
    }
    std::printf("SCRAM credential configs for user-principal '%s' are %s\n", u.user.c_str(), configs.c_str());
  }
  if (users->empty()) std::fprintf(stderr, "no SCRAM credentials\n");
  return failed ? kBrokerError : 0;
}

void add_scram_commands(CLI::App& app) {
  auto* group = cli::command_group(app, "scram", "Set, delete and list SCRAM credentials on any Kafka-compatible broker");
  {
    auto* cmd = group->add_subcommand("set", "Create or replace a user's SCRAM credential (AlterUserScramCredentials)");
    auto flags = std::make_shared<ScramFlags>();
    cli::add_admin_connection_flags(cmd, flags->connection, "kafka-configs.sh");
    cmd->add_option("--user", flags->users, "User name")->required()->expected(1);
    cmd->add_option("--mechanism", flags->mechanism, "SCRAM-SHA-256 or SCRAM-SHA-512")->required();
    cmd->add_option("--iterations", flags->iterations, "PBKDF2 iterations (4096..16384)")->capture_default_str();
    cmd->add_option("--password-file", flags->password_file, "File whose first line is the password, or - for stdin")
        ->required();
    cli::set_action(cmd, [flags] { return run_set(*flags); });
  }
  {
    auto* cmd = group->add_subcommand("delete", "Delete a user's SCRAM credential for one mechanism");
    auto flags = std::make_shared<ScramFlags>();
    cli::add_admin_connection_flags(cmd, flags->connection, "kafka-configs.sh");
    cmd->add_option("--user", flags->users, "User name")->required()->expected(1);
    cmd->add_option("--mechanism", flags->mechanism, "SCRAM-SHA-256 or SCRAM-SHA-512")->required();
    cli::set_action(cmd, [flags] { return run_delete(*flags); });
  }
  {
    auto* cmd = group->add_subcommand("list", "List users with SCRAM credentials: mechanism and iterations, never secrets");
    auto flags = std::make_shared<ScramFlags>();
    cli::add_admin_connection_flags(cmd, flags->connection, "kafka-configs.sh");
    cmd->add_option("--user", flags->users, "Only these users (repeatable; default all)");
    cli::set_action(cmd, [flags] { return run_list(*flags); });
  }
}

}  // namespace

BULWARK_REGISTER_COMMAND(add_scram_commands);
