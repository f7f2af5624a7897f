#include "acme/dns01.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "acme/dns_update.h"
#include "base/files.h"
#include "base/log.h"

namespace bulwark::acme {
namespace {

constexpr auto kHookTimeout = std::chrono::minutes(10);

class HookResponder : public Dns01Responder {
 public:
  explicit HookResponder(std::filesystem::path program) : program_(std::move(program)) {}
  Status present(const Dns01Record& record) override { return run("present", record); }
  Status cleanup(const Dns01Record& record) override { return run("cleanup", record); }
  std::string describe() const override { return "the hook " + program_.string(); }

 private:
  Status run(const std::string& verb, const Dns01Record& record) {
    std::vector<std::string> args{program_.string(), verb, record.fqdn, record.value};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string command = program_.string() + " " + verb + " " + record.fqdn;
    pid_t pid = ::fork();
    if (pid < 0) return make_error(ErrorKind::io, "cannot start " + command + ": " + std::strerror(errno));
    if (pid == 0) {
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + kHookTimeout;
    int status = 0;
    for (;;) {
      pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) break;
      if (done < 0 && errno != EINTR) return make_error(ErrorKind::io, "lost " + command + ": " + std::strerror(errno));
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        return make_error(ErrorKind::unavailable, "the DNS hook `" + command + "` ran longer than 10 minutes; killed it");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::success();
    std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                        : "was killed by signal " + std::to_string(WTERMSIG(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) how += " (cannot be run: is it executable and on PATH?)";
    return make_error(ErrorKind::unavailable, "the DNS hook `" + command + " VALUE` " + how);
  }
  std::filesystem::path program_;
};

class Rfc2136Responder : public Dns01Responder {
 public:
  Rfc2136Responder(dns::UpdateClient client, std::optional<std::string> zone)
      : client_(std::move(client)), zone_(std::move(zone)) {}
  Status present(const Dns01Record& record) override { return change(record, dns::TxtChange::add); }
  Status cleanup(const Dns01Record& record) override { return change(record, dns::TxtChange::remove); }
  std::string describe() const override { return "RFC 2136 updates to " + client_.server(); }

 private:
  Status change(const Dns01Record& record, dns::TxtChange how) {
    dns::TxtUpdate update;
    update.fqdn = record.fqdn;
    update.value = record.value;
    update.change = how;
    if (zone_) {
      update.zone = *zone_;
    } else {
      auto zone = client_.find_zone(record.fqdn);
      if (!zone) return zone.error();
      update.zone = *zone;
    }
    return client_.apply(update);
  }
  dns::UpdateClient client_;
  std::optional<std::string> zone_;
};

}  // namespace

std::string challenge_fqdn(std::string_view domain) {
  if (domain.starts_with("*.")) domain.remove_prefix(2);
  std::string out = "_acme-challenge." + std::string(domain);
  if (out.back() != '.') out += '.';
  return out;
}

std::unique_ptr<Dns01Responder> make_hook_responder(std::filesystem::path program) {
  return std::make_unique<HookResponder>(std::move(program));
}

Result<std::unique_ptr<Dns01Responder>> make_rfc2136_responder(const std::string& server,
                                                               const std::filesystem::path& key_file,
                                                               std::optional<std::string> zone) {
  auto text = read_file(key_file);
  if (!text) return make_error(text.error().kind, "cannot read the TSIG key: " + text.error().message);
  auto key = dns::parse_tsig_key(*text, key_file.string());
  if (!key) return key.error();
  auto client = dns::UpdateClient::create(server, std::move(*key));
  if (!client) return client.error();
  if (zone && zone->back() != '.') *zone += '.';
  return std::unique_ptr<Dns01Responder>(std::make_unique<Rfc2136Responder>(std::move(*client), std::move(zone)));
}

}  // namespace bulwark::acme
