// MetadataImage built by MetadataDelta: Kafka's semantics for each record kind, and records that do
// not fit are errors that leave the image (and the delta) as they were.
#include <gtest/gtest.h>

#include "cluster/image.h"
#include "cluster_test_records_builders.h"

namespace bulwark::cluster {
namespace {

using namespace builders;

const Uuid kOrders = uuid(1);
const Uuid kPayments = uuid(2);

ImagePtr two_topics() {
  return apply_ok(MetadataImage::empty(), {
                                              feature("metadata.version", 19),
                                              broker(1, 10, false),
                                              broker(2, 11, false),
                                              broker(3, 12, false),
                                              topic("orders", kOrders),
                                              partition(kOrders, 0, {1, 2, 3}, {1, 2, 3}, 1),
                                              partition(kOrders, 1, {2, 3, 1}, {2, 3}, 2, 4, 6),
                                              topic("payments", kPayments),
                                              partition(kPayments, 0, {3}, {3}, 3),
                                          });
}

AnyRecord change(const Uuid& topic_id, std::int32_t index, auto&& set) {
  rec::PartitionChangeRecord r;
  r.topic_id = topic_id;
  r.partition_id = index;
  set(r);
  return make_record(r);
}

TEST(MetadataImage, EmptyImage) {
  ImagePtr image = MetadataImage::empty();
  EXPECT_EQ(image->offset(), -1);
  EXPECT_EQ(image->metadata_version(), 0);
  EXPECT_EQ(image->topic_count(), 0u);
  EXPECT_EQ(image->topic("orders"), nullptr);
  EXPECT_TRUE(image->brokers().empty());
  EXPECT_TRUE(image->acls().empty());
  EXPECT_EQ(image->producer_ids().next_producer_id, 0);
}

TEST(MetadataImage, TopicsByNameAndIdAndPartitions) {
  ImagePtr image = two_topics();
  EXPECT_EQ(image->offset(), 8);
  EXPECT_EQ(image->metadata_version(), 19);
  ASSERT_NE(image->topic("orders"), nullptr);
  EXPECT_EQ(image->topic("orders"), image->topic(kOrders));
  EXPECT_EQ(image->topic(kOrders)->partitions.size(), 2u);
  const PartitionState* p1 = image->partition("orders", 1);
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(p1->replicas, (std::vector<std::int32_t>{2, 3, 1}));
  EXPECT_EQ(p1->isr, (std::vector<std::int32_t>{2, 3}));
  EXPECT_EQ(p1->leader, 2);
  EXPECT_EQ(p1->leader_epoch, 4);
  EXPECT_EQ(p1->partition_epoch, 6);
  EXPECT_EQ(image->partition(kOrders, 1), p1);
  EXPECT_EQ(image->partition("orders", 2), nullptr);
  EXPECT_EQ(image->partition(uuid(99), 0), nullptr);
  ASSERT_EQ(image->topics().size(), 2u);
  EXPECT_EQ(image->topics()[0]->name, "orders");
  EXPECT_EQ(image->topics()[1]->name, "payments");
}

TEST(MetadataImage, TopicRecordsThatDoNotFit) {
  ImagePtr image = two_topics();
  Error dup_id = apply_fails(image, topic("orders2", kOrders));
  EXPECT_EQ(dup_id.kind, ErrorKind::already_exists);
  EXPECT_NE(dup_id.message.find("already exists (topic orders)"), std::string::npos) << dup_id.message;
  EXPECT_EQ(apply_fails(image, topic("orders", uuid(7))).kind, ErrorKind::already_exists);
  EXPECT_EQ(apply_fails(image, topic("", uuid(7))).kind, ErrorKind::invalid_argument);
  EXPECT_EQ(apply_fails(image, topic("zero", Uuid{})).kind, ErrorKind::invalid_argument);
  Error unknown = apply_fails(image, partition(uuid(42), 0, {1}, {1}, 1));
  EXPECT_EQ(unknown.kind, ErrorKind::not_found);
  EXPECT_NE(unknown.message.find("partition 0 of unknown topic id " + uuid_string(uuid(42))), std::string::npos)
      << unknown.message;
  EXPECT_EQ(apply_fails(image, partition(kOrders, -1, {1}, {1}, 1)).kind, ErrorKind::invalid_argument);
  rec::PartitionRecord bad_dirs;
  bad_dirs.topic_id = kOrders;
  bad_dirs.partition_id = 5;
  bad_dirs.replicas = {1, 2};
  bad_dirs.directories = {uuid(1, 0xDD)};
  EXPECT_EQ(apply_fails(image, make_record(bad_dirs)).kind, ErrorKind::invalid_argument);
  EXPECT_EQ(apply_fails(image, change(uuid(42), 0, [](auto&) {})).kind, ErrorKind::not_found);
  EXPECT_EQ(apply_fails(image, change(kOrders, 9, [](auto&) {})).kind, ErrorKind::not_found);
  EXPECT_EQ(apply_fails(image, change(kOrders, 0, [](auto& r) { r.leader = -3; })).kind, ErrorKind::invalid_argument);
  EXPECT_EQ(apply_fails(image, change(kOrders, 0, [](auto& r) { r.leader_recovery_state = 2; })).kind,
            ErrorKind::invalid_argument);
  rec::RemoveTopicRecord remove;
  remove.topic_id = uuid(42);
  EXPECT_EQ(apply_fails(image, make_record(remove)).kind, ErrorKind::not_found);
}

TEST(MetadataImage, PartitionChangeAbsentFieldsMeanUnchanged) {
  ImagePtr image = two_topics();
  // Only the ISR changes: leader and leader epoch stay, partition epoch + 1.
  ImagePtr shrunk = apply_ok(image, {change(kOrders, 1, [](auto& r) { r.isr = std::vector<std::int32_t>{2}; })});
  const PartitionState* p = shrunk->partition(kOrders, 1);
  EXPECT_EQ(p->isr, (std::vector<std::int32_t>{2}));
  EXPECT_EQ(p->replicas, (std::vector<std::int32_t>{2, 3, 1}));
  EXPECT_EQ(p->leader, 2);
  EXPECT_EQ(p->leader_epoch, 4);
  EXPECT_EQ(p->partition_epoch, 7);
  // The other partition and topic are untouched (and shared with the old image).
  EXPECT_EQ(*shrunk->partition(kOrders, 0), *image->partition(kOrders, 0));
  EXPECT_EQ(shrunk->topic(kPayments), image->topic(kPayments));
  // The old image did not change.
  EXPECT_EQ(image->partition(kOrders, 1)->isr, (std::vector<std::int32_t>{2, 3}));
  EXPECT_EQ(image->partition(kOrders, 1)->partition_epoch, 6);
}

TEST(MetadataImage, PartitionChangeLeaderSemantics) {
  ImagePtr image = two_topics();
  // A new leader: leader epoch + 1, partition epoch + 1.
  ImagePtr moved = apply_ok(image, {change(kOrders, 1, [](auto& r) { r.leader = 3; })});
  EXPECT_EQ(moved->partition(kOrders, 1)->leader, 3);
  EXPECT_EQ(moved->partition(kOrders, 1)->leader_epoch, 5);
  EXPECT_EQ(moved->partition(kOrders, 1)->partition_epoch, 7);
  // -1: no leader any more, which is a leader change too.
  ImagePtr leaderless = apply_ok(moved, {change(kOrders, 1, [](auto& r) {
                                   r.leader = kNoLeader;
                                   r.isr = std::vector<std::int32_t>{};
                                 })});
  const PartitionState* p = leaderless->partition(kOrders, 1);
  EXPECT_FALSE(p->has_leader());
  EXPECT_EQ(p->leader, -1);
  EXPECT_EQ(p->leader_epoch, 6);
  EXPECT_EQ(p->partition_epoch, 8);
  EXPECT_TRUE(p->isr.empty());
  // -2 (the default): the leader and its epoch stay even when other fields change.
  ImagePtr same = apply_ok(leaderless, {change(kOrders, 1, [](auto& r) {
                             r.leader_recovery_state = 1;
                             r.adding_replicas = std::vector<std::int32_t>{4};
                           })});
  p = same->partition(kOrders, 1);
  EXPECT_EQ(p->leader, -1);
  EXPECT_EQ(p->leader_epoch, 6);
  EXPECT_EQ(p->partition_epoch, 9);
  EXPECT_EQ(p->leader_recovery_state, 1);
  EXPECT_EQ(p->adding_replicas, (std::vector<std::int32_t>{4}));
  // Re-electing the same leader (Kafka does this to fence the old epoch) bumps the epoch.
  ImagePtr reelected = apply_ok(moved, {change(kOrders, 1, [](auto& r) { r.leader = 3; })});
  EXPECT_EQ(reelected->partition(kOrders, 1)->leader_epoch, 6);
}

TEST(MetadataImage, PartitionChangeReplicasAndDirectories) {
  rec::PartitionRecord with_dirs;
  with_dirs.topic_id = kOrders;
  with_dirs.partition_id = 2;
  with_dirs.replicas = {1, 2};
  with_dirs.isr = {1, 2};
  with_dirs.leader = 1;
  with_dirs.directories = {uuid(1, 0xDD), uuid(2, 0xDD)};
  ImagePtr image = apply_ok(two_topics(), {make_record(with_dirs)});
  EXPECT_EQ(image->partition(kOrders, 2)->directories.size(), 2u);
  // New replicas with their directories.
  ImagePtr moved = apply_ok(image, {change(kOrders, 2, [](auto& r) {
                              r.replicas = std::vector<std::int32_t>{1, 2, 3};
                              r.directories = std::vector<Uuid>{uuid(1, 0xDD), uuid(2, 0xDD), uuid(3, 0xDD)};
                            })});
  EXPECT_EQ(moved->partition(kOrders, 2)->directories.size(), 3u);
  // New replicas without directories: the old ones no longer line up, so they are unknown.
  ImagePtr unknown = apply_ok(moved, {change(kOrders, 2, [](auto& r) { r.replicas = std::vector<std::int32_t>{3}; })});
  EXPECT_TRUE(unknown->partition(kOrders, 2)->directories.empty());
  EXPECT_EQ(apply_fails(moved, change(kOrders, 2,
                                      [](auto& r) {
                                        r.replicas = std::vector<std::int32_t>{3};
                                        r.directories = std::vector<Uuid>{uuid(1), uuid(2)};
                                      }))
                .kind,
            ErrorKind::invalid_argument);
}

TEST(MetadataImage, PartitionRecordReplacesThePartition) {
  ImagePtr image = apply_ok(two_topics(), {partition(kOrders, 0, {3, 2}, {3}, 3, 9, 12)});
  EXPECT_EQ(image->partition(kOrders, 0)->replicas, (std::vector<std::int32_t>{3, 2}));
  EXPECT_EQ(image->partition(kOrders, 0)->leader_epoch, 9);
}

TEST(MetadataImage, RemoveTopicDropsPartitionsAndConfigs) {
  ImagePtr image = apply_ok(two_topics(), {
                                              config(ConfigResourceType::topic, "orders", "retention.ms", "1000"),
                                              config(ConfigResourceType::topic, "payments", "retention.ms", "5"),
                                          });
  rec::RemoveTopicRecord remove;
  remove.topic_id = kOrders;
  ImagePtr removed = apply_ok(image, {make_record(remove)});
  EXPECT_EQ(removed->topic("orders"), nullptr);
  EXPECT_EQ(removed->topic(kOrders), nullptr);
  EXPECT_EQ(removed->partition(kOrders, 0), nullptr);
  EXPECT_EQ(removed->configs({ConfigResourceType::topic, "orders"}), nullptr);
  EXPECT_EQ(removed->config({ConfigResourceType::topic, "payments"}, "retention.ms")->value, "5");
  EXPECT_EQ(removed->topic_count(), 1u);
  // The name is free again, under a new id; the old configs did not come back.
  ImagePtr again = apply_ok(removed, {topic("orders", uuid(3))});
  EXPECT_EQ(again->topic("orders")->id, uuid(3));
  EXPECT_TRUE(again->topic("orders")->partitions.empty());
  EXPECT_FALSE(again->config({ConfigResourceType::topic, "orders"}, "retention.ms"));
}

TEST(MetadataImage, ConfigsSetOverwriteDeleteAndSources) {
  ImagePtr image =
      apply_ok(MetadataImage::empty(), {
                                           config(ConfigResourceType::topic, "t", "cleanup.policy", "delete"),
                                           config(ConfigResourceType::topic, "t", "cleanup.policy", "compact"),
                                           config(ConfigResourceType::broker, "", "log.retention.ms", "100"),
                                           config(ConfigResourceType::broker, "1", "log.retention.ms", "200"),
                                           config(ConfigResourceType::broker, "", "num.io.threads", "4"),
                                       });
  auto policy = image->config({ConfigResourceType::topic, "t"}, "cleanup.policy");
  ASSERT_TRUE(policy);
  EXPECT_EQ(*policy, (ConfigValue{"compact", ConfigSource::topic}));
  EXPECT_EQ(*image->config({ConfigResourceType::broker, "1"}, "log.retention.ms"),
            (ConfigValue{"200", ConfigSource::dynamic_broker}));
  // Broker 2 has no own value: the cluster-wide default.
  EXPECT_EQ(*image->config({ConfigResourceType::broker, "2"}, "log.retention.ms"),
            (ConfigValue{"100", ConfigSource::dynamic_default_broker}));
  EXPECT_EQ(*image->config({ConfigResourceType::broker, "1"}, "num.io.threads"),
            (ConfigValue{"4", ConfigSource::dynamic_default_broker}));
  EXPECT_FALSE(image->config({ConfigResourceType::topic, "t"}, "retention.ms"));
  // A null value deletes; a resource without keys disappears; deleting an absent key is fine.
  ImagePtr deleted = apply_ok(image, {
                                         config(ConfigResourceType::topic, "t", "cleanup.policy", std::nullopt),
                                         config(ConfigResourceType::topic, "t", "cleanup.policy", std::nullopt),
                                         config(ConfigResourceType::broker, "1", "log.retention.ms", std::nullopt),
                                     });
  EXPECT_EQ(deleted->configs({ConfigResourceType::topic, "t"}), nullptr);
  EXPECT_EQ(*deleted->config({ConfigResourceType::broker, "1"}, "log.retention.ms"),
            (ConfigValue{"100", ConfigSource::dynamic_default_broker}));
  EXPECT_EQ(deleted->config_resources().size(), 1u);
  rec::ConfigRecord bad;
  bad.resource_type = 3;
  bad.resource_name = "x";
  bad.name = "k";
  bad.value = "v";
  EXPECT_EQ(apply_fails(image, make_record(bad)).kind, ErrorKind::invalid_argument);
}

TEST(MetadataImage, BrokersRegisterFenceUnfenceUnregister) {
  ImagePtr image = apply_ok(MetadataImage::empty(), {
                                                        broker(1, 100, true, {{"EXTERNAL", 9092}, {"INTERNAL", 9093}}),
                                                        broker(2, 101, true, {{"INTERNAL", 9093}}),
                                                    });
  EXPECT_TRUE(image->live_brokers().empty());
  EXPECT_TRUE(image->endpoints_for("EXTERNAL").empty());
  EXPECT_EQ(image->endpoints_for("EXTERNAL", true).size(), 1u);
  rec::UnfenceBrokerRecord unfence;
  unfence.id = 1;
  unfence.epoch = 100;
  ImagePtr live = apply_ok(image, {make_record(unfence)});
  ASSERT_EQ(live->live_brokers().size(), 1u);
  EXPECT_EQ(live->live_brokers()[0]->id, 1);
  auto external = live->endpoints_for("EXTERNAL");
  ASSERT_EQ(external.size(), 1u);
  EXPECT_EQ(external[0].broker_id, 1);
  EXPECT_EQ(external[0].endpoint->port, 9092);
  EXPECT_EQ(external[0].endpoint->host, "127.0.0.1");
  EXPECT_EQ(*external[0].rack, "rack-1");
  EXPECT_EQ(live->endpoints_for("INTERNAL").size(), 1u);
  EXPECT_EQ(live->broker(1)->endpoint("INTERNAL")->port, 9093);
  EXPECT_EQ(live->broker(1)->endpoint("NOPE"), nullptr);

  // Fencing with a stale epoch, or an unknown broker, does not fit.
  rec::FenceBrokerRecord fence;
  fence.id = 1;
  fence.epoch = 99;
  Error stale = apply_fails(live, make_record(fence));
  EXPECT_EQ(stale.kind, ErrorKind::invalid_argument);
  EXPECT_NE(stale.message.find("epoch 99 is not its current epoch 100"), std::string::npos) << stale.message;
  fence.id = 7;
  EXPECT_EQ(apply_fails(live, make_record(fence)).kind, ErrorKind::not_found);
  fence.id = 1;
  fence.epoch = 100;
  EXPECT_TRUE(apply_ok(live, {make_record(fence)})->broker(1)->fenced);

  rec::UnregisterBrokerRecord unregister;
  unregister.broker_id = 5;
  unregister.broker_epoch = 100;
  Error unknown = apply_fails(live, make_record(unregister));
  EXPECT_EQ(unknown.kind, ErrorKind::not_found);
  EXPECT_NE(unknown.message.find("cannot unregister broker 5: it is not registered"), std::string::npos);
  unregister.broker_id = 1;
  ImagePtr gone = apply_ok(live, {make_record(unregister)});
  EXPECT_EQ(gone->broker(1), nullptr);
  EXPECT_NE(gone->broker(2), nullptr);

  // Re-registration replaces the registration (new epoch, fenced again).
  ImagePtr again = apply_ok(live, {broker(1, 200, true)});
  EXPECT_EQ(again->broker(1)->epoch, 200);
  EXPECT_TRUE(again->broker(1)->fenced);
  EXPECT_EQ(apply_fails(live, broker(1, 1, true, {{"A", 1}, {"A", 2}})).kind, ErrorKind::invalid_argument);
  EXPECT_EQ(apply_fails(live, broker(-1, 1)).kind, ErrorKind::invalid_argument);
}

TEST(MetadataImage, BrokerRegistrationChange) {
  ImagePtr image = apply_ok(MetadataImage::empty(), {broker(1, 100, true)});
  rec::BrokerRegistrationChangeRecord r;
  r.broker_id = 1;
  r.broker_epoch = 100;
  r.fenced = -1;  // unfenced
  ImagePtr unfenced = apply_ok(image, {make_record(r)});
  EXPECT_FALSE(unfenced->broker(1)->fenced);
  r.fenced = 0;  // no change
  r.in_controlled_shutdown = 1;
  r.log_dirs = {uuid(9, 0xDD)};
  ImagePtr shutting = apply_ok(unfenced, {make_record(r)});
  EXPECT_FALSE(shutting->broker(1)->fenced);
  EXPECT_TRUE(shutting->broker(1)->in_controlled_shutdown);
  EXPECT_EQ(shutting->broker(1)->log_dirs, (std::vector<Uuid>{uuid(9, 0xDD)}));
  r.in_controlled_shutdown = 0;
  r.log_dirs.clear();
  r.fenced = 1;
  ImagePtr fenced = apply_ok(shutting, {make_record(r)});
  EXPECT_TRUE(fenced->broker(1)->fenced);
  EXPECT_TRUE(fenced->broker(1)->in_controlled_shutdown);  // 0 means no change
  EXPECT_EQ(fenced->broker(1)->log_dirs.size(), 1u);       // empty means no change
  r.fenced = 2;
  EXPECT_EQ(apply_fails(image, make_record(r)).kind, ErrorKind::invalid_argument);
  r.fenced = 0;
  r.in_controlled_shutdown = 5;
  EXPECT_EQ(apply_fails(image, make_record(r)).kind, ErrorKind::invalid_argument);
  r.in_controlled_shutdown = 0;
  r.broker_epoch = 1;
  EXPECT_EQ(apply_fails(image, make_record(r)).kind, ErrorKind::invalid_argument);
}

TEST(MetadataImage, Controllers) {
  rec::RegisterControllerRecord r;
  r.controller_id = 3000;
  r.incarnation_id = uuid(1, 0xCC);
  auto& e = r.end_points.emplace_back();
  e.name = "CONTROLLER";
  e.host = "127.0.0.1";
  e.port = 9094;
  ImagePtr image = apply_ok(MetadataImage::empty(), {make_record(r)});
  ASSERT_NE(image->controller(3000), nullptr);
  EXPECT_EQ(image->controller(3000)->endpoints[0].port, 9094);
  EXPECT_EQ(image->controller(1), nullptr);
  r.controller_id = -5;
  EXPECT_EQ(apply_fails(image, make_record(r)).kind, ErrorKind::invalid_argument);
}

TEST(MetadataImage, AclsAddListRemove) {
  ImagePtr image = apply_ok(MetadataImage::empty(), {acl(uuid(2, 0xAC), "User:bob"), acl(uuid(1, 0xAC), "User:alice")});
  auto acls = image->acls();
  ASSERT_EQ(acls.size(), 2u);
  EXPECT_EQ(acls[0].principal, "User:alice");  // id order
  EXPECT_EQ(image->acl(uuid(2, 0xAC))->principal, "User:bob");
  EXPECT_EQ(apply_fails(image, acl(uuid(1, 0xAC), "User:eve")).kind, ErrorKind::already_exists);
  EXPECT_EQ(apply_fails(image, acl(uuid(3, 0xAC), "User:eve", 1)).kind, ErrorKind::invalid_argument);  // ANY
  rec::RemoveAccessControlEntryRecord remove;
  remove.id = uuid(9, 0xAC);
  EXPECT_EQ(apply_fails(image, make_record(remove)).kind, ErrorKind::not_found);
  remove.id = uuid(1, 0xAC);
  ImagePtr removed = apply_ok(image, {make_record(remove)});
  EXPECT_EQ(removed->acl_count(), 1u);
  EXPECT_EQ(removed->acl(uuid(1, 0xAC)), nullptr);
}

TEST(MetadataImage, ScramCredentials) {
  ImagePtr image =
      apply_ok(MetadataImage::empty(), {scram("alice", 1), scram("alice", 2, 8192), scram("alice", 1, 10000)});
  const ScramCredential* sha256 = image->scram_credential("alice", ScramMechanism::sha256);
  ASSERT_NE(sha256, nullptr);
  EXPECT_EQ(sha256->iterations, 10000);  // replaced
  EXPECT_EQ(sha256->salt, (Bytes{1, 2, 3}));
  EXPECT_EQ(sha256->stored_key, (Bytes{4, 5, 6}));
  EXPECT_EQ(sha256->server_key, (Bytes{7, 8, 9}));
  EXPECT_EQ(image->scram_credential("alice", ScramMechanism::sha512)->iterations, 8192);
  EXPECT_EQ(image->scram_credential("bob", ScramMechanism::sha256), nullptr);
  EXPECT_EQ(image->scram_credentials().size(), 2u);
  EXPECT_EQ(apply_fails(image, scram("bob", 3)).kind, ErrorKind::invalid_argument);
  EXPECT_EQ(apply_fails(image, scram("bob", 1, 0)).kind, ErrorKind::invalid_argument);
  rec::RemoveUserScramCredentialRecord remove;
  remove.name = "bob";
  remove.mechanism = 1;
  EXPECT_EQ(apply_fails(image, make_record(remove)).kind, ErrorKind::not_found);
  remove.name = "alice";
  ImagePtr removed = apply_ok(image, {make_record(remove)});
  EXPECT_EQ(removed->scram_credential("alice", ScramMechanism::sha256), nullptr);
  EXPECT_NE(removed->scram_credential("alice", ScramMechanism::sha512), nullptr);
}

TEST(MetadataImage, ProducerIdsOnlyMoveForward) {
  rec::ProducerIdsRecord r;
  r.broker_id = 1;
  r.broker_epoch = 10;
  r.next_producer_id = 1000;
  ImagePtr image = apply_ok(MetadataImage::empty(), {make_record(r)});
  EXPECT_EQ(image->producer_ids(), (ProducerIdBlock{1000, 1, 10}));
  r.next_producer_id = 999;
  Error back = apply_fails(image, make_record(r));
  EXPECT_NE(back.message.find("handed out twice"), std::string::npos);
  r.next_producer_id = 2000;
  EXPECT_EQ(apply_ok(image, {make_record(r)})->producer_ids().next_producer_id, 2000);
}

TEST(MetadataImage, Features) {
  ImagePtr image = apply_ok(MetadataImage::empty(), {feature("metadata.version", 7), feature("kraft.version", 1),
                                                     feature("metadata.version", 19)});
  EXPECT_EQ(image->metadata_version(), 19);
  EXPECT_EQ(image->feature_level("kraft.version"), 1);
  ImagePtr off = apply_ok(image, {feature("kraft.version", 0)});
  EXPECT_FALSE(off->feature_level("kraft.version"));
  EXPECT_EQ(apply_fails(image, feature("metadata.version", 0)).kind, ErrorKind::invalid_argument);
  EXPECT_EQ(apply_fails(image, feature("x", -1)).kind, ErrorKind::invalid_argument);
}

TEST(MetadataImage, QuotasTokensAndNoOps) {
  rec::ClientQuotaRecord q;
  auto& e = q.entity.emplace_back();
  e.entity_type = "user";
  e.entity_name = "alice";
  q.key = "producer_byte_rate";
  q.value = 1024;
  rec::DelegationTokenRecord t;
  t.token_id = "tok";
  t.owner = "User:alice";
  t.renewers = {"User:bob"};
  ImagePtr image = apply_ok(MetadataImage::empty(),
                            {make_record(q), make_record(t), make_record(rec::NoOpRecord{}),
                             make_record(rec::BeginTransactionRecord{}), make_record(rec::EndTransactionRecord{})});
  const ClientQuotaEntity alice{{"user", "alice"}};
  EXPECT_EQ(image->client_quotas().at(alice).at("producer_byte_rate"), 1024);
  EXPECT_EQ(image->delegation_tokens().at("tok").renewers, (std::vector<std::string>{"User:bob"}));
  q.remove = true;
  rec::RemoveDelegationTokenRecord rt;
  rt.token_id = "tok";
  ImagePtr removed = apply_ok(image, {make_record(q), make_record(rt)});
  EXPECT_TRUE(removed->client_quotas().empty());
  EXPECT_TRUE(removed->delegation_tokens().empty());
  EXPECT_EQ(apply_fails(removed, make_record(rt)).kind, ErrorKind::not_found);
  q.entity.push_back(q.entity[0]);
  EXPECT_EQ(apply_fails(removed, make_record(q)).kind, ErrorKind::invalid_argument);
}

TEST(MetadataDelta, BuiltImagesNeverChangeAfterwards) {
  ImagePtr base = two_topics();
  MetadataDelta delta(base);
  ASSERT_TRUE(delta.apply(change(kOrders, 0, [](auto& r) { r.leader = 2; })).ok());
  ImagePtr first = delta.build(LogPosition{9, 1});
  const PartitionState before = *first->partition(kOrders, 0);
  // Writing the same topic again after a build must copy, not write into `first`.
  ASSERT_TRUE(delta.apply(change(kOrders, 0, [](auto& r) { r.leader = 3; })).ok());
  ASSERT_TRUE(delta.apply(config(ConfigResourceType::topic, "orders", "k", "v")).ok());
  ImagePtr second = delta.build(LogPosition{11, 1});
  EXPECT_EQ(*first->partition(kOrders, 0), before);
  EXPECT_EQ(first->partition(kOrders, 0)->leader, 2);
  EXPECT_EQ(second->partition(kOrders, 0)->leader, 3);
  EXPECT_EQ(second->partition(kOrders, 0)->leader_epoch, 2);
  EXPECT_EQ(first->configs({ConfigResourceType::topic, "orders"}), nullptr);
  EXPECT_EQ(base->partition(kOrders, 0)->leader, 1);
  EXPECT_EQ(delta.applied(), 3u);
}

TEST(MetadataDelta, FailedRecordLeavesTheDeltaUsable) {
  MetadataDelta delta(two_topics());
  ASSERT_TRUE(delta.apply(topic("new", uuid(5))).ok());
  EXPECT_FALSE(delta.apply(topic("new", uuid(6))).ok());
  EXPECT_FALSE(delta.apply(partition(uuid(6), 0, {1}, {1}, 1)).ok());
  ASSERT_TRUE(delta.apply(partition(uuid(5), 0, {1}, {1}, 1)).ok());
  ImagePtr image = delta.build(LogPosition{12, 2});
  EXPECT_EQ(image->topic(uuid(6)), nullptr);
  EXPECT_EQ(image->topic("new")->partitions.size(), 1u);
  EXPECT_EQ(delta.applied(), 2u);
  EXPECT_EQ(image->position(), (LogPosition{12, 2}));
}

TEST(MetadataDelta, ApplyRecordsIsAllOrNothing) {
  ImagePtr base = two_topics();
  std::vector<PositionedRecord> records = {
      {topic("a", uuid(10)), {9, 2}},
      {partition(uuid(10), 0, {1}, {1}, 1), {10, 2}},
      {partition(uuid(11), 0, {1}, {1}, 1), {11, 2}},  // unknown topic
  };
  auto failed = apply_records(base, records);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().kind, ErrorKind::not_found);
  EXPECT_NE(failed.error().message.find("at offset 11"), std::string::npos) << failed.error().message;
  EXPECT_EQ(base->topic("a"), nullptr);
  records.pop_back();
  auto ok = apply_records(base, records);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ((*ok)->position(), (LogPosition{10, 2}));
  EXPECT_NE((*ok)->partition("a", 0), nullptr);
  // Offsets must move forward.
  std::vector<PositionedRecord> stale = {{topic("b", uuid(12)), {8, 2}}};
  EXPECT_FALSE(apply_records(base, stale).ok());
}

TEST(MetadataImage, EqualityAndDigest) {
  ImagePtr a = two_topics();
  ImagePtr b = two_topics();
  EXPECT_NE(a.get(), b.get());
  EXPECT_TRUE(*a == *b);
  EXPECT_EQ(a->digest(), b->digest());
  ImagePtr changed = apply_ok(a, {change(kOrders, 0, [](auto& r) { r.isr = std::vector<std::int32_t>{1}; })});
  EXPECT_FALSE(*a == *changed);
  EXPECT_NE(a->digest(), changed->digest());
  // Same content at another offset is another image.
  MetadataDelta delta(a);
  ImagePtr moved = delta.build(LogPosition{100, 1});
  EXPECT_FALSE(*a == *moved);
  EXPECT_NE(a->digest(), moved->digest());
  EXPECT_EQ(MetadataImage::empty()->digest(), MetadataImage::empty()->digest());
}

}  // namespace
}  // namespace bulwark::cluster
