#include <gtest/gtest.h>

#include "util/json_value.h"

namespace plumb::json {
namespace {

TEST(JsonValue, ParsesNestedDocuments) {
  auto v = Value::parse(R"({"a": [1, 2.5e3, -0.25], "s": "x\"\u00e9\ud83d\ude00\n", "t": true, "n": null, "o": {}})");
  ASSERT_TRUE(v.ok()) << v.status().message();
  ASSERT_TRUE(v->is_object());
  const Value* a = v->find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items().size(), 3u);
  EXPECT_EQ(a->items()[1].as_number(), 2500.0);
  EXPECT_EQ(v->find("s")->as_string(), "x\"\xc3\xa9\xf0\x9f\x98\x80\n");
  EXPECT_TRUE(v->find("t")->as_bool());
  EXPECT_TRUE(v->find("n")->is_null());
  EXPECT_TRUE(v->find("o")->is_object());
  EXPECT_EQ(v->find("missing"), nullptr);
}

TEST(JsonValue, RejectsMalformedInput) {
  for (const char* bad : {"", "{", "[1,", "{\"a\" 1}", "\"abc", "[1] x", "tru", "{\"a\":\"\\q\"}", "\"\\u12\""}) {
    EXPECT_FALSE(Value::parse(bad).ok()) << bad;
  }
  std::string deep(1000, '[');
  EXPECT_FALSE(Value::parse(deep).ok());
}

}  // namespace
}  // namespace plumb::json
