#include "util/json_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "json_lite.h"

namespace plumb {
namespace {

TEST(JsonText, QuotesAndEscapes) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c\nd\te\x01"), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
  EXPECT_EQ(json_quote("L'\xC3\x89toile \xF0\x9F\x98\x80"), "\"L'\xC3\x89toile \xF0\x9F\x98\x80\"");
}

TEST(JsonText, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(json_quote("a\xC3"), "\"a\xEF\xBF\xBD\"");                // cut-off sequence
  EXPECT_EQ(json_quote("\xFF"), "\"\xEF\xBF\xBD\"");                  // never valid
  EXPECT_EQ(json_quote("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // overlong
  EXPECT_EQ(json_quote("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // surrogate
}

TEST(JsonText, RoundTripsThroughAParser) {
  const std::vector<int32_t> ids = {1, -2, 49151};
  const std::string text =
      "{\"ids\":" + json_int_array(ids) + ",\"s\":" + json_quote("x\"\n\xC3\xA9") +
      ",\"v\":" + json_number(0.125) + ",\"nan\":" + json_number(std::nan("")) + "}";
  const test::Json j = test::JsonParser(text).parse();
  ASSERT_EQ(j["ids"].size(), 3u);
  EXPECT_EQ(j["ids"][2].number, 49151);
  EXPECT_EQ(j["s"].string, "x\"\n\xC3\xA9");
  EXPECT_EQ(j["v"].number, 0.125);
  EXPECT_EQ(j["nan"].kind, test::Json::Kind::Null);
  EXPECT_EQ(json_int_array(std::vector<int32_t>{}), "[]");
}

}  // namespace
}  // namespace plumb
