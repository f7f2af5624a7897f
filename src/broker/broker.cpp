#include "broker/broker.h"

#include <malloc.h>

#include <algorithm>

#include <fmt/ranges.h>
#include <condition_variable>
#include <future>
#include <thread>

#include "base/files.h"
#include "base/log.h"
#include "broker/controller_channel.h"
#include "broker/group_partitions.h"
#include "broker/txn_partitions.h"
#include "broker/lifecycle.h"
#include "broker/router.h"
#include "broker/state.h"
#include "broker/tls_reloader.h"
#include "metrics/endpoint.h"
#include "cluster/controller_service.h"
#include "cluster/metadata_loader.h"
#include "cluster/quorum_driver.h"
#include "config/meta_properties.h"
#include "net/server.h"
#include "security/keystore.h"
#include "storage/cleaner.h"
#include "tls/tls.h"
#include "wire/generated/allocate_producer_ids.h"
#include "wire/generated/alter_partition.h"
#include "wire/protocol.h"

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

// How this node dials `listener` on the others: that listener's security protocol, and its keystore as
// the client certificate (mTLS), as Kafka's inter-node clients do. `options` brings the timeouts.
Result<net::OutboundOptions> peer_client_options(const config::BrokerConfig& cfg, TlsReloader& tls,
                                                 const std::string& name, net::OutboundOptions options) {
  options.client_id = "bulwark-" + std::to_string(cfg.node_id);
  auto sec = cfg.security_for(name);
  if (config::uses_sasl(sec.protocol))
    return make_error(ErrorKind::unsupported, "listener " + name + " uses " + std::string(config::to_string(sec.protocol)) +
                                                  ": Bulwark's nodes dial each other over PLAINTEXT or SSL only");
  if (!config::uses_tls(sec.protocol)) return options;
  auto context = tls.client_context(name);
  if (!context.ok()) return context.error();
  options.protocol = net::SecurityProtocol::ssl;
  options.tls = std::move(*context);
  // ssl.endpoint.identification.algorithm= (set, and empty) turns host name checks off; unset means https.
  std::string prefixed = "listener.name." + name + ".ssl.endpoint.identification.algorithm";
  std::transform(prefixed.begin(), prefixed.end(), prefixed.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool set = cfg.properties.find("ssl.endpoint.identification.algorithm") || cfg.properties.find(prefixed);
  options.verify_hostname = !(set && sec.endpoint_identification_algorithm.empty());
  return options;
}

Result<net::OutboundOptions> controller_client_options(const config::BrokerConfig& cfg, TlsReloader& tls) {
  net::OutboundOptions options;
  options.client_id = "bulwark-" + std::to_string(cfg.node_id);
  options.request_timeout = std::chrono::milliseconds(cfg.quorum_request_timeout_ms);
  options.connect_timeout = std::chrono::milliseconds(std::max(cfg.quorum_request_timeout_ms, 1000));
  options.reconnect_backoff = std::chrono::milliseconds(std::max(cfg.quorum_retry_backoff_ms, 1));
  options.failure_log_interval = std::chrono::milliseconds(30000);
  if (cfg.controller_listener_names.empty()) return options;  // ZooKeeper-mode config: a one-voter quorum
  return peer_client_options(cfg, tls, cfg.controller_listener_names.front(), std::move(options));
}

// Followers dial their leaders' inter-broker listener (replica.socket.timeout.ms per fetch).
Result<net::OutboundOptions> replica_client_options(const config::BrokerConfig& cfg, TlsReloader& tls) {
  net::OutboundOptions options;
  options.request_timeout = std::chrono::milliseconds(cfg.replica_socket_timeout_ms);
  options.reconnect_backoff = std::chrono::milliseconds(std::max(cfg.replica_fetch_backoff_ms / 10, 50));
  options.reconnect_backoff_max = std::chrono::milliseconds(std::max(cfg.replica_fetch_backoff_ms, 50));
  options.failure_log_interval = std::chrono::milliseconds(30000);
  return peer_client_options(cfg, tls, cfg.inter_broker_listener_name, std::move(options));
}

std::int16_t kafka_protocol_id(config::SecurityProtocol p) {
  switch (p) {
    case config::SecurityProtocol::plaintext: return 0;
    case config::SecurityProtocol::ssl: return 1;
    case config::SecurityProtocol::sasl_plaintext: return 2;
    case config::SecurityProtocol::sasl_ssl: return 3;
  }
  return 0;
}

// Records for a data dir written before the metadata log: its topics (bulwark-topics.json), each
// partition on this node, with their ids and configs kept.
std::vector<cluster::AnyRecord> migrated_topic_records(const std::filesystem::path& metadata_dir, std::int32_t node_id) {
  std::vector<cluster::AnyRecord> records;
  auto file = metadata_dir / "bulwark-topics.json";
  auto topics = read_legacy_topic_registry(file);
  if (!topics.ok()) {
    log::error("{} is not migrated into the metadata log: {}", file.string(), topics.error().message);
    return records;
  }
  for (const auto& topic : *topics) {
    cluster::rec::TopicRecord t;
    t.name = topic.name;
    t.topic_id = topic.id;
    records.push_back(cluster::make_record(std::move(t)));
    for (std::int32_t p = 0; p < topic.partitions; ++p) {
      cluster::rec::PartitionRecord partition;
      partition.partition_id = p;
      partition.topic_id = topic.id;
      partition.replicas = {node_id};
      partition.isr = {node_id};
      partition.leader = node_id;
      partition.leader_epoch = 0;
      partition.partition_epoch = 0;
      records.push_back(cluster::make_record(std::move(partition)));
    }
    for (const auto& [key, value] : topic.configs) {
      cluster::rec::ConfigRecord c;
      c.resource_type = static_cast<std::int8_t>(cluster::ConfigResourceType::topic);
      c.resource_name = topic.name;
      c.name = key;
      c.value = value;
      records.push_back(cluster::make_record(std::move(c)));
    }
  }
  if (!topics->empty())
    log::info("migrating {} topic(s) from {} into the metadata log", topics->size(), file.string());
  return records;
}

// Everything a data dir written before the metadata log holds: topics, ACLs, SCRAM credentials.
std::vector<cluster::AnyRecord> migrated_records(const std::filesystem::path& metadata_dir, std::int32_t node_id) {
  auto records = migrated_topic_records(metadata_dir, node_id);
  auto append = [&](Result<std::vector<cluster::AnyRecord>> more, const char* what) {
    if (!more.ok()) return log::error("{} not migrated into the metadata log: {}", what, more.error().message);
    if (!more->empty()) log::info("migrating {} {} into the metadata log", more->size(), what);
    for (auto& r : *more) records.push_back(std::move(r));
  };
  append(legacy_acl_records(metadata_dir / "bulwark-acls.json", [] { return random_topic_id(); }), "ACL(s)");
  append(legacy_scram_records(metadata_dir / "bulwark-scram-credentials.json"), "SCRAM credential(s)");
  // Producer ids the earlier release reserved are never handed out again.
  if (auto text = read_file(metadata_dir / "bulwark-producer-ids"); text.ok()) {
    cluster::rec::ProducerIdsRecord ids;
    ids.broker_id = node_id;
    try {
      ids.next_producer_id = std::stoll(*text);
      records.push_back(cluster::make_record(std::move(ids)));
      log::info("migrating the producer id reservation (next id {}) into the metadata log", ids.next_producer_id);
    } catch (...) {
      log::error("{} does not hold a producer id; it is not migrated", (metadata_dir / "bulwark-producer-ids").string());
    }
  }
  return records;
}

// The authorizer and its ACLs, principal mapping rules per TLS listener, SASL mechanisms and users per
// SASL listener, and the SCRAM credential store.
Status open_security(BrokerState& state) {
  const auto& cfg = state.config;
  if (!cfg.authorizer_class_name.empty()) {
    security::AuthorizerConfig authorizer;
    authorizer.super_users = cfg.super_users;
    authorizer.allow_everyone_if_no_acl_found = cfg.allow_everyone_if_no_acl_found;
    state.acls = std::make_unique<AclStore>(std::move(authorizer));
    state.acls->sync(*state.image());
    log::info("authorizer on: super users [{}], allow.everyone.if.no.acl.found={}; ACLs come from the metadata log",
              fmt::join(cfg.super_users, ", "), cfg.allow_everyone_if_no_acl_found);
  } else {
    log::warn("authorizer.class.name is not set: no ACL is checked, every client that connects may do everything "
              "(set it to org.apache.kafka.metadata.authorizer.StandardAuthorizer, with super.users)");
  }
  state.scram = std::make_unique<ScramStore>();

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
    log::info("{}SASL mechanisms {} ({} PLAIN users; SCRAM users come from the metadata log)", where,
              fmt::join(names, ", "), listener_sasl.plain_users.size());
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
  std::unique_ptr<cluster::MetadataLoader> loader;
  std::unique_ptr<cluster::QuorumDriver> quorum;
  std::unique_ptr<cluster::ControllerService> controller;
  std::unique_ptr<ControllerChannel> channel;
  std::unique_ptr<BrokerLifecycle> lifecycle;
  std::unique_ptr<Router> router;
  std::unique_ptr<net::Server> server;
  std::unique_ptr<TlsReloader> tls;
  std::unique_ptr<metrics::Endpoint> metrics_endpoint;
  std::thread maintenance;
  std::unique_ptr<storage::LogCleaner> cleaner;  // log.cleaner.enable
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool stopping = false;
  bool started = false;
  storage::DirectoryLock metadata_dir_lock;  // when the metadata dir is not one of the log dirs

  // The metadata side of the node: the image and its loader, the quorum driver, the controller (on a
  // controller node), the channel to the active controller and the broker's registration.
  Status open_cluster(const std::filesystem::path& metadata_dir) {
    const auto& cfg = state.config;
    loader = std::make_unique<cluster::MetadataLoader>(state.images);
    loader->add_listener([this](const cluster::ImagePtr& before, const cluster::ImagePtr& after) {
      state.reconcile_logs(before.get(), *after);
      apply_dynamic_broker_configs(before.get(), *after);
      count_isr_changes(before.get(), *after);
      state.replicas->apply_image(before.get(), *after);
      if (state.group_coordinators) state.group_coordinators->on_image();
      if (state.txn_coordinators) state.txn_coordinators->on_image();
      if (state.acls) state.acls->sync(*after);
      if (state.scram) state.scram->sync(*after);
      state.image_waiters.on_image(*after);
    });
    auto outbound = controller_client_options(cfg, *tls);
    if (!outbound.ok()) return outbound.error();

    cluster::QuorumDriverOptions q;
    q.raft.cluster_id = state.cluster_id;
    q.raft.node_id = cfg.node_id;
    for (const auto& voter : cfg.quorum_voters) {
      q.raft.voters.push_back(voter.id);
      q.voters.push_back({voter.id, voter.host, voter.port});
    }
    q.raft.election_timeout_ms = cfg.quorum_election_timeout_ms;
    q.raft.fetch_timeout_ms = cfg.quorum_fetch_timeout_ms;
    q.raft.election_backoff_max_ms = cfg.quorum_election_backoff_max_ms;
    q.raft.request_timeout_ms = cfg.quorum_request_timeout_ms;
    q.raft.fetch_backoff_ms = 10;  // stands in for Kafka's long-polling Fetch: followers ask again soon
    q.metadata_dir = metadata_dir;
    q.outbound = *outbound;
    q.on_committed = [this](const std::vector<raft::LogEntry>& entries) {
      loader->apply(entries);
      if (controller) controller->on_committed(entries);
      maybe_snapshot(entries);
    };
    q.on_snapshot = [this](const raft::SnapshotId& id, ByteView bytes) { return loader->load_snapshot(id, bytes); };
    q.on_change = [this](const cluster::QuorumStatus& status) {
      if (controller) controller->on_change(status);
    };
    auto driver = cluster::QuorumDriver::open(std::move(q));
    if (!driver.ok()) return driver.error();
    quorum = std::move(*driver);
    state.quorum = quorum.get();
    state.quorum_leader = [this] { return quorum->status().leader_id; };

    if (cfg.is_controller()) {
      cluster::ControllerSettings settings;
      settings.default_partitions = cfg.num_partitions;
      settings.default_replication_factor = static_cast<std::int16_t>(cfg.default_replication_factor);
      settings.session_timeout_ms = cfg.broker_session_timeout_ms;
      settings.auto_leader_rebalance = cfg.auto_leader_rebalance_enable;
      settings.leader_imbalance_check_interval_ms = cfg.leader_imbalance_check_interval_seconds * 1000;
      settings.leader_imbalance_percent = cfg.leader_imbalance_per_broker_percentage;
      settings.topic_config_error = [](const std::string& key, const std::string& value) {
        return config::topic_config_error(key, value);
      };
      settings.broker_config_error = [](const std::string& key, const std::optional<std::string>& value, bool per_broker) {
        return config::dynamic_broker_config_error(key, value ? std::optional<std::string_view>(*value) : std::nullopt,
                                                   per_broker);
      };
      controller = std::make_unique<cluster::ControllerService>(std::move(settings), cfg.node_id, *quorum, *loader);
      controller->set_first_records([metadata_dir, id = cfg.node_id](const cluster::MetadataImage&) {
        return migrated_records(metadata_dir, id);
      });
      state.controller_service = controller.get();
    }

    ControllerChannel::Options channel_options;
    channel_options.node_id = cfg.node_id;
    channel_options.voters = cfg.quorum_voters;
    channel_options.outbound = *outbound;
    channel_options.retry_backoff = std::chrono::milliseconds(std::max(cfg.quorum_retry_backoff_ms, 20));
    auto made = ControllerChannel::create(std::move(channel_options), *quorum, controller.get());
    if (!made.ok()) return made.error();
    channel = std::move(*made);
    state.controller = channel.get();

    BrokerLifecycle::Options life;
    life.node_id = cfg.node_id;
    life.cluster_id = state.cluster_id;
    for (const auto& endpoint : cfg.advertised_listeners)
      life.listeners.push_back({endpoint.listener, endpoint.host, endpoint.port, kafka_protocol_id(endpoint.protocol), {}});
    life.rack = cfg.broker_rack;
    life.heartbeat_interval = std::chrono::milliseconds(cfg.broker_heartbeat_interval_ms);
    life.applied_offset = [this] { return loader->applied_offset(); };
    lifecycle = std::make_unique<BrokerLifecycle>(std::move(life), *channel);
    return Status::success();
  }

  // Kafka's IsrShrinksPerSec/IsrExpandsPerSec: ISR changes of the partitions this node leads.
  void count_isr_changes(const cluster::MetadataImage* before, const cluster::MetadataImage& after) {
    if (before == nullptr) return;
    const auto me = state.config.node_id;
    for (const auto* topic : after.topics()) {
      const auto* old = before->topic(topic->id);
      if (old == nullptr || old == topic) continue;
      for (const auto& [index, p] : topic->partitions) {
        const auto* was = old->partition(index);
        if (was == nullptr || p.leader != me || was->leader != me || was->isr.size() == p.isr.size()) continue;
        state.metrics.isr_changed(p.isr.size() < was->isr.size());
      }
    }
  }

  // Dynamic broker configs that changed (kafka-configs --alter --entity-type brokers) reach the listeners.
  void apply_dynamic_broker_configs(const cluster::MetadataImage* before, const cluster::MetadataImage& after) {
    const cluster::ConfigResource mine{cluster::ConfigResourceType::broker, std::to_string(state.config.node_id)};
    const cluster::ConfigResource defaults{cluster::ConfigResourceType::broker, ""};
    auto same = [&](const cluster::ConfigResource& r) {
      const auto* a = before ? before->configs(r) : nullptr;
      const auto* b = after.configs(r);
      return a == b || (a && b && *a == *b);
    };
    if (same(mine) && same(defaults)) return;
    tls->apply_dynamic(after.configs(defaults), after.configs(mine));
  }

  // KIP-630: after metadata.log.max.record.bytes.between.snapshots of records, a snapshot of the image
  // at the applied offset; the quorum then drops the log behind it. Runs on the driver thread.
  std::int64_t bytes_since_snapshot = 0;
  void maybe_snapshot(const std::vector<raft::LogEntry>& entries) {
    for (const auto& entry : entries) bytes_since_snapshot += static_cast<std::int64_t>(entry.payload.size());
    if (bytes_since_snapshot < state.config.metadata_snapshot_bytes) return;
    bytes_since_snapshot = 0;
    const auto end = loader->applied_offset() + 1;
    quorum->save_snapshot(end, cluster::encode_snapshot(*loader->image()), [end](Status saved) {
      if (saved.ok()) log::info("metadata snapshot at offset {} saved", end);
      else log::warn("metadata snapshot at offset {} not saved: {}", end, saved.error().message);
    });
  }

  Status open_replication() {
    const auto& cfg = state.config;
    replication::ReplicationSettings settings;
    settings.node_id = cfg.node_id;
    settings.log_dirs.assign(cfg.log_dirs.begin(), cfg.log_dirs.end());
    settings.inter_broker_listener = cfg.inter_broker_listener_name;
    settings.lag_time_max_ms = cfg.replica_lag_time_max_ms;
    settings.fetch_wait_max_ms = cfg.replica_fetch_wait_max_ms;
    settings.fetch_min_bytes = cfg.replica_fetch_min_bytes;
    settings.fetch_max_bytes = cfg.replica_fetch_max_bytes;
    settings.fetch_response_max_bytes = cfg.replica_fetch_response_max_bytes;
    settings.fetch_backoff_ms = cfg.replica_fetch_backoff_ms;
    settings.checkpoint_interval_ms = cfg.replica_high_watermark_checkpoint_interval_ms;
    if (!cfg.is_broker()) {
      settings.fetch_disabled_reason = "the node is not a broker";  // it hosts no partitions
    } else if (auto outbound = replica_client_options(cfg, *tls); outbound.ok()) {
      settings.outbound = std::move(*outbound);
    } else {
      settings.fetch_disabled_reason = outbound.error().message;
    }
    auto made = replication::ReplicaManager::create(
        std::move(settings), *state.logs,
        [this](Bytes body, std::int16_t version, std::function<void(Result<Bytes>)> done) {
          channel->send(wire::msg::AlterPartitionRequest::api_key, version, std::move(body),
                        std::chrono::steady_clock::now() + std::chrono::seconds(10), std::move(done));
        },
        [this] { return lifecycle ? lifecycle->broker_epoch() : -1; },
        [this](const storage::TopicPartition& tp) { state.notifier.notify(tp); });
    if (!made.ok()) return made.error();
    state.replicas = std::move(*made);
    return Status::success();
  }

  // A block of producer ids from the active controller (InitProducerId waits for it once per block).
  Result<ProducerIdAllocator::Block> allocate_producer_ids() {
    wire::msg::AllocateProducerIdsRequest request;
    request.broker_id = state.config.node_id;
    request.broker_epoch = lifecycle->broker_epoch();
    auto promise = std::make_shared<std::promise<Result<Bytes>>>();
    auto future = promise->get_future();
    channel->send(request.api_key, 0, wire::encode_message(request, 0),
                  std::chrono::steady_clock::now() + std::chrono::seconds(10),
                  [promise](Result<Bytes> answer) { promise->set_value(std::move(answer)); });
    auto answer = future.get();
    if (!answer.ok()) return answer.error();
    auto response = wire::decode_message<wire::msg::AllocateProducerIdsResponse>(*answer, 0);
    if (!response) return make_error(ErrorKind::corrupt, "malformed AllocateProducerIds answer");
    if (response->error_code != 0 || response->producer_id_len <= 0)
      return make_error(ErrorKind::unavailable, "the controller gave no producer ids (error code " +
                                                    std::to_string(response->error_code) + ")");
    return ProducerIdAllocator::Block{response->producer_id_start, response->producer_id_len};
  }

  // The only voter of its quorum needs no network: it elects itself, registers and is unfenced before its
  // listeners open, so its first client already finds a working cluster. Otherwise the controller
  // listener (or the other voters) must be reachable first.
  bool sole_voter() const { return state.config.is_controller() && state.config.quorum_voters.size() == 1; }

  Status start_cluster() {
    BULWARK_TRY(quorum->start());
    if (controller) controller->start();
    if (!state.config.is_broker()) return Status::success();  // a controller-only node never registers
    lifecycle->start();
    if (!sole_voter()) return Status::success();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (lifecycle->fenced()) {
      if (std::chrono::steady_clock::now() > until)
        return make_error(ErrorKind::unavailable, "the node did not become an unfenced broker of its one-node cluster "
                                                  "within 30 s (see the log above)");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return Status::success();
  }

  void stop_cluster() {
    if (lifecycle) lifecycle->shutdown(std::chrono::milliseconds(sole_voter() ? 0 : 5000));
    state.image_waiters.fail_all();
    if (channel) channel->stop();
    if (controller) controller->stop();
    if (quorum) quorum->stop();
  }

  // metrics.listener: a port taken by something else stops start-up only when the key was set on purpose.
  Status start_metrics() {
    const auto& cfg = state.config;
    if (cfg.metrics_listener.empty()) return Status::success();
    auto address = metrics::parse_listener(cfg.metrics_listener);
    if (!address.ok()) return address.error();
    std::optional<metrics::EndpointTls> endpoint_tls;
    if (address->https) {
      auto material = metrics_tls(*address);
      if (!material.ok()) return material.error();
      endpoint_tls = std::move(*material);
    }
    auto endpoint = metrics::Endpoint::start(*address, [this] { return state.metrics.registry().render(); },
                                             std::move(endpoint_tls));
    if (!endpoint.ok()) {
      if (cfg.metrics_listener_set) return endpoint.error();
      log::warn("{}; metrics are not served (set metrics.listener to another address, or empty to turn this off)",
                endpoint.error().message);
      return Status::success();
    }
    metrics_endpoint = std::move(*endpoint);
    log::info("metrics on {}://{}:{}/metrics", address->https ? "https" : "http", address->host,
              metrics_endpoint->port());
    return Status::success();
  }

  // An https:// metrics listener serves with metrics.ssl.listener.name's material (default: the first
  // TLS listener of this node), so it is reloaded with that listener.
  Result<metrics::EndpointTls> metrics_tls(const metrics::ListenerAddress& address) const {
    const auto& cfg = state.config;
    std::string name = cfg.properties.get("metrics.ssl.listener.name").value_or("");
    if (name.empty()) {
      for (const auto& l : cfg.listeners) {
        if (config::uses_tls(l.protocol) && tls->server_context(l.listener)) {
          name = l.listener;
          break;
        }
      }
    }
    auto context = name.empty() ? nullptr : tls->server_context(name);
    if (!context) {
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("metrics.listener=https://{}:{} needs the keystore of a TLS listener of this node, "
                                    "and {}; set metrics.ssl.listener.name to an SSL or SASL_SSL listener",
                                    address.host, address.port,
                                    name.empty() ? "there is none" : "listener " + name + " is not one"));
    }
    auto client_auth = tls::parse_client_auth(cfg.properties.get("metrics.ssl.client.auth").value_or("none"));
    if (!client_auth.ok()) return client_auth.error();
    return metrics::EndpointTls{context, *client_auth};
  }

  void start_cleaner() {
    const auto& cfg = state.config;
    if (!cfg.log_cleaner_enable || cfg.log_cleaner_threads <= 0 || !state.logs || !state.replicas) return;
    storage::LogCleanerOptions options;
    options.threads = cfg.log_cleaner_threads;
    options.backoff_ms = cfg.log_cleaner_backoff_ms;
    options.io_bytes_per_second = cfg.log_cleaner_io_max_bytes_per_second;
    options.dedupe_buffer_bytes = static_cast<std::size_t>(cfg.log_cleaner_dedupe_buffer_size);
    // Only below the high watermark: what followers may still truncate is never rewritten.
    cleaner = std::make_unique<storage::LogCleaner>(*state.logs, options,
                                                    [this](const storage::TopicPartition& tp) -> std::optional<std::int64_t> {
                                                      auto hosted = state.replicas->get(tp);
                                                      if (!hosted) return std::nullopt;
                                                      return hosted->high_watermark();
                                                    });
    cleaner->start();
  }

  void run_maintenance() {
    const auto flush_every = std::max<std::int64_t>(
        100, std::min<std::int64_t>(state.config.log_flush_scheduler_interval_ms > 0
                                        ? state.config.log_flush_scheduler_interval_ms
                                        : 1000,
                                    1000));
    const auto retention_every = std::max<std::int64_t>(1000, state.config.log_retention_check_interval_ms);
    std::int64_t next_retention = state.now_ms() + retention_every;
    const auto producers_every = std::max<std::int64_t>(1000, state.config.producer_id_expiration_check_interval_ms);
    std::int64_t next_producer_check = state.now_ms() + producers_every;
    std::unique_lock lock(maintenance_mu);
    while (!stopping) {
      maintenance_cv.wait_for(lock, std::chrono::milliseconds(flush_every));
      if (stopping) break;
      lock.unlock();
      auto now = state.now_ms();
      if (auto flushed = state.logs->maybe_flush_all(now); !flushed.ok())
        log::error("flushing logs: {}", flushed.error().message);
      state.image_waiters.on_image(*state.image());  // answers the waiters whose time is up
      if (now >= next_retention) {
        if (auto cleaned = state.logs->enforce_retention_all(now); !cleaned.ok())
          log::error("enforcing retention: {}", cleaned.error().message);
        next_retention = now + retention_every;
      }
      if (now >= next_producer_check) {
        if (auto expired = state.logs->expire_producers_all(now, state.config.producer_id_expiration_ms))
          log::info("forgot {} producer(s) idle for producer.id.expiration.ms={}", expired,
                    state.config.producer_id_expiration_ms);
        next_producer_check = now + producers_every;
      }
      lock.lock();
    }
  }
};

Broker::Broker() : impl_(std::make_unique<Impl>()) {}
Broker::~Broker() { stop(); }

namespace {

// Fetch answers and produce requests are buffers of up to a few MiB, made and freed for every request.
// glibc's defaults give each one a fresh mmap (or trim the arena under it once freed), so every request
// pays the page faults and zeroing of new pages: a third of a replicating leader's CPU. Kept in the
// arenas instead, the heap stays at its high-water mark; after a connection storm HeapReturner
// (net/server.cpp) still gives it back with malloc_trim, which these thresholds do not limit.
void keep_large_buffers_mapped() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
#endif
}

}  // namespace

Result<std::unique_ptr<Broker>> Broker::create(config::BrokerConfig config) {
  keep_large_buffers_mapped();
  std::unique_ptr<Broker> broker(new Broker());
  auto& state = broker->impl_->state;
  state.config = std::move(config);
  const auto& cfg = state.config;

  for (const auto& line : cfg.startup_report()) log::warn("{}", line);
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
  auto tls = TlsReloader::create({&state.config});
  if (!tls.ok()) return tls.error();
  broker->impl_->tls = std::move(*tls);
  state.tls = broker->impl_->tls.get();
  state.topics = std::make_unique<TopicRegistry>(state.images);
  state.fetch_sessions = std::make_unique<FetchSessionCache>(cfg.max_incremental_fetch_session_cache_slots);
  state.quotas = std::make_unique<ClientQuotaManager>(
      QuotaWindowConfig{cfg.quota_window_num, std::int64_t{cfg.quota_window_size_seconds} * 1000});
  BULWARK_TRY(broker->impl_->open_replication());
  BULWARK_TRY(broker->impl_->open_cluster(metadata_dir));
  state.producer_ids = std::make_unique<ProducerIdAllocator>([impl = broker->impl_.get()] {
    return impl->allocate_producer_ids();
  });
  if (cfg.is_broker()) BULWARK_TRY(open_group_coordinator(state));
  if (cfg.is_broker()) BULWARK_TRY(open_txn_coordinator(state, replica_client_options(cfg, *broker->impl_->tls)));
  BULWARK_TRY(open_security(state));

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
  options.on_request_done = [&state](const std::string&, std::int16_t api_key, std::chrono::microseconds elapsed) {
    state.metrics.request_done(api_key, elapsed);
  };
  options.on_handshake_failed = [&state](const std::string& listener, std::string_view failure_class) {
    state.metrics.handshake_failed(listener, failure_class);
  };

  broker->impl_->router = std::make_unique<Router>(state);
  broker->impl_->server = std::make_unique<net::Server>(options, *broker->impl_->router);
  add_broker_collectors(state.metrics, state, *broker->impl_->server, *broker->impl_->tls);
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
    if (config::uses_tls(listener.protocol)) spec.tls = broker->impl_->tls->server_context(listener.listener);
    BULWARK_TRY(broker->impl_->server->add_listener(std::move(spec)));
  }
  return broker;
}

Status Broker::start() {
  const bool one_voter = impl_->sole_voter();
  if (one_voter) BULWARK_TRY(impl_->start_cluster());
  BULWARK_TRY(impl_->server->start());
  if (!one_voter) BULWARK_TRY(impl_->start_cluster());
  impl_->state.replicas->start();
  impl_->tls->start();
  BULWARK_TRY(impl_->start_metrics());
  impl_->started = true;
  impl_->maintenance = std::thread([this] { impl_->run_maintenance(); });
  impl_->start_cleaner();
  log::info("{} {} of cluster {} started", impl_->state.config.is_broker() ? "broker" : "controller",
            impl_->state.node_id(), impl_->state.cluster_id);
  return Status::success();
}

void Broker::stop() {
  if (!impl_ || !impl_->started) return;
  impl_->started = false;
  impl_->metrics_endpoint.reset();
  impl_->tls->stop();
  impl_->stop_cluster();
  // Waiting joins hear NOT_COORDINATOR (and find the partition's next leader) before the server closes.
  if (impl_->state.group_coordinators) impl_->state.group_coordinators->stop();
  if (impl_->state.txn_coordinators) impl_->state.txn_coordinators->stop();
  impl_->server->stop();
  impl_->router->stop();  // the appends that were running finish before the logs close
  if (impl_->cleaner) impl_->cleaner->stop();  // a cleaning in progress leaves a .cleaned file at most
  {
    std::lock_guard lock(impl_->maintenance_mu);
    impl_->stopping = true;
  }
  impl_->maintenance_cv.notify_all();
  if (impl_->maintenance.joinable()) impl_->maintenance.join();
  impl_->state.replicas->stop();  // writes the high watermark checkpoints
  for (const auto& tp : impl_->state.logs->list())
    if (auto log = impl_->state.logs->get(tp))
      if (auto flushed = log->flush(); !flushed.ok()) log::error("flushing {}: {}", log->dir().string(), flushed.error().message);
  impl_->state.logs->close();  // writes the recovery points and the clean-shutdown marker
  log::info("broker {} stopped", impl_->state.node_id());
}

// `storage format --add-scram`: the credentials wait in bulwark-scram-credentials.json (mode 0600) until
// the first active controller writes them into the metadata log, as Kafka's bootstrap records do.
Status add_scram_credentials(const config::BrokerConfig& config, const std::vector<security::sasl::ScramSpec>& specs) {
  std::filesystem::path metadata_dir = config.metadata_log_dir ? *config.metadata_log_dir : config.log_dirs.front();
  auto file = metadata_dir / "bulwark-scram-credentials.json";
  security::sasl::ScramCredentials credentials;
  if (auto text = read_file(file); text.ok()) {
    auto decoded = security::sasl::decode_scram_credentials(*text);
    if (!decoded.ok()) return make_error(decoded.error().kind, file.string() + ": " + decoded.error().message);
    credentials = std::move(*decoded);
  } else if (text.error().kind != ErrorKind::not_found) {
    return text.error();
  }
  for (const auto& spec : specs) credentials[spec.username][spec.mechanism] = spec.credential;
  return write_file_atomic(file, security::sasl::encode_scram_credentials(credentials), kPrivateFileMode,
                           Overwrite::allow);
}

void Broker::reload_certificates(std::string_view reason) { impl_->tls->reload_all(reason); }

std::uint16_t Broker::port(const std::string& listener) const { return impl_->server->bound_port(listener); }

}  // namespace bulwark::broker
