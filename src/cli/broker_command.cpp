#include <signal.h>

#include <cstdio>

#include "base/log.h"
#include "base/service_notify.h"
#include "broker/broker.h"
#include "cli/command.h"
#include "config/config.h"

namespace {

int run_broker(const std::string& config_path) {
  auto config = bulwark::config::load_broker_config(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "bulwark broker: the configuration cannot be used:\n%s\n", config.error().message.c_str());
    return 2;
  }
  // Block the stop signals in every thread the broker starts; this thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // reloads the TLS material (systemd's ExecReload)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto broker = bulwark::broker::Broker::create(std::move(*config));
  if (!broker.ok()) {
    std::fprintf(stderr, "bulwark broker: cannot start: %s\n", broker.error().message.c_str());
    return 1;
  }
  if (auto started = (*broker)->start(); !started.ok()) {
    std::fprintf(stderr, "bulwark broker: cannot start: %s\n", started.error().message.c_str());
    return 1;
  }
  bulwark::service::notify("READY=1\nSTATUS=serving");  // the listeners are bound
  int received = 0;
  for (;;) {
    sigwait(&stop_signals, &received);
    if (received != SIGHUP) break;
    bulwark::service::notify_reloading();
    bulwark::log::info("received SIGHUP: reloading the TLS material of every listener");
    (*broker)->reload_certificates("SIGHUP");
    bulwark::service::notify("READY=1\nSTATUS=serving");
  }
  bulwark::service::notify("STOPPING=1");
  bulwark::log::info("received {}, stopping", received == SIGINT ? "SIGINT" : "SIGTERM");
  (*broker)->stop();
  return 0;
}

void add_broker_command(CLI::App& app) {
  auto* command = app.add_subcommand("broker", "Run a broker configured by a Kafka server.properties file");
  auto config_path = std::make_shared<std::string>();
  command->add_option("-c,--config,config", *config_path, "server.properties (Kafka's keys)")
      ->required()
      ->check(CLI::ExistingFile);
  bulwark::cli::set_action(command, [config_path] { return run_broker(*config_path); });
}

BULWARK_REGISTER_COMMAND(add_broker_command);

}  // namespace
