// Small record builders shared by the cluster image tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cluster/image.h"

namespace bulwark::cluster::builders {

inline Uuid uuid(std::uint32_t n, std::uint8_t kind = 0xAA) {
  Uuid u{};
  u[0] = kind;
  u[12] = static_cast<std::uint8_t>(n >> 24);
  u[13] = static_cast<std::uint8_t>(n >> 16);
  u[14] = static_cast<std::uint8_t>(n >> 8);
  u[15] = static_cast<std::uint8_t>(n);
  return u;
}

inline AnyRecord topic(const std::string& name, const Uuid& id) {
  rec::TopicRecord r;
  r.name = name;
  r.topic_id = id;
  return make_record(r);
}

inline AnyRecord partition(const Uuid& topic_id, std::int32_t index, std::vector<std::int32_t> replicas,
                           std::vector<std::int32_t> isr, std::int32_t leader, std::int32_t leader_epoch = 0,
                           std::int32_t partition_epoch = 0) {
  rec::PartitionRecord r;
  r.topic_id = topic_id;
  r.partition_id = index;
  r.replicas = std::move(replicas);
  r.isr = std::move(isr);
  r.leader = leader;
  r.leader_epoch = leader_epoch;
  r.partition_epoch = partition_epoch;
  return make_record(r);
}

inline AnyRecord broker(std::int32_t id, std::int64_t epoch, bool fenced = true,
                        std::vector<std::pair<std::string, std::uint16_t>> listeners = {{"EXTERNAL", 9092}}) {
  rec::RegisterBrokerRecord r;
  r.broker_id = id;
  r.broker_epoch = epoch;
  r.incarnation_id = uuid(static_cast<std::uint32_t>(id), 0xBB);
  r.fenced = fenced;
  r.rack = "rack-" + std::to_string(id % 2);
  for (const auto& [name, port] : listeners) {
    auto& e = r.end_points.emplace_back();
    e.name = name;
    e.host = "127.0.0." + std::to_string(id);
    e.port = port;
    e.security_protocol = 1;
  }
  return make_record(r);
}

inline AnyRecord config(ConfigResourceType type, const std::string& resource, const std::string& key,
                        std::optional<std::string> value) {
  rec::ConfigRecord r;
  r.resource_type = static_cast<std::int8_t>(type);
  r.resource_name = resource;
  r.name = key;
  r.value = std::move(value);
  return make_record(r);
}

inline AnyRecord feature(const std::string& name, std::int16_t level) {
  rec::FeatureLevelRecord r;
  r.name = name;
  r.feature_level = level;
  return make_record(r);
}

inline AnyRecord acl(const Uuid& id, const std::string& principal, std::int8_t operation = 3) {
  rec::AccessControlEntryRecord r;
  r.id = id;
  r.resource_type = 2;  // TOPIC
  r.resource_name = "orders";
  r.pattern_type = 3;  // LITERAL
  r.principal = principal;
  r.host = "*";
  r.operation = operation;
  r.permission_type = 3;  // ALLOW
  return make_record(r);
}

inline AnyRecord scram(const std::string& user, std::int8_t mechanism, std::int32_t iterations = 4096) {
  rec::UserScramCredentialRecord r;
  r.name = user;
  r.mechanism = mechanism;
  r.salt = Bytes{1, 2, 3};
  r.stored_key = Bytes{4, 5, 6};
  r.server_key = Bytes{7, 8, 9};
  r.iterations = iterations;
  return make_record(r);
}

// Applies records on top of base, expecting every one to fit; the image ends at base offset + count.
inline ImagePtr apply_ok(const ImagePtr& base, const std::vector<AnyRecord>& records) {
  MetadataDelta delta(base);
  for (const AnyRecord& r : records) {
    Status s = delta.apply(r);
    EXPECT_TRUE(s.ok()) << r.name() << ": " << s.error().message;
  }
  return delta.build(LogPosition{base->offset() + static_cast<std::int64_t>(records.size()), 1});
}

// The error of applying one record on top of base (which must fail).
inline Error apply_fails(const ImagePtr& base, const AnyRecord& record) {
  MetadataDelta delta(base);
  Status s = delta.apply(record);
  EXPECT_FALSE(s.ok()) << record.name() << " was accepted";
  // The failed record left nothing behind.
  EXPECT_TRUE(*delta.build(base->position()) == *base) << record.name() << " was half applied";
  return s.ok() ? Error{} : s.error();
}

}  // namespace bulwark::cluster::builders
