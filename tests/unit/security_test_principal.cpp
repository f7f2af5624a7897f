// ssl.principal.mapping.rules: Kafka's documented examples and the cases of Kafka's own
// SslPrincipalMapperTest, with the expected values Kafka asserts.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "security/principal.h"

namespace bulwark::security {
namespace {

std::string map_or_error(const PrincipalMappingRules& rules, std::string_view dn) {
  auto r = rules.apply(dn);
  return r ? *r : "ERROR: " + r.error().message;
}

TEST(PrincipalMapping, ValidRulesFromKafka) {
  for (const char* rules : {
           "DEFAULT",
           "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
           "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
           "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
           "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
           "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
           "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
           "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
           "RULE:^CN=([^,]+).*$/$1/",
       }) {
    auto parsed = PrincipalMappingRules::parse(rules);
    EXPECT_TRUE(parsed.ok()) << rules << ": " << parsed.error().message;
  }
}

TEST(PrincipalMapping, InvalidRulesFromKafka) {
  for (const char* rules : {
           "default",
           "DEFAUL",
           "DEFAULT/L",
           "DEFAULT/U",
           "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
           "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
           "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
           "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
           "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
           "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
       }) {
    auto parsed = PrincipalMappingRules::parse(rules);
    ASSERT_FALSE(parsed.ok()) << rules << " was accepted as " << parsed->to_string();
    EXPECT_EQ(parsed.error().kind, ErrorKind::invalid_argument);
    EXPECT_NE(parsed.error().message.find("Invalid rule"), std::string::npos) << parsed.error().message;
    // The message names the offending rule (as Kafka splits it: an invalid rule ends at a comma).
    std::string first_piece = std::string(rules).substr(0, std::string(rules).find(','));
    EXPECT_NE(parsed.error().message.find(first_piece), std::string::npos) << parsed.error().message;
  }
}

TEST(PrincipalMapping, InvalidRuleMessageShowsUnmatchedPart) {
  auto parsed = PrincipalMappingRules::parse("RULE:^CN=(.*?)$/$1/L/U");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message, "Invalid rule: `RULE:^CN=(.*?)$/$1/L/U`, unmatched substring: `/U`");
}

TEST(PrincipalMapping, InlineFlagInsidePatternIsRejectedAtParse) {
  auto parsed = PrincipalMappingRules::parse("RULE:^CN=(?i)(.*)$/$1/");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("not a regular expression Bulwark supports"), std::string::npos)
      << parsed.error().message;
}

TEST(PrincipalMapping, JavaOnlyConstructsThatEcmaScriptMisreadsAreRejected) {
  for (const char* rules : {R"(RULE:^CN=(.*+)$/$1/)", R"(RULE:^CN=([a-z]++)$/$1/)", R"(RULE:^CN=(a?+)$/$1/)",
                            R"(RULE:^CN=(a{2}+)$/$1/)", R"(RULE:^CN=\Qa.b\E$/x/)", R"(RULE:\ACN=(.*)\z/$1/)",
                            // a quantifier on a quantifier: Java's "dangling meta character", and for
                            // std::regex an exponential backtrack (found by fuzz_principal_rules)
                            R"(RULE:^CN=(.**?)$/$1/)", R"(RULE:^CN=(a**)$/$1/)", R"(RULE:^CN=(a*?*)$/$1/)",
                            R"(RULE:^CN=(a+{2})$/$1/)",
                            // numbers std::regex would overflow on (undefined behaviour, found by fuzzing)
                            R"(RULE:^CN=(a)\5555555555555555555$/$1/)", R"(RULE:^CN=(a{5555555555555555555})$/$1/)",
                            R"(RULE:^CN=(a{1,5555555555555555555})$/$1/)"}) {
    auto parsed = PrincipalMappingRules::parse(rules);
    ASSERT_FALSE(parsed.ok()) << rules << " was accepted";
    EXPECT_NE(parsed.error().message.find("Invalid rule"), std::string::npos) << parsed.error().message;
  }
  // Look-alikes that are plain ECMAScript stay valid: lazy quantifiers, escaped '+', '+' in a class.
  for (const char* rules : {R"(RULE:^CN=([a-z]+?),.*$/$1/)", R"(RULE:^CN=(a\++)$/$1/)", R"(RULE:^CN=([+]+)$/$1/)",
                            R"(RULE:^CN=(?:x)+(.*)$/$1/)", R"(RULE:^CN=(.*?)+$/$1/)"}) {
    auto parsed = PrincipalMappingRules::parse(rules);
    EXPECT_TRUE(parsed.ok()) << rules << ": " << parsed.error().message;
  }
}

TEST(PrincipalMapping, PatternOutsideEcmaScriptIsRejectedAtParse) {
  // Java lookbehind: not available in std::regex ECMAScript; refused up front, never at match time.
  auto parsed = PrincipalMappingRules::parse("RULE:^(?<=CN=)(.*)$/$1/");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("Invalid rule"), std::string::npos);
}

TEST(PrincipalMapping, KafkaMapperTable) {
  auto rules = PrincipalMappingRules::parse(
      "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, "
      "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, "
      "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, "
      "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, "
      "DEFAULT");
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  struct Case {
    const char* dn;
    const char* expected;
  } cases[] = {
      {"CN=Duke,OU=ServiceUsers,O=Org,C=US", "duke"},
      {"CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme"},
      {"cn=duke,ou=sme,dc=mycp,dc=com", "DUKE@SME"},
      {"cN=duke,OU=JavaSoft,O=Sun Microsystems", "DUKE"},
      {"OU=JavaSoft,O=Sun Microsystems,C=US", "OU=JavaSoft,O=Sun Microsystems,C=US"},  // DEFAULT
  };
  for (const auto& c : cases) EXPECT_EQ(map_or_error(*rules, c.dn), c.expected) << c.dn;
}

TEST(PrincipalMapping, KafkaDocumentationExamplesAndSeeds) {
  struct Case {
    const char* rules;
    const char* dn;
    const char* expected;
  } cases[] = {
      // Kafka's security documentation.
      {"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
       "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
       "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "serviceuser"},
      {"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
       "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
       "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "adminuser@admin"},
      {"RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L", "O=Acme,cn=Some.Host.Example", "some.host.example"},
      // The seed configuration's rule.
      {"RULE:^CN=([^,]+).*$/$1/", "CN=admin-1,O=Bulwark", "admin-1"},
      {"RULE:^CN=([^,]+).*$/$1/", "CN=kafka-1", "kafka-1"},
      // Only the first matching rule applies.
      {"RULE:^CN=a.*$/first/,RULE:^CN=.*$/second/", "CN=abc", "first"},
      {"RULE:^CN=a.*$/first/,RULE:^CN=.*$/second/", "CN=xyz", "second"},
      // The whole DN must match: a partial match is no match, then DEFAULT.
      {"RULE:CN=([a-z]+)/$1/,DEFAULT", "CN=abc,O=x", "CN=abc,O=x"},
      // Upper case flag.
      {"RULE:^CN=([^,]+)$/$1/U", "CN=Mixed.Case", "MIXED.CASE"},
      // Replacement with literal text around groups, group 2 before group 1.
      {"RULE:^CN=([^,]+),O=([^,]+)$/$2-$1@x/", "CN=bob,O=acme", "acme-bob@x"},
      // An escaped dollar is literal; a reference to a missing group is kept literally (Kafka).
      {R"(RULE:^CN=([^,]+)$/\$1=$1/)", "CN=bob", "$1=bob"},
      {"RULE:^CN=([^,]+)$/$1@$4/", "CN=bob", "bob@$4"},
      // $12 with one group: group 1 then the digit 2 (Java's greedy group number rule).
      {"RULE:^CN=([^,]+)$/$12/", "CN=bob", "bob2"},
      // Escaped slash in the pattern.
      {R"(RULE:^CN=([^,]+),OU=a\/b$/$1/)", "CN=bob,OU=a/b", "bob"},
      // A leading Java (?i) flag makes the match case-insensitive.
      {"RULE:(?i)^cn=([^,]+),o=bulwark$/$1/", "CN=Zed,O=Bulwark", "Zed"},
      // DEFAULT alone and the empty string both keep the DN.
      {"DEFAULT", "CN=x,O=y", "CN=x,O=y"},
      {"", "CN=x,O=y", "CN=x,O=y"},
      {" , ,", "CN=x,O=y", "CN=x,O=y"},
  };
  for (const auto& c : cases) {
    auto rules = PrincipalMappingRules::parse(c.rules);
    ASSERT_TRUE(rules.ok()) << c.rules << ": " << rules.error().message;
    EXPECT_EQ(map_or_error(*rules, c.dn), c.expected) << c.rules << " on " << c.dn;
  }
}

TEST(PrincipalMapping, CommaWithWhitespaceFromKafka) {
  auto rules = PrincipalMappingRules::parse(R"(RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT)");
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  EXPECT_EQ(map_or_error(*rules, R"(CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz)"), R"(Tkac\, Adam)");
}

TEST(PrincipalMapping, NoMatchingRule) {
  auto rules = PrincipalMappingRules::parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/");
  ASSERT_TRUE(rules.ok());
  auto mapped = rules->apply("CN=bob,OU=Other");
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.error().kind, ErrorKind::unauthenticated);
  EXPECT_EQ(mapped.error().message,
            "No rules apply to CN=bob,OU=Other, rules [RULE:^CN=(.*?),OU=ServiceUsers.*$/$1]");
}

TEST(PrincipalMapping, ReferenceToGroupOfPatternWithoutGroupsFails) {
  // Java throws IndexOutOfBoundsException here; Bulwark refuses the connection with a clear reason.
  auto rules = PrincipalMappingRules::parse("RULE:^CN=bob$/$1/");
  ASSERT_TRUE(rules.ok());
  auto mapped = rules->apply("CN=bob");
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.error().kind, ErrorKind::unauthenticated);
  EXPECT_NE(mapped.error().message.find("group 1"), std::string::npos) << mapped.error().message;
}

TEST(PrincipalMapping, UnanchoredGreedyPatternRepeatsLikeJavaReplaceAll) {
  // Java: "CN=x".replaceAll("(.*)", "[$1]") == "[CN=x][]" (the empty match at the end counts too).
  auto rules = PrincipalMappingRules::parse("RULE:(.*)/[$1]/");
  ASSERT_TRUE(rules.ok());
  EXPECT_EQ(map_or_error(*rules, "CN=x"), "[CN=x][]");
}

TEST(PrincipalMapping, OverlongSubjectRefused) {
  auto rules = PrincipalMappingRules::parse("RULE:^CN=(.*)$/$1/");
  ASSERT_TRUE(rules.ok());
  std::string dn = "CN=" + std::string(kMaxDistinguishedNameLength, 'a');
  auto mapped = rules->apply(dn);
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.error().kind, ErrorKind::unauthenticated);
}

TEST(PrincipalMapping, RulesSplittingFromKafka) {
  struct Case {
    const char* expected;
    const char* rules;
  } cases[] = {
      {"[]", ""},
      {"[DEFAULT]", "DEFAULT"},
      {"[RULE:/]", "RULE://"},
      {"[RULE:/.*]", "RULE:/.*/"},
      {"[RULE:/.*/L]", "RULE:/.*/L"},
      {"[RULE:/, DEFAULT]", "RULE://,DEFAULT"},
      {"[RULE:/, DEFAULT]", "  RULE:// ,  DEFAULT  "},
      {"[RULE:   /     , DEFAULT]", "  RULE:   /     / ,  DEFAULT  "},
      {"[RULE:  /     /U, DEFAULT]", "  RULE:  /     /U   ,DEFAULT  "},
      {"[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]", "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  "},
      {"[]", ",   , , ,      , , ,   "},
      {"[RULE:/, DEFAULT]", ",,RULE://,,,DEFAULT,,"},
      {"[RULE: /   , DEFAULT]", ",  , RULE: /   /    ,,,   DEFAULT, ,   "},
      {"[RULE:   /  /U, DEFAULT]", "     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,"},
      {R"([RULE:\/\\\(\)\n\t/\/\/])", R"(RULE:\/\\\(\)\n\t/\/\//)"},
      {R"([RULE:\**\/+/*/L, RULE:\/*\**/**])", R"(RULE:\**\/+/*/L,RULE:\/*\**/**/)"},
      {R"([RULE:,RULE:,/,RULE:,\//U, RULE:,/RULE:,, RULE:,RULE:,/L,RULE:,/L, RULE:, DEFAULT, /DEFAULT, DEFAULT])",
       R"(RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT)"},
  };
  for (const auto& c : cases) {
    auto rules = PrincipalMappingRules::parse(c.rules);
    ASSERT_TRUE(rules.ok()) << c.rules << ": " << rules.error().message;
    EXPECT_EQ(rules->to_string(), c.expected) << "rules: '" << c.rules << "'";
  }
}

TEST(PrincipalMapping, ConcurrentApplyOnSharedRules) {
  auto rules = PrincipalMappingRules::parse("RULE:^CN=([^,]+),OU=(.*?),.*$/$1@$2/L,DEFAULT");
  ASSERT_TRUE(rules.ok());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        std::string user = "U" + std::to_string(t) + "x" + std::to_string(i);
        auto name = rules->apply("CN=" + user + ",OU=Team,O=Bulwark");
        std::string expected = "u" + std::to_string(t) + "x" + std::to_string(i) + "@team";
        if (!name.ok() || *name != expected) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(PrincipalForTls, NoCertificateIsAnonymous) {
  auto rules = PrincipalMappingRules::parse("RULE:^CN=([^,]+).*$/$1/");
  ASSERT_TRUE(rules.ok());
  auto p = principal_for_tls("", *rules);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, kAnonymousPrincipal);
  EXPECT_EQ(p->to_string(), "User:ANONYMOUS");
}

TEST(PrincipalForTls, MappedSubjectBecomesUser) {
  auto rules = PrincipalMappingRules::parse("RULE:^CN=([^,]+).*$/$1/");
  ASSERT_TRUE(rules.ok());
  auto p = principal_for_tls("CN=admin-1,O=Bulwark", *rules);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->to_string(), "User:admin-1");
}

TEST(PrincipalForTls, DefaultKeepsTheWholeSubject) {
  auto rules = PrincipalMappingRules::parse("DEFAULT");
  ASSERT_TRUE(rules.ok());
  auto p = principal_for_tls("CN=a,O=b", *rules);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->to_string(), "User:CN=a,O=b");
}

TEST(PrincipalForTls, MappingFailureIsAuthenticationFailure) {
  auto rules = PrincipalMappingRules::parse("RULE:^CN=([^,]+),O=Bulwark$/$1/");
  ASSERT_TRUE(rules.ok());
  auto p = principal_for_tls("CN=eve,O=Elsewhere", *rules);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind, ErrorKind::unauthenticated);
}

TEST(ParsePrincipal, Forms) {
  auto p = parse_principal("User:alice");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, "User");
  EXPECT_EQ(p->name, "alice");
  auto with_colon = parse_principal("User:CN=a:b");
  ASSERT_TRUE(with_colon.ok());
  EXPECT_EQ(with_colon->name, "CN=a:b");
  EXPECT_FALSE(parse_principal("alice").ok());
  EXPECT_FALSE(parse_principal(":alice").ok());
  EXPECT_FALSE(parse_principal("User:").ok());
  EXPECT_FALSE(parse_principal("").ok());
}

}  // namespace
}  // namespace bulwark::security
