#include "broker/broker.h"

#include <algorithm>

#include <fmt/ranges.h>
#include <condition_variable>
#include <thread>

#include "base/log.h"
#include "broker/router.h"
#include "broker/state.h"
#include "config/meta_properties.h"
#include "net/server.h"
#include "security/keystore.h"
#include "tls/tls.h"

namespace bulwark::broker {
namespace {

net::SecurityProtocol to_net(config::SecurityProtocol p) {
  switch (p) {
    case config::SecurityProtocol::plaintext: return net::SecurityProtocol::plaintext;
    case config::SecurityProtocol::ssl: return net::SecurityProtocol::ssl;
    case config::SecurityProtocol::sasl_plaintext: return net::SecurityProtocol::sasl_plaintext;
    case config::SecurityProtocol::sasl_ssl: return net::SecurityProtocol::sasl_ssl;
  }
  return net::SecurityProtocol::plaintext;
}

tls::ClientAuth to_tls(config::ClientAuth a) {
  switch (a) {
    case config::ClientAuth::none: return tls::ClientAuth::none;
    case config::ClientAuth::requested: return tls::ClientAuth::requested;
    case config::ClientAuth::required: return tls::ClientAuth::required;
  }
  return tls::ClientAuth::none;
}

Result<std::optional<keystore::Format>> store_format(const std::string& type) {
  if (type.empty()) return std::optional<keystore::Format>{};
  auto format = keystore::parse_format(type);
  if (!format.ok()) return format.error();
  return std::optional<keystore::Format>{*format};
}

// The TLS context of one listener from its effective ssl.* settings (listener.name.<l>. prefixes applied).
Result<std::shared_ptr<tls::ServerTlsContext>> listener_tls(const config::ListenerSecurity& sec) {
  auto where = [&](const Error& e) { return make_error(e.kind, "listener " + sec.listener + ": " + e.message); };
  tls::TlsFileSettings files;
  auto keystore_type = store_format(sec.keystore_type);
  if (!keystore_type.ok()) return where(keystore_type.error());
  auto truststore_type = store_format(sec.truststore_type);
  if (!truststore_type.ok()) return where(truststore_type.error());
  files.keystore_location = sec.keystore_location;
  files.keystore_type = *keystore_type;
  files.keystore_password = sec.keystore_password.reveal();
  files.key_password = sec.key_password.reveal();
  files.truststore_location = sec.truststore_location;
  files.truststore_type = *truststore_type;
  files.truststore_password = sec.truststore_password.reveal();
  files.client_auth = to_tls(sec.client_auth);
  if (!sec.enabled_protocols.empty()) files.enabled_protocols = sec.enabled_protocols;
  files.cipher_suites = sec.cipher_suites;
  auto settings = tls::load_tls_settings(files);
  if (!settings.ok()) return where(settings.error());
  // KIP-651: PEM key and chain (and trusted certificates) given inline in the configuration.
  if (!sec.keystore_key.empty()) {
    auto inline_store = keystore::decode_pem(sec.keystore_key.reveal() + "\n" + sec.keystore_certificate_chain.reveal(),
                                             sec.key_password.reveal());
    if (!inline_store.ok()) return where(inline_store.error());
    settings->keystore = std::move(*inline_store);
  }
  if (!sec.truststore_certificates.empty()) {
    auto inline_trust = keystore::decode_pem(sec.truststore_certificates.reveal());
    if (!inline_trust.ok()) return where(inline_trust.error());
    settings->truststore = std::move(*inline_trust);
  }
  if (settings->keystore.keys.empty())
    return make_error(ErrorKind::invalid_argument,
                      "listener " + sec.listener + " uses TLS but no keystore with a private key is configured "
                      "(set ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain)");
  auto context = tls::make_server_context(*settings);
  if (!context.ok()) return where(context.error());
  return context;
}

// The authorizer and its ACLs, principal mapping rules per TLS listener, SASL mechanisms and users per
// SASL listener, and the SCRAM credential store.
Status open_security(BrokerState& state, const std::filesystem::path& metadata_dir) {
  const auto& cfg = state.config;
  if (!cfg.authorizer_class_name.empty()) {
    security::AuthorizerConfig authorizer;
    authorizer.super_users = cfg.super_users;
    authorizer.allow_everyone_if_no_acl_found = cfg.allow_everyone_if_no_acl_found;
    auto acls = AclStore::open(metadata_dir / "bulwark-acls.json", std::move(authorizer));
    if (!acls.ok()) return acls.error();
    state.acls = std::move(*acls);
    log::info("authorizer on: {} ACLs, super users [{}], allow.everyone.if.no.acl.found={}",
              state.acls->authorizer().acl_count(), fmt::join(cfg.super_users, ", "),
              cfg.allow_everyone_if_no_acl_found);
  } else {
    log::warn("authorizer.class.name is not set: no ACL is checked, every client that connects may do everything "
              "(set it to org.apache.kafka.metadata.authorizer.StandardAuthorizer, with super.users)");
  }
  auto scram = ScramStore::open(metadata_dir / "bulwark-scram-credentials.json");
  if (!scram.ok()) return scram.error();
  state.scram = std::move(*scram);

  for (const auto& listener : cfg.listeners) {
    auto sec = cfg.security_for(listener.listener);
    auto where = "listener " + listener.listener + ": ";
    if (listener.protocol == config::SecurityProtocol::ssl) {
      auto rules = security::PrincipalMappingRules::parse(sec.principal_mapping_rules);
      if (!rules.ok())
        return make_error(ErrorKind::invalid_argument, where + "ssl.principal.mapping.rules: " + rules.error().message);
      state.mapping_rules.emplace(listener.listener, std::move(*rules));
    }
    if (!config::uses_sasl(listener.protocol)) continue;
    ListenerSasl listener_sasl;
    for (const auto& name : sec.sasl_enabled_mechanisms) {
      auto mechanism = security::sasl::mechanism_from(name);
      if (!mechanism.ok()) {
        log::warn("{}SASL mechanism {} in sasl.enabled.mechanisms is not supported by Bulwark (it offers PLAIN, "
                  "SCRAM-SHA-256 and SCRAM-SHA-512); it is not offered to clients", where, name);
        continue;
      }
      listener_sasl.mechanisms.push_back(*mechanism);
    }
    if (listener_sasl.mechanisms.empty())
      return make_error(ErrorKind::invalid_argument,
                        where + "uses " + std::string(config::to_string(listener.protocol)) +
                            " but sasl.enabled.mechanisms names no mechanism Bulwark supports (PLAIN, SCRAM-SHA-256, "
                            "SCRAM-SHA-512; Kafka's default is GSSAPI)");
    if (std::find(listener_sasl.mechanisms.begin(), listener_sasl.mechanisms.end(), security::sasl::Mechanism::plain) !=
        listener_sasl.mechanisms.end()) {
      std::string key = "listener.name." + listener.listener + ".plain.sasl.jaas.config";
      std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
      auto jaas = sec.sasl_jaas_configs.find("PLAIN");
      if (jaas == sec.sasl_jaas_configs.end())
        return make_error(ErrorKind::invalid_argument,
                          where + "enables PLAIN but " + key + " is not set (PlainLoginModule required user_<name>=\"<password>\" ...;)");
      auto parsed = security::sasl::parse_jaas_config(jaas->second.reveal());
      if (!parsed.ok()) return make_error(ErrorKind::invalid_argument, key + ": " + parsed.error().message);
      if (parsed->login_module != "org.apache.kafka.common.security.plain.PlainLoginModule")
        return make_error(ErrorKind::invalid_argument,
                          key + ": the login module must be org.apache.kafka.common.security.plain.PlainLoginModule");
      listener_sasl.plain_users = security::sasl::plain_users(*parsed);
      if (listener_sasl.plain_users.empty())
        log::warn("{}{} defines no user_<name>=\"<password>\" entry: no PLAIN login can succeed", where, key);
    }
    std::vector<std::string> names;
    for (auto m : listener_sasl.mechanisms) names.emplace_back(security::sasl::name_of(m));
    log::info("{}SASL mechanisms {} ({} PLAIN users, {} SCRAM users)", where, fmt::join(names, ", "),
              listener_sasl.plain_users.size(), state.scram->all().size());
    state.sasl.emplace(listener.listener, std::move(listener_sasl));
  }
  return Status::success();
}

bool is_controller_listener_name(const config::BrokerConfig& cfg, const std::string& listener) {
  const auto& names = cfg.controller_listener_names;
  return std::find(names.begin(), names.end(), listener) != names.end();
}

}  // namespace

struct Broker::Impl {
  BrokerState state;
  std::unique_ptr<Router> router;
  std::unique_ptr<net::Server> server;
  std::thread maintenance;
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool stopping = false;
  bool started = false;
  storage::DirectoryLock metadata_dir_lock;  // when the metadata dir is not one of the log dirs

  void run_maintenance() {
    const auto flush_every = std::max<std::int64_t>(
        100, std::min<std::int64_t>(state.config.log_flush_scheduler_interval_ms > 0
                                        ? state.config.log_flush_scheduler_interval_ms
                                        : 1000,
                                    1000));
    const auto retention_every = std::max<std::int64_t>(1000, state.config.log_retention_check_interval_ms);
    std::int64_t next_retention = state.now_ms() + retention_every;
    std::unique_lock lock(maintenance_mu);
    while (!stopping) {
      maintenance_cv.wait_for(lock, std::chrono::milliseconds(flush_every));
      if (stopping) break;
      lock.unlock();
      auto now = state.now_ms();
      if (auto flushed = state.logs->maybe_flush_all(now); !flushed.ok())
        log::error("flushing logs: {}", flushed.error().message);
      if (now >= next_retention) {
        if (auto cleaned = state.logs->enforce_retention_all(now); !cleaned.ok())
          log::error("enforcing retention: {}", cleaned.error().message);
        next_retention = now + retention_every;
      }
      lock.lock();
    }
  }
};

Broker::Broker() : impl_(std::make_unique<Impl>()) {}
Broker::~Broker() { stop(); }

Result<std::unique_ptr<Broker>> Broker::create(config::BrokerConfig config) {
  std::unique_ptr<Broker> broker(new Broker());
  auto& state = broker->impl_->state;
  state.config = std::move(config);
  const auto& cfg = state.config;

  for (const auto& line : cfg.startup_report()) log::warn("{}", line);
  if (!cfg.is_broker())
    return make_error(ErrorKind::unsupported,
                      "process.roles=controller (a controller-only node) arrives with the cluster work; use "
                      "process.roles=broker,controller for a single node");
  if (cfg.quorum_voters.size() > 1)
    log::warn("controller.quorum.voters names {} voters; this Bulwark build runs a one-node quorum and serves as "
              "the only broker (the replicated cluster arrives later)",
              cfg.quorum_voters.size());
  auto meta = config::check_storage(cfg);
  if (!meta.ok()) return meta.error();
  state.cluster_id = meta->cluster_id;

  std::vector<std::filesystem::path> dirs(cfg.log_dirs.begin(), cfg.log_dirs.end());
  auto logs = storage::LogManager::open(dirs, state.default_log_config());
  if (!logs.ok()) return static_cast<Error>(logs.error());
  state.logs = std::move(*logs);

  std::filesystem::path metadata_dir = cfg.metadata_log_dir ? *cfg.metadata_log_dir : cfg.log_dirs.front();
  // One process per dir, as Kafka's .lock: the log dirs are locked by the log manager; a separate
  // metadata dir is locked here (locking a dir twice from one process would fail).
  auto same_dir = [](const std::filesystem::path& a, const std::filesystem::path& b) {
    std::error_code ec;
    return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
  };
  if (std::none_of(cfg.log_dirs.begin(), cfg.log_dirs.end(), [&](const auto& d) { return same_dir(d, metadata_dir); })) {
    auto lock = storage::DirectoryLock::acquire(metadata_dir);
    if (!lock.ok()) return lock.error();
    broker->impl_->metadata_dir_lock = std::move(*lock);
  }
  auto topics = TopicRegistry::open(metadata_dir / "bulwark-topics.json");
  if (!topics.ok()) return topics.error();
  state.topics = std::move(*topics);
  BULWARK_TRY(state.open_topic_logs());
  auto producer_ids = ProducerIdAllocator::open(metadata_dir / "bulwark-producer-ids");
  if (!producer_ids.ok()) return producer_ids.error();
  state.producer_ids = std::move(*producer_ids);
  BULWARK_TRY(open_group_coordinator(state));
  BULWARK_TRY(open_security(state, metadata_dir));

  net::ServerOptions options;
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.threads = std::clamp(cfg.num_network_threads, 1, hardware);
  if (cfg.socket_request_max_bytes > 0) options.max_frame_bytes = static_cast<std::size_t>(cfg.socket_request_max_bytes);
  if (cfg.max_connections > 0) options.max_connections = static_cast<std::size_t>(cfg.max_connections);
  if (cfg.connections_max_idle_ms > 0) options.idle_timeout = std::chrono::milliseconds(cfg.connections_max_idle_ms);
  options.max_connections_per_ip = static_cast<std::size_t>(std::max(cfg.max_connections_per_ip, 0));
  for (const auto& [host, limit] : cfg.max_connections_per_ip_overrides)
    options.max_connections_per_ip_overrides.emplace_back(host, static_cast<std::size_t>(std::max(limit, 0)));
  options.max_frame_bytes_before_login = static_cast<std::size_t>(std::max(cfg.sasl_server_max_receive_size, 1));
  options.request_receive_timeout = std::chrono::milliseconds(std::max<std::int64_t>(cfg.request_receive_timeout_ms, 1));
  options.max_queued_request_bytes = cfg.queued_max_request_bytes;
  if (cfg.queued_max_requests > 0)
    options.max_in_flight_per_connection = std::min<std::size_t>(cfg.queued_max_requests, 1000);

  broker->impl_->router = std::make_unique<Router>(state);
  broker->impl_->server = std::make_unique<net::Server>(options, *broker->impl_->router);
  for (const auto& listener : cfg.listeners) {
    net::ListenerSpec spec;
    spec.name = listener.listener;
    spec.host = listener.host;
    spec.port = listener.port;
    spec.protocol = to_net(listener.protocol);
    if (auto limit = cfg.listener_max_connections.find(listener.listener); limit != cfg.listener_max_connections.end())
      spec.max_connections = static_cast<std::size_t>(std::max(limit->second, 0));
    // As in Kafka, max.connections never locks out the inter-broker (or controller) listener.
    spec.counts_toward_broker_limit =
        listener.listener != cfg.inter_broker_listener_name && !is_controller_listener_name(cfg, listener.listener);
    if (config::uses_tls(listener.protocol)) {
      auto context = listener_tls(cfg.security_for(listener.listener));
      if (!context.ok()) return context.error();
      spec.tls = std::move(*context);
    }
    BULWARK_TRY(broker->impl_->server->add_listener(std::move(spec)));
  }
  return broker;
}

Status Broker::start() {
  BULWARK_TRY(impl_->server->start());
  impl_->started = true;
  impl_->maintenance = std::thread([this] { impl_->run_maintenance(); });
  log::info("broker {} of cluster {} started", impl_->state.node_id(), impl_->state.cluster_id);
  return Status::success();
}

void Broker::stop() {
  if (!impl_ || !impl_->started) return;
  impl_->started = false;
  impl_->server->stop();
  {
    std::lock_guard lock(impl_->maintenance_mu);
    impl_->stopping = true;
  }
  impl_->maintenance_cv.notify_all();
  if (impl_->maintenance.joinable()) impl_->maintenance.join();
  for (const auto& tp : impl_->state.logs->list())
    if (auto log = impl_->state.logs->get(tp))
      if (auto flushed = log->flush(); !flushed.ok()) log::error("flushing {}: {}", log->dir().string(), flushed.error().message);
  impl_->state.logs->close();  // writes the recovery points and the clean-shutdown marker
  log::info("broker {} stopped", impl_->state.node_id());
}

Status add_scram_credentials(const config::BrokerConfig& config, const std::vector<security::sasl::ScramSpec>& specs) {
  std::filesystem::path metadata_dir = config.metadata_log_dir ? *config.metadata_log_dir : config.log_dirs.front();
  auto store = ScramStore::open(metadata_dir / "bulwark-scram-credentials.json");
  if (!store.ok()) return store.error();
  return (*store)->apply({}, specs);
}

std::uint16_t Broker::port(const std::string& listener) const { return impl_->server->bound_port(listener); }

}  // namespace bulwark::broker
