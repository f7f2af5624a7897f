// Bulwark's configuration: Kafka's server.properties, read with java.util.Properties rules, typed with
// Kafka's key names, defaults and validators, and checked across keys the way KafkaConfig does.
//
// Flow: load_broker_config(path) = parse_properties -> build_broker_config (per-key type and range
// checks) -> validate (cross-key checks). Every problem is reported, not only the first, one per line,
// as "<file>:<line>: <key>: <what is wrong>" (no line when the key was not set and its default is at
// fault). Secrets are held as Password, which never prints its value.
//
// Thread safety: all types are plain values; a const BrokerConfig may be shared between threads.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace bulwark::config {

// ---------------------------------------------------------------------------------------------------
// Secrets. The value is reachable only through reveal(), so it cannot end up in a log line by accident.
class Password {
 public:
  Password() = default;
  explicit Password(std::string value) : value_(std::move(value)) {}
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  bool operator==(const Password&) const = default;

 private:
  std::string value_;
};
std::ostream& operator<<(std::ostream& out, const Password& password);  // prints "[hidden]"

// ---------------------------------------------------------------------------------------------------
// java.util.Properties. Differences from Java: the file is read as UTF-8 (Java's load(InputStream)
// reads ISO-8859-1), and \uXXXX escapes are stored as UTF-8.
struct Property {
  std::string key;
  std::string value;  // unescaped, untrimmed (Java keeps trailing blanks; typed readers trim)
  int line = 0;       // 1-based line where the logical line starts
};

struct Properties {
  std::string source;                // name used in messages, usually the file name
  std::vector<Property> entries;     // one per key, in first-seen order, value of the last occurrence
  std::vector<std::string> notes;    // duplicate keys ("file:14: key is set again (first on line 3) ...")

  const Property* find(std::string_view key) const;
  std::optional<std::string> get(std::string_view key) const;
  std::string where(const Property& p) const { return source + ":" + std::to_string(p.line); }
};

Result<Properties> parse_properties(std::string_view text, std::string source = "properties");
// `source` in messages is the path as given.
Result<Properties> load_properties(const std::filesystem::path& path);

// ---------------------------------------------------------------------------------------------------
// The key table (keys.cpp): every key Bulwark knows, its Kafka type, default and validator, and whether
// Bulwark acts on it yet. To change what is enforced, edit the status column of that one table.
enum class KeyType { int16, int32, int64, boolean, string, list, class_name, password };
enum class KeyStatus {
  supported,     // read and acted on
  not_enforced,  // accepted and validated, but the broker does not act on it yet (reported at start-up)
};

struct KeySpec {
  std::string_view name;
  KeyType type;
  std::optional<std::string_view> default_value;  // nullopt = Kafka's null (no default)
  KeyStatus status;
  bool per_listener = false;  // may also be set as listener.name.<listener lower case>.<name>
  // Validator: integers in [min, max]; strings (or each list element) one of `one_of`.
  std::int64_t min = INT64_MIN;
  std::int64_t max = INT64_MAX;
  std::vector<std::string_view> one_of = {};
  bool case_insensitive = false;
};

const std::vector<KeySpec>& key_specs();
const KeySpec* find_key_spec(std::string_view name);
// Checks one raw value against its spec (type, range, allowed values); nullopt = valid. The message
// names neither file nor key (the caller adds them) and never repeats a secret value.
std::optional<std::string> check_key_value(const KeySpec& spec, std::string_view raw);

// Dynamic broker configs (kafka-configs --alter --entity-type brokers, stored in the metadata log).
using DynamicConfigs = std::map<std::string, std::string, std::less<>>;
// Why `key` (= value; nullopt = deleted) cannot be set at run time, in Kafka's words; nullopt when it
// can. per_broker: for one broker rather than the cluster default (the broker named "").
std::optional<std::string> dynamic_broker_config_error(std::string_view key, std::optional<std::string_view> value,
                                                       bool per_broker);
// Whether a key's value is a secret that DescribeConfigs and logs never show (passwords, keys, JAAS).
bool is_sensitive_key(std::string_view key);
// Whether `key` is one of the TLS keys a listener reloads (with or without the listener prefix).
bool is_dynamic_tls_key(std::string_view key);
// `properties` with the dynamic configs layered over them: the cluster defaults, then this broker's.
Properties with_dynamic_configs(Properties properties, const DynamicConfigs* cluster_defaults,
                                const DynamicConfigs* this_broker);

// Topic-level configs (Kafka's LogConfig), as CreateTopics and a stored topic carry them. Each is
// checked with the same validator as server.properties and has the broker key it defaults from.
struct TopicKeySpec {
  KeySpec spec;                   // spec.name is the topic key; spec.status says whether Bulwark acts on it
  std::string_view broker_key;    // the server.properties synonym ("" = none)
};
const std::vector<TopicKeySpec>& topic_key_specs();
// Why key=value cannot be a topic config (unknown key, bad value, a Kafka key Bulwark does not act on
// yet); nullopt = it can. Kafka's wording, so tools show what they would show against Kafka.
std::optional<std::string> topic_config_error(std::string_view key, std::string_view value);

// ---------------------------------------------------------------------------------------------------
enum class SecurityProtocol { plaintext, ssl, sasl_plaintext, sasl_ssl };
std::string_view to_string(SecurityProtocol protocol);
std::optional<SecurityProtocol> parse_security_protocol(std::string_view name);  // case-insensitive
inline bool uses_tls(SecurityProtocol p) { return p == SecurityProtocol::ssl || p == SecurityProtocol::sasl_ssl; }
inline bool uses_sasl(SecurityProtocol p) {
  return p == SecurityProtocol::sasl_plaintext || p == SecurityProtocol::sasl_ssl;
}

enum class ClientAuth { none, requested, required };

struct Endpoint {
  std::string listener;  // normalised to upper case, as Kafka's ListenerName.normalised
  std::string host;      // "" = all interfaces (in listeners); IPv6 without brackets
  std::uint16_t port = 0;
  SecurityProtocol protocol = SecurityProtocol::plaintext;
  std::string to_string() const;  // NAME://host:port, IPv6 in brackets
};

// Parses "NAME://host:port,..." (Kafka's EndPoint grammar). Protocols are filled from `protocol_map`;
// a listener missing from it is an error ("No security protocol defined for listener X").
Result<std::vector<Endpoint>> parse_listeners(std::string_view value,
                                              const std::map<std::string, SecurityProtocol>& protocol_map);
// "NAME:PROTOCOL,..." with names normalised to upper case.
Result<std::map<std::string, SecurityProtocol>> parse_security_protocol_map(std::string_view value);

struct QuorumVoter {
  std::int32_t id = -1;
  std::string host;  // IPv6 without brackets
  std::uint16_t port = 0;
};
// "id@host:port,..." ; IPv6 as id@[::1]:port.
Result<std::vector<QuorumVoter>> parse_quorum_voters(std::string_view value);

// The effective TLS and SASL settings of one listener: listener.name.<l>.<key> if set, else <key>, else
// Kafka's default. Empty strings mean "not set".
struct ListenerSecurity {
  std::string listener;
  SecurityProtocol protocol = SecurityProtocol::plaintext;

  std::string keystore_type;  // JKS, PKCS12 or PEM (upper case)
  std::string keystore_location;
  Password keystore_password;
  Password keystore_key;                // PEM private key in the config itself
  Password keystore_certificate_chain;  // PEM chain in the config itself
  Password key_password;
  std::string truststore_type;
  std::string truststore_location;
  Password truststore_password;
  Password truststore_certificates;  // PEM certificates in the config itself
  // On SASL_SSL listeners only listener.name.<l>.ssl.client.auth counts (KIP-684), not ssl.client.auth.
  ClientAuth client_auth = ClientAuth::none;
  std::vector<std::string> enabled_protocols;  // TLSv1.2, TLSv1.3
  std::string ssl_protocol;                    // ssl.protocol
  std::vector<std::string> cipher_suites;      // empty = library defaults
  std::string endpoint_identification_algorithm;
  std::string principal_mapping_rules;
  std::string crl_location;       // ssl.crl.location
  bool allow_dn_changes = false;  // ssl.allow.dn.changes
  bool allow_san_changes = false;  // ssl.allow.san.changes

  std::vector<std::string> sasl_enabled_mechanisms;
  // listener.name.<l>.<mechanism lower case>.sasl.jaas.config, keyed by mechanism in upper case.
  std::map<std::string, Password> sasl_jaas_configs;
};

enum class ProcessRole { broker, controller };

struct BrokerConfig {
  std::string source;     // file name for messages
  Properties properties;  // everything as read, for security_for and the start-up report

  std::int32_t node_id = -1;  // node.id, or broker.id when only that is set
  // A ZooKeeper-mode configuration (zookeeper.connect set, process.roles not): Bulwark runs it as a
  // one-node cluster. process_roles is then broker+controller, quorum_voters holds only this node (at its
  // inter-broker listener's address; a one-voter quorum never dials it), controller_listener_names stays
  // empty, and check_storage() formats unformatted log directories itself, as ZooKeeper-mode Kafka does.
  bool zookeeper_mode = false;
  std::vector<ProcessRole> process_roles;
  bool is_broker() const;
  bool is_controller() const;
  std::vector<QuorumVoter> quorum_voters;
  std::vector<std::string> controller_listener_names;  // upper case

  std::map<std::string, SecurityProtocol> security_protocol_map;
  std::vector<Endpoint> listeners;
  // advertised.listeners, or listeners minus the controller listeners. An empty host is replaced by
  // this machine's canonical host name (as Kafka does: InetAddress.getLocalHost().getCanonicalHostName()),
  // see canonical_host_name().
  std::vector<Endpoint> advertised_listeners;
  std::string inter_broker_listener_name;  // inter.broker.listener.name or the security.inter.broker.protocol name
  SecurityProtocol inter_broker_security_protocol = SecurityProtocol::plaintext;

  std::string authorizer_class_name;
  std::vector<std::string> super_users;  // "User:alice" entries, split on ';'
  bool allow_everyone_if_no_acl_found = false;
  std::vector<std::string> sasl_enabled_mechanisms;
  std::string sasl_mechanism_inter_broker_protocol;

  std::vector<std::string> log_dirs;  // log.dirs, else log.dir
  std::optional<std::string> metadata_log_dir;
  std::int32_t num_partitions = 1;
  std::int32_t default_replication_factor = 1;
  bool auto_create_topics_enable = true;
  bool delete_topic_enable = true;
  std::int32_t log_segment_bytes = 1 << 30;
  std::int64_t log_roll_ms = 0;       // log.roll.ms over log.roll.hours
  std::int64_t log_retention_ms = 0;  // ms over minutes over hours; -1 = unlimited
  std::int64_t log_retention_bytes = -1;
  std::int64_t log_retention_check_interval_ms = 0;
  std::int64_t log_flush_interval_messages = 0;
  std::int64_t log_flush_interval_ms = 0;  // falls back to log.flush.scheduler.interval.ms
  std::int64_t log_flush_scheduler_interval_ms = 0;
  std::string compression_type;
  std::string log_message_timestamp_type;
  std::vector<std::string> log_cleanup_policy;
  // The log cleaner (storage/cleaner.h).
  bool log_cleaner_enable = true;
  std::int32_t log_cleaner_threads = 1;
  std::int64_t log_cleaner_backoff_ms = 15000;
  double log_cleaner_io_max_bytes_per_second = 1.7976931348623157e308;
  std::int64_t log_cleaner_dedupe_buffer_size = 128ll << 20;
  std::int64_t log_cleaner_delete_retention_ms = 86400000;
  double log_cleaner_min_cleanable_ratio = 0.5;
  std::int64_t log_cleaner_min_compaction_lag_ms = 0;
  std::int64_t log_cleaner_max_compaction_lag_ms = INT64_MAX;

  std::int32_t message_max_bytes = 0;
  std::int32_t socket_request_max_bytes = 0;
  std::int32_t socket_send_buffer_bytes = 0;
  std::int32_t socket_receive_buffer_bytes = 0;
  std::int32_t num_network_threads = 0;
  std::int32_t num_io_threads = 0;
  std::int32_t queued_max_requests = 0;
  std::int32_t max_connections = 0;
  std::map<std::string, std::int32_t> listener_max_connections;  // listener.name.<l>.max.connections, by listener
  std::int32_t max_connections_per_ip = 2147483647;
  std::vector<std::pair<std::string, std::int32_t>> max_connections_per_ip_overrides;  // host -> limit
  std::int64_t connections_max_idle_ms = 0;
  std::int64_t request_receive_timeout_ms = 30000;  // bulwark.request.receive.timeout.ms
  int ssl_expiry_warning_days = 30;                 // bulwark.ssl.certificate.expiry.warning.days
  bool ssl_reload_on_file_change = true;            // bulwark.ssl.reload.on.file.change
  std::string metrics_listener = "http://127.0.0.1:9404";  // metrics.listener ("" = off)
  bool metrics_listener_set = false;                // given in the file (then a bind failure stops start-up)
  std::int64_t queued_max_request_bytes = -1;       // -1 = unlimited
  std::int32_t sasl_server_max_receive_size = 524288;
  std::int32_t connection_failed_authentication_delay_ms = 100;
  std::int32_t quota_window_num = 11;           // quota.window.num
  std::int32_t quota_window_size_seconds = 1;   // quota.window.size.seconds

  std::int16_t offsets_topic_replication_factor = 3;
  std::int32_t offsets_topic_num_partitions = 50;
  std::int32_t offsets_topic_segment_bytes = 104857600;
  std::int32_t offsets_retention_minutes = 0;
  std::int32_t offsets_commit_timeout_ms = 5000;
  std::int32_t group_initial_rebalance_delay_ms = 0;
  std::int32_t group_min_session_timeout_ms = 0;
  std::int32_t group_max_session_timeout_ms = 0;
  bool consumer_group_protocol = false;               // "consumer" in group.coordinator.rebalance.protocols (KIP-848)
  std::int32_t consumer_group_session_timeout_ms = 45000;    // group.consumer.session.timeout.ms
  std::int32_t consumer_group_heartbeat_interval_ms = 5000;  // group.consumer.heartbeat.interval.ms
  std::int32_t consumer_group_max_size = INT32_MAX;          // group.consumer.max.size
  std::int16_t transaction_state_log_replication_factor = 3;
  std::int32_t transaction_state_log_min_isr = 2;
  std::int32_t transaction_state_log_num_partitions = 50;
  std::int32_t transaction_state_log_segment_bytes = 104857600;
  std::int32_t transaction_max_timeout_ms = 900000;
  std::int32_t transactional_id_expiration_ms = 604800000;
  std::int32_t transaction_abort_timed_out_transaction_cleanup_interval_ms = 10000;
  std::int32_t transaction_remove_expired_transaction_cleanup_interval_ms = 3600000;
  // KIP-854: a partition forgets an idempotent producer idle this long (none with an open transaction).
  std::int32_t producer_id_expiration_ms = 86400000;
  std::int32_t producer_id_expiration_check_interval_ms = 600000;
  std::int32_t min_insync_replicas = 1;
  bool unclean_leader_election_enable = false;
  std::int64_t replica_lag_time_max_ms = 0;
  std::int32_t replica_fetch_wait_max_ms = 500;
  std::int32_t replica_fetch_min_bytes = 1;
  std::int32_t replica_fetch_max_bytes = 1048576;
  std::int32_t max_incremental_fetch_session_cache_slots = 1000;
  std::int32_t replica_fetch_response_max_bytes = 10485760;
  std::int32_t replica_fetch_backoff_ms = 1000;
  std::int32_t replica_socket_timeout_ms = 30000;
  std::int64_t replica_high_watermark_checkpoint_interval_ms = 5000;
  bool auto_leader_rebalance_enable = true;
  std::int64_t leader_imbalance_check_interval_seconds = 300;
  std::int32_t leader_imbalance_per_broker_percentage = 10;

  // KRaft quorum timing (controller.quorum.*) and broker lifecycle.
  std::int32_t quorum_election_timeout_ms = 1000;
  std::int32_t quorum_fetch_timeout_ms = 2000;
  std::int32_t quorum_election_backoff_max_ms = 1000;
  std::int32_t quorum_request_timeout_ms = 2000;
  std::int32_t quorum_retry_backoff_ms = 20;
  std::int32_t broker_heartbeat_interval_ms = 2000;
  std::int32_t broker_session_timeout_ms = 9000;
  std::optional<std::string> broker_rack;
  // A node snapshots its metadata image after this many bytes of records (and drops the log behind it).
  std::int64_t metadata_snapshot_bytes = 20971520;

  const Endpoint* find_listener(std::string_view name) const;  // name in any case
  ListenerSecurity security_for(std::string_view listener_name) const;
  // Warnings for start-up, one per line: unknown keys, keys accepted but not enforced yet, duplicate
  // keys, per-listener keys naming no listener, ... Never contains a secret value.
  std::vector<std::string> startup_report() const;
};

// Typed config with per-key checks (type, range, allowed values). Does not run validate().
Result<BrokerConfig> build_broker_config(const Properties& properties);
// Cross-key checks: listeners and the protocol map, controller listeners and quorum voters (KRaft) or
// broker.id (ZooKeeper mode), keystores of TLS listeners, the inter-broker listener, log.dirs.
Status validate(const BrokerConfig& config);
// load_properties + build_broker_config + validate.
Result<BrokerConfig> load_broker_config(const std::filesystem::path& path);

// This machine's canonical host name (getaddrinfo AI_CANONNAME of gethostname), "localhost" if
// neither works. Used for advertised listeners with an empty host, like Kafka.
std::string canonical_host_name();

}  // namespace bulwark::config

template <>
struct fmt::formatter<bulwark::config::Password> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const bulwark::config::Password&, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format("[hidden]", ctx);
  }
};
