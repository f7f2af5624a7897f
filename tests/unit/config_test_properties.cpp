// java.util.Properties rules, case by case.
#include <gtest/gtest.h>

#include "config/config.h"

using namespace bulwark::config;

namespace {

Properties parse_ok(std::string_view text) {
  auto p = parse_properties(text, "test.properties");
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return p.ok() ? *p : Properties{};
}

std::string value(const Properties& p, std::string_view key) {
  auto v = p.get(key);
  EXPECT_TRUE(v.has_value()) << "missing key " << key;
  return v.value_or("<missing>");
}

TEST(Properties, Separators) {
  auto p = parse_ok("a=1\nb:2\nc 3\nd = 4\ne\t:\t5\nf\ng=\nh  =  =x\ni::y\n");
  EXPECT_EQ(value(p, "a"), "1");
  EXPECT_EQ(value(p, "b"), "2");
  EXPECT_EQ(value(p, "c"), "3");
  EXPECT_EQ(value(p, "d"), "4");
  EXPECT_EQ(value(p, "e"), "5");
  EXPECT_EQ(value(p, "f"), "");
  EXPECT_EQ(value(p, "g"), "");
  EXPECT_EQ(value(p, "h"), "=x");  // only one separator is skipped
  EXPECT_EQ(value(p, "i"), ":y");
  EXPECT_EQ(p.entries.size(), 9u);
}

TEST(Properties, LeadingBlanksAndTrailingBlanks) {
  auto p = parse_ok("   \t key = value with blanks   \n");
  EXPECT_EQ(value(p, "key"), "value with blanks   ");  // Java keeps trailing blanks
}

TEST(Properties, Comments) {
  auto p = parse_ok("# comment=1\n! bang=2\n   # indented=3\na=1 # not a comment\n\n\n");
  EXPECT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(value(p, "a"), "1 # not a comment");
  EXPECT_FALSE(p.get("comment").has_value());
  EXPECT_FALSE(p.get("!").has_value());
}

TEST(Properties, Continuation) {
  auto p = parse_ok("list=a,\\\n    b,\\\n\t c\nnext=1\n");
  EXPECT_EQ(value(p, "list"), "a,b,c");
  EXPECT_EQ(value(p, "next"), "1");
  EXPECT_EQ(p.find("next")->line, 4);
  EXPECT_EQ(p.find("list")->line, 1);
}

TEST(Properties, EvenBackslashesDoNotContinue) {
  auto p = parse_ok("path=C:\\\\\nother=2\n");
  EXPECT_EQ(value(p, "path"), "C:\\");
  EXPECT_EQ(value(p, "other"), "2");
}

TEST(Properties, CommentLineNeverContinues) {
  auto p = parse_ok("# a comment \\\nkey=1\n");
  EXPECT_EQ(value(p, "key"), "1");
}

TEST(Properties, ContinuationLineStartingWithHashIsValue) {
  auto p = parse_ok("key=a\\\n  #b\n");
  EXPECT_EQ(value(p, "key"), "a#b");
}

TEST(Properties, ContinuationAtEndOfFile) {
  auto p = parse_ok("key=a\\");
  EXPECT_EQ(value(p, "key"), "a");
}

TEST(Properties, Escapes) {
  auto p = parse_ok("t=a\\tb\nn=a\\nb\nu=\\u0041\\u00e9\\u20AC\nother=\\q\\=\\:\\#\nsp=\\ lead\n");
  EXPECT_EQ(value(p, "t"), "a\tb");
  EXPECT_EQ(value(p, "n"), "a\nb");
  EXPECT_EQ(value(p, "u"), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(value(p, "other"), "q=:#");
  EXPECT_EQ(value(p, "sp"), " lead");
}

TEST(Properties, SurrogatePairBecomesOneCodePoint) {
  auto p = parse_ok("e=\\uD83D\\uDE00\n");
  EXPECT_EQ(value(p, "e"), "\xF0\x9F\x98\x80");
}

TEST(Properties, EscapedSeparatorsInKey) {
  auto p = parse_ok("a\\=b=c\nx\\:y:z\nwith\\ space=v\n");
  EXPECT_EQ(value(p, "a=b"), "c");
  EXPECT_EQ(value(p, "x:y"), "z");
  EXPECT_EQ(value(p, "with space"), "v");
}

TEST(Properties, MalformedUnicodeEscapeNamesTheLine) {
  auto p = parse_properties("a=1\n\nb=\\u12G4\n", "x.properties");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("x.properties:3"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("\\uxxxx"), std::string::npos) << p.error().message;

  auto short_escape = parse_properties("b=\\u12", "x.properties");
  ASSERT_FALSE(short_escape.ok());
  EXPECT_NE(short_escape.error().message.find("x.properties:1"), std::string::npos);
}

TEST(Properties, LineEndings) {
  auto p = parse_ok("a=1\r\nb=2\rc=3\n\r\nd=4");
  EXPECT_EQ(value(p, "a"), "1");
  EXPECT_EQ(value(p, "b"), "2");
  EXPECT_EQ(value(p, "c"), "3");
  EXPECT_EQ(value(p, "d"), "4");
  EXPECT_EQ(p.find("d")->line, 5);  // \r\n counts once; the lone \r ends line 2
}

TEST(Properties, DuplicateKeyLastWinsAndIsReported) {
  auto p = parse_ok("a=1\nb=2\na=3\n");
  EXPECT_EQ(value(p, "a"), "3");
  EXPECT_EQ(p.find("a")->line, 3);
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_NE(p.notes[0].find("test.properties:3: a is set again (first on line 1)"), std::string::npos) << p.notes[0];
}

TEST(Properties, EmptyInput) {
  auto p = parse_ok("");
  EXPECT_TRUE(p.entries.empty());
  auto q = parse_ok("\n   \n# only a comment");
  EXPECT_TRUE(q.entries.empty());
}

TEST(Properties, LoadMissingFileFailsWithPath) {
  auto p = load_properties("/nonexistent/dir/server.properties");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("/nonexistent/dir/server.properties"), std::string::npos);
}

}  // namespace
