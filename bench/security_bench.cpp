// ACL checks per second with 10,000 ACLs (5,000 literal topics, 5,000 prefixed), hits and misses,
// and principal mapping with a typical rule list.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "security/authorizer.h"
#include "security/principal.h"

namespace {

using namespace bulwark::security;

Authorizer& ten_thousand_acls() {
  static Authorizer* authz = [] {
    auto* a = new Authorizer(AuthorizerConfig{{"User:admin"}, false});
    std::vector<AclBinding> bindings;
    for (int i = 0; i < 5000; ++i) {
      std::string user = "User:u" + std::to_string(i % 100);
      bindings.push_back({ResourceType::topic, "topic-" + std::to_string(i), PatternType::literal, user, "*",
                          Operation::read, Permission::allow});
      bindings.push_back({ResourceType::topic, "app" + std::to_string(i) + "-", PatternType::prefixed, user, "*",
                          Operation::write, Permission::allow});
    }
    if (!a->add_acls(bindings).ok()) std::abort();
    return a;
  }();
  return *authz;
}

const KafkaPrincipal u7{"User", "u7"};

void BM_LiteralHit(benchmark::State& state) {
  auto& authz = ten_thousand_acls();
  int allowed = 0;
  for (auto _ : state)
    allowed += authz.authorize(u7, "10.0.0.1", Operation::read, ResourceType::topic, "topic-4907") == Decision::allowed;
  if (allowed != static_cast<int>(state.iterations())) state.SkipWithError("expected every check allowed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LiteralHit);

void BM_PrefixedHit(benchmark::State& state) {
  auto& authz = ten_thousand_acls();
  int allowed = 0;
  for (auto _ : state)
    allowed += authz.authorize(u7, "10.0.0.1", Operation::write, ResourceType::topic, "app4907-orders-eu") ==
               Decision::allowed;
  if (allowed != static_cast<int>(state.iterations())) state.SkipWithError("expected every check allowed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PrefixedHit);

void BM_Miss(benchmark::State& state) {
  auto& authz = ten_thousand_acls();
  int allowed = 0;
  for (auto _ : state)
    allowed += authz.authorize(u7, "10.0.0.1", Operation::read, ResourceType::topic, "unknown-topic-name") ==
               Decision::allowed;
  if (allowed != 0) state.SkipWithError("expected every check denied");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Miss);

void BM_WrongPrincipal(benchmark::State& state) {
  auto& authz = ten_thousand_acls();
  const KafkaPrincipal other{"User", "u8"};
  int allowed = 0;
  for (auto _ : state)
    allowed += authz.authorize(other, "10.0.0.1", Operation::read, ResourceType::topic, "topic-4907") ==
               Decision::allowed;
  if (allowed != 0) state.SkipWithError("expected every check denied");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WrongPrincipal);

void BM_SuperUser(benchmark::State& state) {
  auto& authz = ten_thousand_acls();
  const KafkaPrincipal admin{"User", "admin"};
  for (auto _ : state)
    benchmark::DoNotOptimize(authz.authorize(admin, "10.0.0.1", Operation::write, ResourceType::topic, "x"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SuperUser);

void BM_ConcurrentChecks(benchmark::State& state) {
  auto& authz = ten_thousand_acls();
  for (auto _ : state)
    benchmark::DoNotOptimize(
        authz.authorize(u7, "10.0.0.1", Operation::write, ResourceType::topic, "app4907-orders-eu"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConcurrentChecks)->Threads(2)->UseRealTime();

void BM_PrincipalMapping(benchmark::State& state) {
  auto rules = PrincipalMappingRules::parse(
      "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
      "RULE:^CN=([^,]+).*$/$1/,DEFAULT");
  if (!rules.ok()) {
    state.SkipWithError("rules did not parse");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(principal_for_tls("CN=kafka-client-17,O=Bulwark,C=DE", *rules));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PrincipalMapping);

}  // namespace

BENCHMARK_MAIN();
