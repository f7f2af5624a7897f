// kafka-acls.sh's option rules: bindings to add, filters to remove and list, printed forms, errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "client/acl.h"
#include "client/scram.h"

namespace bulwark::client {
namespace {

using security::AclBinding;
using security::AclBindingFilter;
using security::Operation;
using security::PatternType;
using security::Permission;
using security::ResourceType;

bool contains(const std::vector<AclBinding>& all, const AclBinding& b) {
  return std::find(all.begin(), all.end(), b) != all.end();
}

AclBinding topic(std::string name, std::string principal, Operation op, Permission perm = Permission::allow,
                 std::string host = "*", PatternType pattern = PatternType::literal) {
  return AclBinding{ResourceType::topic, std::move(name), pattern, std::move(principal), std::move(host), op, perm};
}

TEST(AclAdd, PrincipalsHostsOperationsAndResourcesMultiply) {
  AclSelectors s;
  s.allow_principals = {"User:alice", "User:bob"};
  s.allow_hosts = {"10.0.0.1"};
  s.deny_principals = {"User:mallory"};
  s.operations = {"Read", "describe"};
  s.topics = {"orders"};
  s.groups = {"billing"};
  auto bindings = acl_bindings_to_add(s);
  ASSERT_TRUE(bindings.ok()) << bindings.error().message;
  // 2 resources x (2 allow principals x 1 host + 1 deny principal x default host *) x 2 operations.
  EXPECT_EQ(bindings->size(), 12u);
  EXPECT_TRUE(contains(*bindings, topic("orders", "User:alice", Operation::read, Permission::allow, "10.0.0.1")));
  EXPECT_TRUE(contains(*bindings, topic("orders", "User:mallory", Operation::describe, Permission::deny, "*")));
  EXPECT_TRUE(contains(*bindings, AclBinding{ResourceType::group, "billing", PatternType::literal, "User:bob",
                                             "10.0.0.1", Operation::read, Permission::allow}));
}

TEST(AclAdd, DefaultsToAllOperationsAndEveryHost) {
  AclSelectors s;
  s.allow_principals = {"User:alice"};
  s.topics = {"orders"};
  s.pattern_type = "prefixed";
  auto bindings = acl_bindings_to_add(s);
  ASSERT_TRUE(bindings.ok()) << bindings.error().message;
  ASSERT_EQ(bindings->size(), 1u);
  EXPECT_EQ((*bindings)[0], topic("orders", "User:alice", Operation::all, Permission::allow, "*", PatternType::prefixed));
}

TEST(AclAdd, OperationNamesInEveryKafkaSpelling) {
  for (const char* name : {"ClusterAction", "CLUSTER_ACTION", "clusteraction", "cluster-action"}) {
    AclSelectors s;
    s.allow_principals = {"User:broker"};
    s.cluster = true;
    s.operations = {name};
    auto bindings = acl_bindings_to_add(s);
    ASSERT_TRUE(bindings.ok()) << name << ": " << bindings.error().message;
    ASSERT_EQ(bindings->size(), 1u);
    EXPECT_EQ((*bindings)[0].operation, Operation::cluster_action);
    EXPECT_EQ((*bindings)[0].resource_type, ResourceType::cluster);
    EXPECT_EQ((*bindings)[0].resource_name, "kafka-cluster");
  }
}

TEST(AclAdd, ProducerExpandsLikeKafkaAcls) {
  AclSelectors s;
  s.allow_principals = {"User:app"};
  s.producer = true;
  s.idempotent = true;
  s.topics = {"orders"};
  s.transactional_ids = {"tx-1"};
  auto bindings = acl_bindings_to_add(s);
  ASSERT_TRUE(bindings.ok()) << bindings.error().message;
  EXPECT_EQ(bindings->size(), 6u);
  for (Operation op : {Operation::write, Operation::describe, Operation::create}) {
    EXPECT_TRUE(contains(*bindings, topic("orders", "User:app", op)));
  }
  for (Operation op : {Operation::write, Operation::describe}) {
    EXPECT_TRUE(contains(*bindings, AclBinding{ResourceType::transactional_id, "tx-1", PatternType::literal, "User:app",
                                               "*", op, Permission::allow}));
  }
  EXPECT_TRUE(contains(*bindings, AclBinding{ResourceType::cluster, "kafka-cluster", PatternType::literal, "User:app",
                                             "*", Operation::idempotent_write, Permission::allow}));
}

TEST(AclAdd, ConsumerExpandsLikeKafkaAcls) {
  AclSelectors s;
  s.allow_principals = {"User:app"};
  s.consumer = true;
  s.topics = {"orders"};
  s.groups = {"billing"};
  auto bindings = acl_bindings_to_add(s);
  ASSERT_TRUE(bindings.ok()) << bindings.error().message;
  EXPECT_EQ(bindings->size(), 3u);
  EXPECT_TRUE(contains(*bindings, topic("orders", "User:app", Operation::read)));
  EXPECT_TRUE(contains(*bindings, topic("orders", "User:app", Operation::describe)));
  EXPECT_TRUE(contains(*bindings, AclBinding{ResourceType::group, "billing", PatternType::literal, "User:app", "*",
                                             Operation::read, Permission::allow}));

  s.producer = true;  // both at once: the union, topics deduplicated (DESCRIBE once)
  auto both = acl_bindings_to_add(s);
  ASSERT_TRUE(both.ok()) << both.error().message;
  EXPECT_EQ(both->size(), 5u);
}

TEST(AclAdd, UsageErrorsSayWhichFlag) {
  auto error_of = [](AclSelectors s) {
    auto r = acl_bindings_to_add(s);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.error().message;
  };
  AclSelectors base;
  base.allow_principals = {"User:alice"};
  base.topics = {"orders"};

  AclSelectors no_principal = base;
  no_principal.allow_principals.clear();
  EXPECT_NE(error_of(no_principal).find("--allow-principal, --deny-principal"), std::string::npos);

  AclSelectors bad_principal = base;
  bad_principal.allow_principals = {"alice"};
  EXPECT_NE(error_of(bad_principal).find("'alice' is not a principal"), std::string::npos);

  AclSelectors no_resource = base;
  no_resource.topics.clear();
  EXPECT_NE(error_of(no_resource).find("at least one resource"), std::string::npos);

  AclSelectors wrong_op = base;
  wrong_op.operations = {"ClusterAction"};
  EXPECT_NE(error_of(wrong_op).find("resource type TOPIC does not have operation CLUSTER_ACTION"), std::string::npos);

  AclSelectors unknown_op = base;
  unknown_op.operations = {"Fly"};
  EXPECT_NE(error_of(unknown_op).find("--operation 'Fly'"), std::string::npos);

  AclSelectors any_pattern = base;
  any_pattern.pattern_type = "any";
  EXPECT_NE(error_of(any_pattern).find("needs literal or prefixed"), std::string::npos);

  AclSelectors producer_op = base;
  producer_op.producer = true;
  producer_op.operations = {"Read"};
  EXPECT_NE(error_of(producer_op).find("--operation cannot be combined"), std::string::npos);

  AclSelectors consumer_no_group = base;
  consumer_no_group.consumer = true;
  EXPECT_NE(error_of(consumer_no_group).find("with --consumer you must specify a --topic and a --group"),
            std::string::npos);

  AclSelectors idempotent_alone = base;
  idempotent_alone.idempotent = true;
  EXPECT_NE(error_of(idempotent_alone).find("--idempotent only goes with --producer"), std::string::npos);

  AclSelectors bad_host = base;
  bad_host.allow_hosts = {"kafka.example.com"};
  EXPECT_FALSE(error_of(bad_host).empty());
}

TEST(AclRemove, UnspecifiedPartsMatchAnything) {
  AclSelectors s;
  s.topics = {"orders"};
  auto filters = acl_filters_to_remove(s);
  ASSERT_TRUE(filters.ok()) << filters.error().message;
  ASSERT_EQ(filters->size(), 1u);
  const AclBindingFilter& f = (*filters)[0];
  EXPECT_EQ(f.resource_type, ResourceType::topic);
  EXPECT_EQ(f.resource_name, "orders");
  EXPECT_EQ(f.pattern_type, PatternType::literal);
  EXPECT_EQ(f.principal, std::nullopt);
  EXPECT_EQ(f.host, std::nullopt);
  EXPECT_EQ(f.operation, Operation::any);
  EXPECT_EQ(f.permission, Permission::any);
  EXPECT_TRUE(f.matches(topic("orders", "User:x", Operation::write, Permission::deny, "10.1.1.1")));
  EXPECT_FALSE(f.matches(topic("orders", "User:x", Operation::write, Permission::deny, "*", PatternType::prefixed)));
}

TEST(AclRemove, PrincipalsAndOperationsNarrowTheFilter) {
  AclSelectors s;
  s.topics = {"orders"};
  s.allow_principals = {"User:alice"};
  s.operations = {"Read", "Write"};
  s.pattern_type = "prefixed";
  auto filters = acl_filters_to_remove(s);
  ASSERT_TRUE(filters.ok()) << filters.error().message;
  ASSERT_EQ(filters->size(), 2u);
  for (const auto& f : *filters) {
    EXPECT_EQ(f.principal, "User:alice");
    EXPECT_EQ(f.permission, Permission::allow);
    EXPECT_EQ(f.host, std::nullopt);
    EXPECT_EQ(f.pattern_type, PatternType::prefixed);
  }
  EXPECT_EQ((*filters)[0].operation, Operation::read);
  EXPECT_EQ((*filters)[1].operation, Operation::write);

  AclSelectors none;
  EXPECT_FALSE(acl_filters_to_remove(none).ok());
}

TEST(AclRemove, ProducerRemovesExactlyWhatProducerAdded) {
  AclSelectors s;
  s.allow_principals = {"User:app"};
  s.producer = true;
  s.topics = {"orders"};
  auto added = acl_bindings_to_add(s);
  auto filters = acl_filters_to_remove(s);
  ASSERT_TRUE(added.ok() && filters.ok());
  ASSERT_EQ(filters->size(), added->size());
  for (const auto& b : *added) {
    EXPECT_TRUE(std::any_of(filters->begin(), filters->end(), [&](const AclBindingFilter& f) { return f.matches(b); }));
  }
  // A different operation on the same topic is left alone.
  AclBinding read = topic("orders", "User:app", Operation::read);
  EXPECT_FALSE(std::any_of(filters->begin(), filters->end(), [&](const AclBindingFilter& f) { return f.matches(read); }));
}

TEST(AclList, DefaultsToEverythingAndNarrowsByPrincipal) {
  AclSelectors all;
  auto filters = acl_filters_to_list(all);
  ASSERT_TRUE(filters.ok());
  ASSERT_EQ(filters->size(), 1u);
  EXPECT_EQ((*filters)[0].resource_type, ResourceType::any);
  EXPECT_EQ((*filters)[0].pattern_type, PatternType::any);

  AclSelectors narrowed;
  narrowed.topics = {"orders"};
  narrowed.pattern_type = "match";
  narrowed.principals = {"User:alice"};
  auto f = acl_filters_to_list(narrowed);
  ASSERT_TRUE(f.ok()) << f.error().message;
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].pattern_type, PatternType::match);
  EXPECT_EQ((*f)[0].principal, "User:alice");
  EXPECT_TRUE((*f)[0].matches(topic("ord", "User:alice", Operation::read, Permission::allow, "*", PatternType::prefixed)));
  EXPECT_FALSE((*f)[0].matches(topic("orders", "User:bob", Operation::read)));

  AclSelectors wrong;
  wrong.operations = {"Read"};
  EXPECT_FALSE(acl_filters_to_list(wrong).ok());
}

TEST(AclRender, KafkaPrintedForms) {
  EXPECT_EQ(render_resource_pattern(ResourceType::topic, "orders", PatternType::literal),
            "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)");
  EXPECT_EQ(render_entry(topic("orders", "User:alice", Operation::read)),
            "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)");
  std::vector<AclBinding> acls = {topic("orders", "User:alice", Operation::read),
                                  topic("orders", "User:bob", Operation::write, Permission::deny, "10.0.0.1")};
  EXPECT_EQ(render_acl_listing(acls, "Current ACLs for resource"),
            "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`: \n"
            " \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)\n"
            "\t(principal=User:bob, host=10.0.0.1, operation=WRITE, permissionType=DENY) \n\n");
  AclBinding odd{static_cast<ResourceType>(42), "x", PatternType::literal, "User:a", "*", Operation::read,
                 Permission::allow};
  EXPECT_NE(render_entry(odd).find("operation=READ"), std::string::npos);
  EXPECT_NE(render_resource_pattern(odd.resource_type, "x", PatternType::literal).find("UNKNOWN(42)"),
            std::string::npos);
}

TEST(AclErrors, PlainWords) {
  EXPECT_EQ(explain_acl_error(31, std::nullopt, "alter ACLs", "User:x"),
            "the broker says User:x may not alter ACLs (CLUSTER_AUTHORIZATION_FAILED)");
  EXPECT_EQ(explain_acl_error(54, std::string(""), "alter ACLs", "User:x"),
            "the broker has no authorizer configured (authorizer.class.name), so it cannot alter ACLs "
            "(SECURITY_DISABLED)");
  EXPECT_EQ(explain_acl_error(42, std::string("host must be an IP address"), "alter ACLs", "User:x"),
            "the broker refused the ACL as invalid (INVALID_REQUEST): host must be an IP address");
  EXPECT_EQ(explain_acl_error(999, std::nullopt, "describe ACLs", "User:x"),
            "the broker could not describe ACLs (error code 999)");
}

TEST(ScramUpsertion, SaltIsFreshAndSaltedPasswordMatches) {
  ScramUpsert u{"alice", security::sasl::Mechanism::scram_sha_512, 8192, "alice-secret"};
  auto a = make_upsertion(u);
  auto b = make_upsertion(u);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->name, "alice");
  EXPECT_EQ(a->mechanism, 2);
  EXPECT_EQ(a->iterations, 8192);
  EXPECT_EQ(a->salt.size(), 32u);
  EXPECT_NE(a->salt, b->salt);
  auto expected = security::sasl::scram_salted_password(u.mechanism, u.password, a->salt, u.iterations);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(a->salted_password, *expected);
  EXPECT_EQ(a->salted_password.size(), 64u);  // SHA-512
}

TEST(ScramUpsertion, RefusesWhatKafkaRefuses) {
  EXPECT_FALSE(make_upsertion({"alice", security::sasl::Mechanism::plain, 4096, "pw"}).ok());
  EXPECT_FALSE(make_upsertion({"alice", security::sasl::Mechanism::scram_sha_256, 1000, "pw"}).ok());
  EXPECT_FALSE(make_upsertion({"alice", security::sasl::Mechanism::scram_sha_256, 20000, "pw"}).ok());
  EXPECT_FALSE(make_upsertion({"", security::sasl::Mechanism::scram_sha_256, 4096, "pw"}).ok());
  auto empty = make_upsertion({"alice", security::sasl::Mechanism::scram_sha_256, 4096, ""});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("user alice"), std::string::npos);
}

}  // namespace
}  // namespace bulwark::client
