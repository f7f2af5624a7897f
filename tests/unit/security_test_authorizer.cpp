// Authorizer decisions with Kafka's StandardAuthorizer semantics, filters, validation, persistence.
#include <gtest/gtest.h>

#include "security/authorizer.h"

namespace bulwark::security {
namespace {

using O = Operation;
using R = ResourceType;
constexpr auto kAllow = Decision::allowed;
constexpr auto kDeny = Decision::denied;

AclBinding acl(R type, std::string name, PatternType pattern, std::string principal, O op,
               Permission permission = Permission::allow, std::string host = "*") {
  return AclBinding{type, std::move(name), pattern, std::move(principal), std::move(host), op, permission};
}
AclBinding topic_allow(std::string name, std::string principal, O op) {
  return acl(R::topic, std::move(name), PatternType::literal, std::move(principal), op);
}

const KafkaPrincipal alice{"User", "alice"};
const KafkaPrincipal bob{"User", "bob"};
const KafkaPrincipal admin{"User", "admin"};

struct Check {
  KafkaPrincipal who;
  std::string host;
  O op;
  R type;
  std::string name;
  Decision expected;
};

void expect_all(const Authorizer& authz, const std::vector<Check>& checks) {
  for (const Check& c : checks)
    EXPECT_EQ(authz.authorize(c.who, c.host, c.op, c.type, c.name), c.expected)
        << c.who.to_string() << " from " << c.host << " " << name_of(c.op) << " " << name_of(c.type) << ":"
        << c.name << " expected " << (c.expected == kAllow ? "allowed" : "denied");
}

TEST(Authorizer, SuperUserAllowedEvenAgainstDeny) {
  Authorizer authz({{"User:admin"}, false});
  ASSERT_TRUE(authz.add_acls({acl(R::topic, "*", PatternType::literal, "User:*", O::all, Permission::deny)}).ok());
  expect_all(authz, {
                        {admin, "10.0.0.1", O::write, R::topic, "orders", kAllow},
                        {admin, "10.0.0.1", O::alter, R::cluster, "kafka-cluster", kAllow},
                        {alice, "10.0.0.1", O::write, R::topic, "orders", kDeny},
                    });
  EXPECT_TRUE(authz.is_super_user(admin));
  EXPECT_FALSE(authz.is_super_user(KafkaPrincipal{"Group", "admin"}));
}

TEST(Authorizer, DenyWinsOverAllow) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({
                                 topic_allow("orders", "User:alice", O::all),
                                 acl(R::topic, "orders", PatternType::literal, "User:alice", O::write, Permission::deny),
                                 acl(R::topic, "pay", PatternType::prefixed, "User:*", O::read, Permission::deny),
                                 topic_allow("payments", "User:alice", O::read),
                             })
                  .ok());
  expect_all(authz, {
                        {alice, "1.2.3.4", O::write, R::topic, "orders", kDeny},
                        {alice, "1.2.3.4", O::read, R::topic, "orders", kAllow},
                        {alice, "1.2.3.4", O::read, R::topic, "payments", kDeny},  // prefixed deny wins
                        // DENY READ does not deny the DESCRIBE that ALLOW READ implies.
                        {alice, "1.2.3.4", O::describe, R::topic, "payments", kAllow},
                    });
}

TEST(Authorizer, DenyAllDeniesEveryOperation) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({topic_allow("t", "User:alice", O::read),
                              acl(R::topic, "t", PatternType::literal, "User:alice", O::all, Permission::deny)})
                  .ok());
  for (O op : {O::read, O::write, O::describe, O::describe_configs, O::remove, O::alter})
    EXPECT_EQ(authz.authorize(alice, "1.1.1.1", op, R::topic, "t"), kDeny) << name_of(op);
}

TEST(Authorizer, ImpliedDescribe) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({topic_allow("r", "User:alice", O::read), topic_allow("w", "User:alice", O::write),
                              topic_allow("d", "User:alice", O::remove), topic_allow("a", "User:alice", O::alter),
                              topic_allow("c", "User:alice", O::create),
                              topic_allow("ac", "User:alice", O::alter_configs)})
                  .ok());
  expect_all(authz, {
                        {alice, "h", O::describe, R::topic, "r", kAllow},
                        {alice, "h", O::describe, R::topic, "w", kAllow},
                        {alice, "h", O::describe, R::topic, "d", kAllow},
                        {alice, "h", O::describe, R::topic, "a", kAllow},
                        {alice, "h", O::describe, R::topic, "c", kDeny},  // CREATE does not imply DESCRIBE
                        {alice, "h", O::describe, R::topic, "ac", kDeny},
                        // The implication is one way.
                        {alice, "h", O::write, R::topic, "r", kDeny},
                        {alice, "h", O::read, R::topic, "w", kDeny},
                    });
}

TEST(Authorizer, ImpliedDescribeConfigs) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({topic_allow("ac", "User:alice", O::alter_configs),
                              topic_allow("dc", "User:alice", O::describe_configs)})
                  .ok());
  expect_all(authz, {
                        {alice, "h", O::describe_configs, R::topic, "ac", kAllow},
                        {alice, "h", O::alter_configs, R::topic, "dc", kDeny},
                        {alice, "h", O::describe, R::topic, "ac", kDeny},
                    });
}

TEST(Authorizer, AllCoversEveryOperation) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({acl(R::cluster, "kafka-cluster", PatternType::literal, "User:alice", O::all)}).ok());
  for (O op : {O::create, O::alter, O::describe, O::cluster_action, O::describe_configs, O::alter_configs,
               O::idempotent_write})
    EXPECT_EQ(authz.authorize(alice, "h", op, R::cluster, "kafka-cluster"), kAllow) << name_of(op);
  EXPECT_EQ(authz.authorize(bob, "h", O::describe, R::cluster, "kafka-cluster"), kDeny);
}

TEST(Authorizer, LiteralPrefixedAndWildcardResources) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({
                                 topic_allow("orders", "User:alice", O::read),
                                 acl(R::topic, "logs-", PatternType::prefixed, "User:alice", O::write),
                                 topic_allow("*", "User:bob", O::describe),
                                 // A literal "*" in a prefixed ACL is just a character.
                                 acl(R::topic, "*", PatternType::prefixed, "User:alice", O::alter),
                             })
                  .ok());
  expect_all(authz, {
                        {alice, "h", O::read, R::topic, "orders", kAllow},
                        {alice, "h", O::read, R::topic, "orders2", kDeny},  // literal means exact
                        {alice, "h", O::read, R::topic, "order", kDeny},
                        {alice, "h", O::write, R::topic, "logs-app", kAllow},
                        {alice, "h", O::write, R::topic, "logs-", kAllow},  // a prefix matches itself
                        {alice, "h", O::write, R::topic, "logs", kDeny},
                        {alice, "h", O::write, R::topic, "xlogs-app", kDeny},
                        {bob, "h", O::describe, R::topic, "anything", kAllow},
                        {bob, "h", O::describe, R::topic, "*", kAllow},
                        {bob, "h", O::read, R::topic, "anything", kDeny},
                        {alice, "h", O::alter, R::topic, "*x", kAllow},
                        {alice, "h", O::alter, R::topic, "x", kDeny},
                        // Resource types are separate: a topic ACL says nothing about a group.
                        {alice, "h", O::read, R::group, "orders", kDeny},
                    });
}

TEST(Authorizer, WildcardPrincipal) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({topic_allow("public", "User:*", O::read)}).ok());
  expect_all(authz, {
                        {alice, "h", O::read, R::topic, "public", kAllow},
                        {kAnonymousPrincipal, "h", O::read, R::topic, "public", kAllow},
                        {bob, "h", O::write, R::topic, "public", kDeny},
                        // As in Kafka (matchingPrincipals adds User:* to any principal), whatever the type.
                        {KafkaPrincipal{"Group", "x"}, "h", O::read, R::topic, "public", kAllow},
                    });
}

TEST(Authorizer, HostMatching) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({
                                 acl(R::topic, "t", PatternType::literal, "User:alice", O::read, Permission::allow,
                                     "10.0.0.5"),
                                 acl(R::topic, "t", PatternType::literal, "User:bob", O::read, Permission::allow, "*"),
                                 acl(R::topic, "t", PatternType::literal, "User:bob", O::read, Permission::deny,
                                     "10.0.0.66"),
                                 acl(R::topic, "v6", PatternType::literal, "User:alice", O::read, Permission::allow,
                                     "::1"),
                             })
                  .ok());
  expect_all(authz, {
                        {alice, "10.0.0.5", O::read, R::topic, "t", kAllow},
                        {alice, "10.0.0.6", O::read, R::topic, "t", kDeny},
                        {bob, "10.0.0.5", O::read, R::topic, "t", kAllow},
                        {bob, "10.0.0.66", O::read, R::topic, "t", kDeny},
                        {alice, "::1", O::read, R::topic, "v6", kAllow},
                        {alice, "127.0.0.1", O::read, R::topic, "v6", kDeny},
                    });
}

TEST(Authorizer, AllowEveryoneOnlyWhereNoAclMatchesTheResource) {
  Authorizer authz({{}, /*allow_everyone_if_no_acl_found=*/true});
  ASSERT_TRUE(authz.add_acls({
                                 topic_allow("owned", "User:bob", O::read),
                                 acl(R::topic, "team-", PatternType::prefixed, "User:bob", O::write),
                                 acl(R::group, "*", PatternType::literal, "User:bob", O::read),
                             })
                  .ok());
  expect_all(authz, {
                        {alice, "h", O::read, R::topic, "free", kAllow},      // no ACL on it at all
                        {alice, "h", O::read, R::topic, "owned", kDeny},      // an ACL for someone else exists
                        {alice, "h", O::read, R::topic, "team-x", kDeny},     // a prefixed ACL covers it
                        {alice, "h", O::read, R::group, "any-group", kDeny},  // the wildcard covers it
                        {alice, "h", O::read, R::cluster, "kafka-cluster", kAllow},
                        {bob, "h", O::write, R::topic, "owned", kDeny},  // bob's ACL is for READ only
                    });
  Authorizer strict({{}, false});
  EXPECT_EQ(strict.authorize(alice, "h", O::read, R::topic, "free"), kDeny);
  // Requests that are not concrete (ANY type, ANY or ALL operation, unknown codes) are never
  // allowed by the no-ACL default.
  expect_all(authz, {
                        {alice, "h", O::read, R::any, "free", kDeny},
                        {alice, "h", O::any, R::topic, "free", kDeny},
                        {alice, "h", O::all, R::topic, "free", kDeny},
                        {alice, "h", O::read, static_cast<R>(9), "free", kDeny},
                        {alice, "h", static_cast<O>(40), R::topic, "free", kDeny},
                    });
}

TEST(Authorizer, PrefixOverlaps) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({
                                 acl(R::topic, "a", PatternType::prefixed, "User:alice", O::read),
                                 acl(R::topic, "ab", PatternType::prefixed, "User:alice", O::write),
                                 acl(R::topic, "abc", PatternType::prefixed, "User:alice", O::read, Permission::deny),
                                 acl(R::topic, "abcd", PatternType::prefixed, "User:alice", O::alter),
                             })
                  .ok());
  expect_all(authz, {
                        {alice, "h", O::read, R::topic, "a", kAllow},
                        {alice, "h", O::read, R::topic, "ab", kAllow},
                        {alice, "h", O::write, R::topic, "ab", kAllow},
                        {alice, "h", O::write, R::topic, "a", kDeny},
                        {alice, "h", O::read, R::topic, "abc", kDeny},   // the longer deny prefix
                        {alice, "h", O::read, R::topic, "abcde", kDeny},
                        {alice, "h", O::write, R::topic, "abcde", kAllow},
                        {alice, "h", O::alter, R::topic, "abcd", kAllow},
                        {alice, "h", O::alter, R::topic, "abc", kDeny},
                        {alice, "h", O::read, R::topic, "b", kDeny},
                    });
}

TEST(Authorizer, IdempotentWriteImpliedByWriteOnAnyTopic) {
  Authorizer authz({});
  EXPECT_EQ(authz.authorize_idempotent_write(alice, "h"), kDeny);
  ASSERT_TRUE(authz.add_acls({topic_allow("orders", "User:alice", O::write),
                              acl(R::topic, "x-", PatternType::prefixed, "User:bob", O::write),
                              acl(R::topic, "x-", PatternType::prefixed, "User:bob", O::write, Permission::deny),
                              acl(R::cluster, "kafka-cluster", PatternType::literal, "User:carol",
                                  O::idempotent_write)})
                  .ok());
  EXPECT_EQ(authz.authorize_idempotent_write(alice, "h"), kAllow);
  EXPECT_EQ(authz.authorize_idempotent_write(bob, "h"), kDeny);  // its only WRITE is denied
  EXPECT_EQ(authz.authorize_idempotent_write(KafkaPrincipal{"User", "carol"}, "h"), kAllow);
  EXPECT_EQ(authz.authorize_idempotent_write(KafkaPrincipal{"User", "dave"}, "h"), kDeny);
  // But IDEMPOTENT_WRITE itself is not implied for the cluster resource.
  EXPECT_EQ(authz.authorize(alice, "h", O::idempotent_write, R::cluster, "kafka-cluster"), kDeny);
}

TEST(Authorizer, AuthorizeByResourceType) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({
                                 topic_allow("a", "User:alice", O::read),
                                 acl(R::topic, "a", PatternType::literal, "User:alice", O::read, Permission::deny),
                                 topic_allow("pre-x", "User:bob", O::read),
                                 acl(R::topic, "pre-", PatternType::prefixed, "User:bob", O::read, Permission::deny),
                                 acl(R::topic, "ok-", PatternType::prefixed, "User:carol", O::read),
                             })
                  .ok());
  EXPECT_EQ(authz.authorize_by_resource_type(alice, "h", O::read, R::topic), kDeny);
  EXPECT_EQ(authz.authorize_by_resource_type(bob, "h", O::read, R::topic), kDeny);
  EXPECT_EQ(authz.authorize_by_resource_type(KafkaPrincipal{"User", "carol"}, "h", O::read, R::topic), kAllow);
  EXPECT_EQ(authz.authorize_by_resource_type(KafkaPrincipal{"User", "carol"}, "h", O::write, R::topic), kDeny);
  ASSERT_TRUE(
      authz.add_acls({acl(R::topic, "*", PatternType::literal, "User:*", O::read, Permission::deny)}).ok());
  EXPECT_EQ(authz.authorize_by_resource_type(KafkaPrincipal{"User", "carol"}, "h", O::read, R::topic), kDeny);
}

// ---- filters ----

class AuthorizerFilters : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(authz.add_acls(all).ok());
  }
  std::vector<AclBinding> all = {
      topic_allow("orders", "User:alice", O::read),                                             // 0
      topic_allow("*", "User:bob", O::describe),                                                // 1
      acl(R::topic, "ord", PatternType::prefixed, "User:alice", O::write),                      // 2
      acl(R::topic, "orders", PatternType::prefixed, "User:carol", O::read, Permission::deny),  // 3
      acl(R::group, "orders", PatternType::literal, "User:alice", O::read),                     // 4
      acl(R::topic, "other", PatternType::literal, "User:alice", O::read, Permission::allow, "10.0.0.1"),  // 5
  };
  Authorizer authz{{}};
  std::vector<AclBinding> pick(std::initializer_list<int> indexes) {
    std::vector<AclBinding> out;
    for (int i : indexes) out.push_back(all[static_cast<std::size_t>(i)]);
    return out;
  }
};

TEST_F(AuthorizerFilters, AnyMatchesEverything) { EXPECT_EQ(authz.describe(AclBindingFilter::any()), all); }

TEST_F(AuthorizerFilters, AnyPatternComparesNamesExactly) {
  AclBindingFilter f;
  f.resource_type = R::topic;
  f.resource_name = "orders";
  EXPECT_EQ(authz.describe(f), pick({0, 3}));
}

TEST_F(AuthorizerFilters, MatchFindsTheAclsThatApply) {
  AclBindingFilter f;
  f.resource_type = R::topic;
  f.resource_name = "orders";
  f.pattern_type = PatternType::match;
  EXPECT_EQ(authz.describe(f), pick({0, 1, 2, 3}));
  f.resource_name = "ordinal";
  EXPECT_EQ(authz.describe(f), pick({1, 2}));
}

TEST_F(AuthorizerFilters, SpecificPatternType) {
  AclBindingFilter f;
  f.pattern_type = PatternType::prefixed;
  EXPECT_EQ(authz.describe(f), pick({2, 3}));
  f.resource_name = "ord";
  EXPECT_EQ(authz.describe(f), pick({2}));
}

TEST_F(AuthorizerFilters, EntryFields) {
  AclBindingFilter f;
  f.principal = "User:alice";
  EXPECT_EQ(authz.describe(f), pick({0, 2, 4, 5}));
  f.operation = O::read;
  EXPECT_EQ(authz.describe(f), pick({0, 4, 5}));
  f.host = "10.0.0.1";
  EXPECT_EQ(authz.describe(f), pick({5}));
  AclBindingFilter deny;
  deny.permission = Permission::deny;
  EXPECT_EQ(authz.describe(deny), pick({3}));
}

TEST_F(AuthorizerFilters, RemoveReturnsWhatItDeletedAndDecisionsFollow) {
  EXPECT_EQ(authz.authorize(alice, "h", O::read, R::topic, "orders"), kAllow);
  AclBindingFilter f;
  f.resource_type = R::topic;
  f.resource_name = "orders";
  f.pattern_type = PatternType::match;
  f.principal = "User:alice";
  EXPECT_EQ(authz.remove(f), pick({0, 2}));
  EXPECT_EQ(authz.describe(AclBindingFilter::any()), pick({1, 3, 4, 5}));
  EXPECT_EQ(authz.authorize(alice, "h", O::read, R::topic, "orders"), kDeny);
  EXPECT_TRUE(authz.remove(f).empty());
  EXPECT_EQ(authz.remove(AclBindingFilter::any()).size(), 4u);
  EXPECT_EQ(authz.acl_count(), 0u);
}

TEST(Authorizer, DuplicateAddKeepsOneCopy) {
  Authorizer authz({});
  ASSERT_TRUE(authz.add_acls({topic_allow("t", "User:a", O::read), topic_allow("t", "User:a", O::read)}).ok());
  ASSERT_TRUE(authz.add_acls({topic_allow("t", "User:a", O::read)}).ok());
  EXPECT_EQ(authz.acl_count(), 1u);
}

// ---- validation ----

TEST(Authorizer, InvalidBindingsRejectedAndNothingAdded) {
  std::vector<AclBinding> invalid = {
      acl(R::any, "t", PatternType::literal, "User:a", O::read),
      acl(R::topic, "t", PatternType::match, "User:a", O::read),
      acl(R::topic, "t", PatternType::any, "User:a", O::read),
      acl(R::topic, "t", PatternType::literal, "User:a", O::any),
      acl(R::topic, "t", PatternType::literal, "User:a", O::read, Permission::any),
      acl(R::topic, "", PatternType::literal, "User:a", O::read),
      acl(R::topic, "t", PatternType::literal, "", O::read),
      acl(R::topic, "t", PatternType::literal, "alice", O::read),
      acl(R::topic, "t", PatternType::literal, "User:", O::read),
      acl(R::topic, "t", PatternType::literal, "User:a", O::read, Permission::allow, "example.com"),
      acl(R::topic, "t", PatternType::literal, "User:a", O::read, Permission::allow, ""),
      acl(R::topic, "t", PatternType::literal, "User:a", O::read, Permission::allow, "10.0.0.300"),
      acl(static_cast<R>(42), "t", PatternType::literal, "User:a", O::read),
      acl(R::topic, "t", PatternType::literal, "User:a", static_cast<O>(99)),
  };
  Authorizer authz({});
  for (const AclBinding& b : invalid) {
    Status s = authz.add_acls({topic_allow("fine", "User:a", O::read), b});
    EXPECT_FALSE(s.ok()) << b.to_string();
    if (!s.ok()) {
      EXPECT_EQ(s.error().kind, ErrorKind::invalid_argument);
      EXPECT_NE(s.error().message.find("invalid ACL"), std::string::npos) << s.error().message;
    }
  }
  EXPECT_EQ(authz.acl_count(), 0u);  // all or nothing
  EXPECT_TRUE(validate_acl_binding(acl(R::topic, "t", PatternType::prefixed, "User:*", O::all, Permission::deny,
                                       "2001:db8::1"))
                  .ok());
}

TEST(Authorizer, SuperUsersParsing) {
  auto users = parse_super_users(" User:admin ; User:CN=kafka-1,O=Bulwark;;");
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(*users, (std::vector<std::string>{"User:admin", "User:CN=kafka-1,O=Bulwark"}));
  EXPECT_FALSE(parse_super_users("admin").ok());
  Authorizer authz({*users, false});
  EXPECT_EQ(authz.authorize(KafkaPrincipal{"User", "CN=kafka-1,O=Bulwark"}, "h", O::cluster_action, R::cluster,
                            "kafka-cluster"),
            kAllow);
}

TEST(Authorizer, NamesAndCodes) {
  EXPECT_EQ(name_of(O::remove), "DELETE");
  EXPECT_EQ(name_of(O::describe_configs), "DESCRIBE_CONFIGS");
  EXPECT_EQ(name_of(R::transactional_id), "TRANSACTIONAL_ID");
  EXPECT_EQ(static_cast<int>(*operation_from("delete")), 6);
  EXPECT_EQ(*resource_type_from("Topic"), R::topic);
  EXPECT_EQ(*resource_type_from("4"), R::cluster);
  EXPECT_EQ(*pattern_type_from("PREFIXED"), PatternType::prefixed);
  EXPECT_EQ(*permission_from("deny"), Permission::deny);
  EXPECT_FALSE(operation_from("READS").ok());
}

// ---- persistence ----

TEST(AclPersistence, RoundTrip) {
  std::vector<AclBinding> bindings = {
      topic_allow("orders", "User:alice", O::read),
      acl(R::topic, "logs-", PatternType::prefixed, "User:*", O::all, Permission::deny, "10.1.2.3"),
      acl(R::cluster, "kafka-cluster", PatternType::literal, "User:CN=a,O=\"q\"", O::idempotent_write),
      acl(R::transactional_id, "tx\xc3\xa9", PatternType::literal, "User:b", O::describe, Permission::allow, "::1"),
      acl(R::group, "*", PatternType::literal, "User:b", O::remove),
      acl(R::delegation_token, "tok", PatternType::literal, "User:b", O::describe_tokens),
      acl(R::user, "u", PatternType::prefixed, "User:b", O::create_tokens),
  };
  std::string text = encode_acls(bindings);
  auto decoded = decode_acls(text);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, bindings);
  auto empty = decode_acls(encode_acls({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(AclPersistence, CorruptInputIsAnError) {
  std::string good = encode_acls({topic_allow("orders", "User:alice", O::read)});
  std::vector<std::string> bad = {
      "",
      "not json",
      good.substr(0, good.size() / 2),
      "[]",
      R"({"acls":[]})",
      R"({"version":2,"acls":[]})",
      R"({"version":1})",
      R"({"version":1,"acls":{}})",
      R"({"version":1,"acls":[1]})",
      R"({"version":1,"acls":[{"resource_type":"TOPIC"}]})",
      R"({"version":1,"acls":[{"resource_type":"TOPICS","resource_name":"t","pattern_type":"LITERAL","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}]})",
      R"({"version":1,"acls":[{"resource_type":"TOPIC","resource_name":"t","pattern_type":"MATCH","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}]})",
      R"({"version":1,"acls":[{"resource_type":"TOPIC","resource_name":"","pattern_type":"LITERAL","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}]})",
      R"({"version":1,"acls":[{"resource_type":"TOPIC","resource_name":"t","pattern_type":"LITERAL","principal":"User:a","host":"*","operation":7,"permission":"ALLOW"}]})",
  };
  for (const std::string& text : bad) {
    auto decoded = decode_acls(text);
    EXPECT_FALSE(decoded.ok()) << text;
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.error().kind, ErrorKind::corrupt) << text;
    }
  }
}

// ---- audit ----

TEST(AuditLine, NamesTheRequestAndKeepsOneLine) {
  std::string line = render_denial(bob, "10.0.0.7", O::write, R::topic, "orders");
  EXPECT_EQ(line,
            "Principal = User:bob is Denied operation = WRITE from host = 10.0.0.7 on resource = Topic:LITERAL:orders");
  std::string hostile = render_denial(KafkaPrincipal{"User", "x\ny"}, "h", O::read, R::group, "g\r\n", PatternType::prefixed);
  EXPECT_EQ(hostile.find('\n'), std::string::npos);
  EXPECT_EQ(hostile.find('\r'), std::string::npos);
  EXPECT_NE(hostile.find("Group:PREFIXED:g??"), std::string::npos) << hostile;
}

TEST(AuthorizerNames, WireCodesOnlyForCodesKafkaDefines) {
  EXPECT_EQ(resource_type_from_code(2), ResourceType::topic);
  EXPECT_EQ(pattern_type_from_code(4), PatternType::prefixed);
  EXPECT_EQ(operation_from_code(14), Operation::describe_tokens);
  EXPECT_EQ(permission_from_code(3), Permission::allow);
  for (std::int8_t unknown : {std::int8_t{0}, std::int8_t{-1}, std::int8_t{99}}) {
    EXPECT_FALSE(resource_type_from_code(unknown).has_value()) << int(unknown);
    EXPECT_FALSE(pattern_type_from_code(unknown).has_value()) << int(unknown);
    EXPECT_FALSE(operation_from_code(unknown).has_value()) << int(unknown);
    EXPECT_FALSE(permission_from_code(unknown).has_value()) << int(unknown);
  }
  EXPECT_FALSE(resource_type_from_code(8).has_value());
  EXPECT_FALSE(operation_from_code(15).has_value());
}

}  // namespace
}  // namespace bulwark::security
