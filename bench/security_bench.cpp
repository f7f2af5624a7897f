// ACL checks per second with 10,000 ACLs (5,000 literal topics, 5,000 prefixed), hits and misses,
// and principal mapping with a typical rule list.
#include <benchmark/benchmark.h>

#include <optional>
#include <string>
#include <vector>

#include "security/authorizer.h"
#include "security/principal.h"
#include "security/sasl.h"
#include "security/sasl_internal.h"

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

// SCRAM logins per second, server work only: the client messages are computed once for a fixed
// server nonce (the test hook in sasl_internal.h), so each iteration is what a broker spends on one
// login (lookup, two HMACs, one hash, message parsing). Arg 256/512 picks the hash.
void BM_ScramServerLogin(benchmark::State& state) {
  namespace sasl = bulwark::security::sasl;
  const auto mechanism = state.range(0) == 512 ? sasl::Mechanism::scram_sha_512 : sasl::Mechanism::scram_sha_256;
  auto credential = sasl::make_scram_credential(mechanism, "alice-secret", 4096);
  if (!credential.ok()) {
    state.SkipWithError("credential");
    return;
  }
  const sasl::ScramCredential stored = *credential;
  auto lookup = [&stored](const std::string& user) -> std::optional<sasl::ScramCredential> {
    if (user == "alice") return stored;
    return std::nullopt;
  };
  const std::string server_nonce = "benchmark-server-nonce-0123456789";
  sasl::ScramClient client(mechanism, "alice", "alice-secret");
  const bulwark::Bytes client_first = client.first_message();
  bulwark::Bytes client_final;
  {
    sasl::internal::ScopedNonceForTesting nonce(server_nonce);
    sasl::ScramServer server(mechanism, lookup);
    auto server_first = server.step(client_first);
    if (!server_first.ok()) {
      state.SkipWithError("server-first");
      return;
    }
    auto final_message = client.final_message(*server_first);
    if (!final_message.ok()) {
      state.SkipWithError("client-final");
      return;
    }
    client_final = *final_message;
  }
  sasl::internal::ScopedNonceForTesting nonce(server_nonce);
  for (auto _ : state) {
    sasl::ScramServer server(mechanism, lookup);
    auto first = server.step(client_first);
    auto last = server.step(client_final);
    if (!first.ok() || !last.ok() || !server.complete()) {
      state.SkipWithError("login failed");
      return;
    }
    benchmark::DoNotOptimize(last);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScramServerLogin)->Arg(256)->Arg(512);

// The client's side of one login is dominated by PBKDF2 at 4096 iterations; for comparison.
void BM_ScramSaltedPassword(benchmark::State& state) {
  namespace sasl = bulwark::security::sasl;
  const auto mechanism = state.range(0) == 512 ? sasl::Mechanism::scram_sha_512 : sasl::Mechanism::scram_sha_256;
  const bulwark::Bytes salt(32, 0x5a);
  for (auto _ : state) benchmark::DoNotOptimize(sasl::scram_salted_password(mechanism, "alice-secret", salt, 4096));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScramSaltedPassword)->Arg(256)->Arg(512);

}  // namespace

BENCHMARK_MAIN();
