// Kafka's error codes, in one place at the protocol edge. Subsystems return their own error values;
// handlers translate them here, so the numbers never leak deeper into the code.
#pragma once

#include <cstdint>

namespace bulwark::broker {

enum class KafkaError : std::int16_t {
  unknown_server_error = -1,
  none = 0,
  offset_out_of_range = 1,
  corrupt_message = 2,
  unknown_topic_or_partition = 3,
  invalid_fetch_size = 4,
  leader_not_available = 5,
  not_leader_or_follower = 6,
  request_timed_out = 7,
  message_too_large = 10,
  invalid_topic_exception = 17,
  record_list_too_large = 18,
  not_enough_replicas = 19,
  not_enough_replicas_after_append = 20,
  invalid_required_acks = 21,
  topic_authorization_failed = 29,
  group_authorization_failed = 30,
  cluster_authorization_failed = 31,
  invalid_timestamp = 32,
  unsupported_sasl_mechanism = 33,
  illegal_sasl_state = 34,
  unsupported_version = 35,
  topic_already_exists = 36,
  invalid_partitions = 37,
  invalid_replication_factor = 38,
  invalid_replica_assignment = 39,
  invalid_config = 40,
  not_controller = 41,
  invalid_request = 42,
  unsupported_for_message_format = 43,
  policy_violation = 44,
  out_of_order_sequence_number = 45,
  duplicate_sequence_number = 46,
  invalid_producer_epoch = 47,
  invalid_txn_state = 48,
  invalid_producer_id_mapping = 49,
  invalid_transaction_timeout = 50,
  transaction_coordinator_fenced = 52,
  sasl_authentication_failed = 58,
  unknown_producer_id = 59,
  kafka_storage_error = 56,
  transactional_id_authorization_failed = 53,
  security_disabled = 54,
  operation_not_attempted = 55,
  fetch_session_id_not_found = 70,
  invalid_fetch_session_epoch = 71,
  topic_deletion_disabled = 73,
  fenced_leader_epoch = 74,
  unknown_leader_epoch = 75,
  unsupported_compression_type = 76,
  invalid_record = 87,
  resource_not_found = 91,
  unknown_topic_id = 100,
  inconsistent_topic_id = 103,
};

constexpr std::int16_t code(KafkaError e) { return static_cast<std::int16_t>(e); }

}  // namespace bulwark::broker
