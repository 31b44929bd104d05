// The streaming JSON writer: structure, escaping (control characters, invalid UTF-8), numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "util/json.h"
#include "util/json_value.h"

namespace plumb::json {
namespace {

TEST(Json, QuoteEscapesControlsAndKeepsValidUtf8) {
  EXPECT_EQ(quote("plain"), "\"plain\"");
  EXPECT_EQ(quote("q\"b\\"), "\"q\\\"b\\\\\"");
  EXPECT_EQ(quote("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(quote(std::string("\x01\x1f\x7f\0", 4)), "\"\\u0001\\u001f\\u007f\\u0000\"");
  EXPECT_EQ(quote("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  EXPECT_EQ(quote("a\"b\\c\nd\te\x01"), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
}

TEST(Json, QuoteWritesInvalidUtf8BytesAsLatin1Escapes) {
  EXPECT_EQ(quote("\xff"), "\"\\u00ff\"");
  EXPECT_EQ(quote("a\xc3"), "\"a\\u00c3\"");                   // truncated sequence
  EXPECT_EQ(quote("\xc0\xaf"), "\"\\u00c0\\u00af\"");          // overlong '/'
  EXPECT_EQ(quote("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\""); // surrogate
  EXPECT_EQ(quote("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"");  // > U+10FFFF
  EXPECT_EQ(quote("\x80\xc3\xa9"), "\"\\u0080\xc3\xa9\"");     // stray continuation, then é
}

TEST(Json, Numbers) {
  EXPECT_EQ(format_float(0.1f), "0.100000001");
  EXPECT_EQ(format_float(-0.0f), "-0");
  EXPECT_EQ(format_double(0.1), "0.10000000000000001");
  EXPECT_EQ(format_float(std::numeric_limits<float>::quiet_NaN()), "null");
  EXPECT_EQ(format_double(-INFINITY), "null");
  EXPECT_EQ(std::stof(format_float(3.4028235e38f)), 3.4028235e38f);
}

TEST(Json, CompactStructure) {
  Writer w(0);
  w.begin_object();
  w.key("a").value(int64_t{-1});
  w.key("b").begin_array().value(uint64_t{18446744073709551615ull}).value(true).null().end_array();
  w.key("c").begin_object().end_object();
  w.key("d").begin_array().end_array();
  w.key("e").value(1.5f);
  w.end_object();
  w.finish();
  EXPECT_EQ(w.str(), "{\"a\":-1,\"b\":[18446744073709551615,true,null],\"c\":{},\"d\":[],\"e\":1.5}\n");
}

TEST(Json, IndentedStructure) {
  Writer w(2);
  w.begin_object();
  w.key("k").begin_array().value("x").value(2).end_array();
  w.end_object();
  w.finish();
  EXPECT_EQ(w.str(), "{\n  \"k\": [\n    \"x\",\n    2\n  ]\n}\n");
}

// What `plumb run --json` writes (token ids, generated text, timings) reads back unchanged.
TEST(Json, RoundTripsThroughTheReader) {
  const std::vector<int32_t> ids = {1, -2, 49151};
  Writer w(0);
  w.begin_object();
  w.key("ids").begin_array();
  for (const int32_t id : ids) w.value(id);
  w.end_array();
  w.key("s").value("x\"\n\xC3\xA9");
  w.key("v").value(0.125);
  w.key("nan").value(std::nan(""));
  w.key("none").begin_array().end_array();
  w.end_object();
  w.finish();
  const Result<Value> parsed = Value::parse(w.str());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const Value& j = *parsed;
  ASSERT_EQ(j["ids"].size(), 3u);
  EXPECT_EQ(j["ids"][2].as_int(), 49151);
  EXPECT_EQ(j["ids"][1].as_int(), -2);
  EXPECT_EQ(j["s"].as_string(), "x\"\n\xC3\xA9");
  EXPECT_EQ(j["v"].as_number(), 0.125);
  EXPECT_TRUE(j["nan"].is_null());
  EXPECT_TRUE(j["none"].is_array());
  EXPECT_EQ(j["none"].size(), 0u);
}

}  // namespace
}  // namespace plumb::json
