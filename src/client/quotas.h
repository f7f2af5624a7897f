// Client quota administration as kafka-configs.sh does it for --entity-type users/clients/ips: the
// entity and the --add-config/--delete-config spellings turned into AlterClientQuotas and
// DescribeClientQuotas requests, the round trips, and Kafka's printed forms.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "client/client.h"

namespace bulwark::client {

// (entity type as the protocol names it: "user", "client-id", "ip"; name, nullopt = the default).
using QuotaEntity = std::vector<std::pair<std::string, std::optional<std::string>>>;

// kafka-configs.sh's --entity-type values (users, clients, ips; singular accepted) paired in order
// with the --entity-name / --entity-default given after them (names.size() may be smaller for
// --describe: a type without a name means every entity of that type).
struct QuotaEntityArgs {
  std::vector<std::string> types;
  std::vector<std::optional<std::string>> names;  // nullopt = --entity-default
};
struct QuotaFilterComponent {
  std::string entity_type;
  std::int8_t match_type = 0;  // 0 this name, 1 the default, 2 any
  std::optional<std::string> match;
};
// For --alter: every type needs a name or --entity-default. Errors (invalid_argument) in the tool's words.
Result<QuotaEntity> quota_entity(const QuotaEntityArgs& args);
Result<std::vector<QuotaFilterComponent>> quota_filter(const QuotaEntityArgs& args);

struct QuotaOp {
  std::string key;
  std::optional<double> value;  // nullopt = remove
};
// --add-config 'producer_byte_rate=1024,consumer_byte_rate=2048' and --delete-config 'k1,k2'.
Result<std::vector<QuotaOp>> quota_ops(const std::string& add_config, const std::vector<std::string>& delete_config);

// Java's Double.toString (what kafka-configs.sh prints): 1024.0, 0.5, 1.0E7.
std::string java_double(double value);
// "user-principal 'alice', client-id 'c1'", "the default user-principal".
std::string render_quota_entity(const QuotaEntity& entity);
// "Quota configs for user-principal 'alice' are producer_byte_rate=1024.0, consumer_byte_rate=2048.0"
std::string render_quota_line(const QuotaEntity& entity, const std::vector<std::pair<std::string, double>>& values);
// "Completed updating config for user alice." / "Completed updating default config for users in the cluster."
std::string render_alter_done(const QuotaEntityArgs& args);

// ---- Round trips ---------------------------------------------------------------------------------
// A refused alteration comes back as an Error with the broker's code name and message.
Status alter_client_quotas(AdminConnection& connection, const QuotaEntity& entity, const std::vector<QuotaOp>& ops);
struct QuotaEntry {
  QuotaEntity entity;
  std::vector<std::pair<std::string, double>> values;  // sorted by key
};
Result<std::vector<QuotaEntry>> describe_client_quotas(AdminConnection& connection,
                                                       const std::vector<QuotaFilterComponent>& filter, bool strict);

}  // namespace bulwark::client
