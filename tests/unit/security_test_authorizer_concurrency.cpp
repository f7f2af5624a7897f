// Readers keep getting consistent decisions while writers add and remove ACLs; large ACL sets.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "security/authorizer.h"

namespace bulwark::security {
namespace {

AclBinding topic_acl(std::string name, PatternType pattern, std::string principal, Operation op,
                     Permission permission = Permission::allow) {
  return AclBinding{ResourceType::topic, std::move(name), pattern, std::move(principal), "*", op, permission};
}

TEST(AuthorizerConcurrency, ReadersWhileWritersAddAndRemove) {
  Authorizer authz({});
  const KafkaPrincipal reader{"User", "reader"};
  // A stable ACL the writers never touch: it must be visible to every reader at every moment.
  ASSERT_TRUE(authz.add_acls({topic_acl("stable", PatternType::literal, "User:reader", Operation::read)}).ok());

  std::atomic<bool> stop{false};
  std::atomic<long> checks{0};
  std::atomic<long> wrong{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (authz.authorize(reader, "1.1.1.1", Operation::read, ResourceType::topic, "stable") != Decision::allowed)
          ++wrong;
        // A churned topic: either decision is fine, but a DENY-with-ALLOW pair is added and removed
        // together, so the pair is never seen half applied: never allowed.
        if (authz.authorize(reader, "1.1.1.1", Operation::write, ResourceType::topic,
                            "churn-" + std::to_string(r)) == Decision::allowed)
          ++wrong;
        ++checks;
      }
    });
  }
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      int round = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        std::vector<AclBinding> pair;
        for (int r = 0; r < 3; ++r) {
          pair.push_back(topic_acl("churn-" + std::to_string(r), PatternType::literal, "User:reader", Operation::write));
          pair.push_back(topic_acl("churn-", PatternType::prefixed, "User:*", Operation::write, Permission::deny));
        }
        pair.push_back(topic_acl("w" + std::to_string(w) + "-" + std::to_string(round++), PatternType::prefixed,
                                 "User:x", Operation::read));
        EXPECT_TRUE(authz.add_acls(pair).ok());
        // One remove takes the allows and the deny together (every WRITE ACL).
        AclBindingFilter writes;
        writes.operation = Operation::write;
        authz.remove(writes);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(checks.load(), 100);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(authz.authorize(reader, "1.1.1.1", Operation::read, ResourceType::topic, "stable"), Decision::allowed);
}

TEST(AuthorizerConcurrency, StableAclAlwaysVisible) {
  Authorizer authz({});
  const KafkaPrincipal reader{"User", "reader"};
  ASSERT_TRUE(authz.add_acls({topic_acl("stable", PatternType::literal, "User:reader", Operation::read)}).ok());
  std::atomic<bool> stop{false};
  std::atomic<long> misses{0}, checks{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&] {
      while (!stop) {
        if (authz.authorize(reader, "h", Operation::read, ResourceType::topic, "stable") != Decision::allowed) ++misses;
        if (authz.authorize(reader, "h", Operation::write, ResourceType::topic, "stable") != Decision::denied) ++misses;
        ++checks;
      }
    });
  threads.emplace_back([&] {
    for (int i = 0; !stop; ++i) {
      std::string name = "t" + std::to_string(i % 50);
      EXPECT_TRUE(authz.add_acls({topic_acl(name, PatternType::prefixed, "User:other", Operation::all)}).ok());
      AclBindingFilter f;
      f.resource_name = name;
      f.principal = "User:other";
      authz.remove(f);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(checks.load(), 100);
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(authz.acl_count(), 1u);
}

TEST(AuthorizerScale, TenThousandAcls) {
  Authorizer authz({});
  std::vector<AclBinding> bindings;
  for (int i = 0; i < 5000; ++i) {
    bindings.push_back(topic_acl("topic-" + std::to_string(i), PatternType::literal, "User:u" + std::to_string(i % 100),
                                 Operation::read));
    bindings.push_back(topic_acl("app" + std::to_string(i) + "-", PatternType::prefixed,
                                 "User:u" + std::to_string(i % 100), Operation::write));
  }
  ASSERT_TRUE(authz.add_acls(bindings).ok());
  EXPECT_EQ(authz.acl_count(), 10000u);
  const KafkaPrincipal u7{"User", "u7"};
  EXPECT_EQ(authz.authorize(u7, "h", Operation::read, ResourceType::topic, "topic-107"), Decision::allowed);
  EXPECT_EQ(authz.authorize(u7, "h", Operation::read, ResourceType::topic, "topic-108"), Decision::denied);
  EXPECT_EQ(authz.authorize(u7, "h", Operation::write, ResourceType::topic, "app4907-events"), Decision::allowed);
  EXPECT_EQ(authz.authorize(u7, "h", Operation::write, ResourceType::topic, "app4908-events"), Decision::denied);
  EXPECT_EQ(authz.authorize(u7, "h", Operation::describe, ResourceType::topic, "app7-x"), Decision::allowed);
  auto text = encode_acls(authz.describe(AclBindingFilter::any()));
  auto decoded = decode_acls(text);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, bindings);
}

}  // namespace
}  // namespace bulwark::security
