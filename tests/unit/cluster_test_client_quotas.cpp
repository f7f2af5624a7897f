// AlterClientQuotas as the controller decides it, applied to the image; DescribeClientQuotas over it.
#include <gtest/gtest.h>

#include "cluster/client_quotas.h"

namespace bulwark::cluster {
namespace {

namespace msg = wire::msg;
using Alter = msg::AlterClientQuotasRequest;
using Describe = msg::DescribeClientQuotasRequest;

Alter::EntryData entry(std::vector<std::pair<std::string, std::optional<std::string>>> entity,
                       std::vector<std::pair<std::string, std::optional<double>>> ops) {
  Alter::EntryData e;
  for (auto& [type, name] : entity) e.entity.push_back({type, name, {}});
  for (auto& [key, value] : ops) e.ops.push_back({key, value.value_or(0), !value.has_value(), {}});
  return e;
}

ImagePtr apply_quota_records(const ImagePtr& image, const std::vector<AnyRecord>& records) {
  std::vector<PositionedRecord> positioned;
  std::int64_t offset = image->offset();
  for (const auto& r : records) positioned.push_back({r, LogPosition{++offset, 1}});
  auto applied = apply_records(image, positioned);
  EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().message);
  return applied.ok() ? *applied : image;
}

TEST(AlterClientQuotas, SetsAndRemovesQuotasAsRecords) {
  Alter request;
  request.entries.push_back(entry({{"user", "alice"}}, {{"producer_byte_rate", 1024}, {"consumer_byte_rate", 2048}}));
  request.entries.push_back(entry({{"user", "alice"}, {"client-id", std::nullopt}}, {{"request_percentage", 12.5}}));
  auto decision = alter_client_quotas(*MetadataImage::empty(), request);
  ASSERT_EQ(decision.response.entries.size(), 2u);
  EXPECT_EQ(decision.response.entries[0].error_code, 0);
  EXPECT_EQ(decision.response.entries[1].error_code, 0);
  ASSERT_EQ(decision.records.size(), 3u);
  auto image = apply_quota_records(MetadataImage::empty(), decision.records);
  EXPECT_TRUE(image_has_client_quotas(*image, request, decision.response));
  EXPECT_FALSE(image_has_client_quotas(*MetadataImage::empty(), request, decision.response));
  const ClientQuotaEntity alice{{"user", "alice"}};
  EXPECT_EQ(image->client_quotas().at(alice).at("producer_byte_rate"), 1024);
  const ClientQuotaEntity alice_default_client{{"client-id", std::nullopt}, {"user", "alice"}};
  EXPECT_EQ(image->client_quotas().at(alice_default_client).at("request_percentage"), 12.5);

  Alter removal;
  removal.entries.push_back(entry({{"user", "alice"}}, {{"producer_byte_rate", std::nullopt}, {"consumer_byte_rate", std::nullopt}}));
  auto removed = alter_client_quotas(*image, removal);
  EXPECT_EQ(removed.records.size(), 2u);
  image = apply_quota_records(image, removed.records);
  EXPECT_FALSE(image->client_quotas().contains(alice));
  EXPECT_TRUE(image_has_client_quotas(*image, removal, removed.response));
  // Removing what is not set writes nothing.
  EXPECT_TRUE(alter_client_quotas(*image, removal).records.empty());
}

TEST(AlterClientQuotas, RefusesWhatKafkaRefuses) {
  Alter request;
  request.entries.push_back(entry({}, {{"producer_byte_rate", 1}}));
  request.entries.push_back(entry({{"user", "a"}, {"user", "b"}}, {{"producer_byte_rate", 1}}));
  request.entries.push_back(entry({{"user", ""}}, {{"producer_byte_rate", 1}}));
  request.entries.push_back(entry({{"ip", "10.0.0.1"}, {"user", "a"}}, {{"connection_creation_rate", 1}}));
  request.entries.push_back(entry({{"user", "a"}}, {{"no_such_rate", 1}}));
  request.entries.push_back(entry({{"user", "a"}}, {{"producer_byte_rate", 10.5}}));
  request.entries.push_back(entry({{"group", "g"}}, {{"producer_byte_rate", 1}}));
  request.entries.push_back(entry({{"user", "a"}}, {{"producer_byte_rate", 100}}));  // valid
  auto decision = alter_client_quotas(*MetadataImage::empty(), request);
  ASSERT_EQ(decision.response.entries.size(), 8u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(decision.response.entries[i].error_code, 42) << i;
  EXPECT_EQ(decision.response.entries[4].error_message, "Invalid configuration key no_such_rate");
  EXPECT_EQ(decision.response.entries[5].error_message, "Configuration producer_byte_rate must be a Long value");
  EXPECT_EQ(decision.response.entries[6].error_code, 35);
  EXPECT_EQ(decision.response.entries[7].error_code, 0);
  EXPECT_EQ(decision.records.size(), 1u);  // only the valid entry's

  request.validate_only = true;
  EXPECT_TRUE(alter_client_quotas(*MetadataImage::empty(), request).records.empty());
}

TEST(DescribeClientQuotas, MatchesExactDefaultAndAnyWithStrictness) {
  Alter request;
  request.entries.push_back(entry({{"user", "alice"}}, {{"producer_byte_rate", 1}}));
  request.entries.push_back(entry({{"user", std::nullopt}}, {{"producer_byte_rate", 2}}));
  request.entries.push_back(entry({{"user", "alice"}, {"client-id", "c1"}}, {{"producer_byte_rate", 3}}));
  auto image = apply_quota_records(MetadataImage::empty(), alter_client_quotas(*MetadataImage::empty(), request).records);
  auto count = [&](std::vector<Describe::ComponentData> components, bool strict) {
    Describe d;
    d.components = std::move(components);
    d.strict = strict;
    auto response = describe_client_quotas(*image, d);
    EXPECT_EQ(response.error_code, 0);
    return response.entries ? response.entries->size() : 0;
  };
  EXPECT_EQ(count({{"user", 0, "alice", {}}}, true), 1u);
  EXPECT_EQ(count({{"user", 0, "alice", {}}}, false), 2u);
  EXPECT_EQ(count({{"user", 1, std::nullopt, {}}}, true), 1u);
  EXPECT_EQ(count({{"user", 2, std::nullopt, {}}}, true), 2u);
  EXPECT_EQ(count({{"user", 0, "alice", {}}, {"client-id", 0, "c1", {}}}, true), 1u);
  EXPECT_EQ(count({}, false), 3u);

  Describe duplicate;
  duplicate.components = {{"user", 2, std::nullopt, {}}, {"user", 1, std::nullopt, {}}};
  EXPECT_EQ(describe_client_quotas(*image, duplicate).error_code, 42);
}

}  // namespace
}  // namespace bulwark::cluster
