// plumb serve's request parser and API key check, without a server.
#ifdef PLUMB_HAVE_SERVE
#include <gtest/gtest.h>

#include <string>

#include "serve/auth.h"
#include "serve/request.h"
#include "util/utf8.h"

namespace plumb::serve {
namespace {

ApiError chat_error(const std::string& body) {
  ApiError e;
  EXPECT_FALSE(parse_chat_request(body, &e).has_value()) << body;
  return e;
}

TEST(ServeRequest, ChatRequestWithEveryField) {
  ApiError e;
  auto r = parse_chat_request(
      R"({"model":"x","messages":[{"role":"developer","content":"be brief"},
          {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
          "max_completion_tokens":1e9,"temperature":0,"top_p":0.5,"top_k":7,"min_p":0.1,"seed":5,
          "stop":["a","b"],"logprobs":true,"top_logprobs":3,"stream":true,
          "stream_options":{"include_usage":true},"n":1,"user":"ignored"})",
      &e);
  ASSERT_TRUE(r.has_value()) << e.message;
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[0].role, "system");
  EXPECT_EQ(r->messages[1].content, "hi there");
  EXPECT_EQ(r->params.max_tokens, 1000000000);
  EXPECT_EQ(r->params.sampling.temperature, 0.0f);
  EXPECT_EQ(r->params.sampling.top_k, 7);
  EXPECT_EQ(r->params.sampling.seed, 5u);
  EXPECT_EQ(r->params.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r->params.logprobs && r->params.stream && r->params.include_usage);
  EXPECT_EQ(r->params.top_logprobs, 3);
}

TEST(ServeRequest, WrongValuesNameTheirField) {
  EXPECT_EQ(chat_error(R"({"messages":"hi"})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages":[]})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user"}]})").param, "messages[0].content");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"a"},{"role":1,"content":"b"}]})").param,
            "messages[1].role");
  const std::string ok = R"({"messages":[{"role":"user","content":"a"}],)";
  EXPECT_EQ(chat_error(ok + R"("temperature":"1"})").param, "temperature");
  EXPECT_EQ(chat_error(ok + R"("temperature":3})").param, "temperature");
  EXPECT_EQ(chat_error(ok + R"("max_tokens":1.5})").param, "max_tokens");
  EXPECT_EQ(chat_error(ok + R"("max_tokens":-1})").param, "max_tokens");
  EXPECT_EQ(chat_error(ok + R"("stop":[1]})").param, "stop[0]");
  EXPECT_EQ(chat_error(ok + R"("stop":["a","b","c","d","e"]})").param, "stop");
  EXPECT_EQ(chat_error(ok + R"("n":2})").param, "n");
  EXPECT_EQ(chat_error(ok + R"("top_logprobs":2})").param, "top_logprobs");
  EXPECT_EQ(chat_error(ok + R"("tools":[]})").param, "tools");
  EXPECT_EQ(chat_error(ok + R"("stream_options":{"include_usage":1}})").param, "stream_options.include_usage");
}

TEST(ServeRequest, MalformedBodies) {
  EXPECT_EQ(chat_error("").code, "invalid_json");
  EXPECT_EQ(chat_error("{").code, "invalid_json");
  EXPECT_EQ(chat_error("[1]").http_status, 400);
  EXPECT_EQ(chat_error("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}").code, "invalid_utf8");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"\ud800"}]})").code, "invalid_json");
  // A number past double's range is the JSON library's out_of_range, not a parse_error (found
  // by fuzz_serve_request: it escaped as an uncaught exception).
  EXPECT_EQ(chat_error(R"({"max_tokens":1e900})").code, "invalid_json");
  EXPECT_EQ(chat_error(R"({"pro_tokens":1e900"loguenc,"fr_quency_penalty":0.5})").code, "invalid_json");
  ApiError e;
  EXPECT_FALSE(parse_completion_request(R"({"prompt":""})", &e));
  EXPECT_EQ(e.param, "prompt");
  EXPECT_FALSE(parse_completion_request(R"({"prompt":[1,2]})", &e));
  EXPECT_EQ(e.param, "prompt");
  auto r = parse_completion_request(R"({"prompt":["x"],"logprobs":3})", &e);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->params.logprobs);
  EXPECT_EQ(r->params.top_logprobs, 3);
}

TEST(Utf8, FindInvalidUtf8) {
  EXPECT_EQ(find_invalid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xc0\xaf"), 2u);          // overlong
  EXPECT_EQ(find_invalid_utf8("\xed\xa0\x80"), 0u);        // surrogate
  EXPECT_EQ(find_invalid_utf8("x\xf4\x90\x80\x80"), 1u);   // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8("abc\xe2\x82"), 3u);         // cut short
}

TEST(ServeRequest, ErrorJsonHasOpenAIsShape) {
  ApiError e = ApiError::bad_field("temperature", "temperature must be a number");
  EXPECT_EQ(e.to_json(),
            R"({"error":{"code":"invalid_value","message":"temperature must be a number","param":"temperature","type":"invalid_request_error"}})");
}

TEST(ServeAuth, BearerMatchesOnlyTheKey) {
  EXPECT_TRUE(bearer_matches("Bearer k3y", "k3y"));
  EXPECT_FALSE(bearer_matches("Bearer k3", "k3y"));
  EXPECT_FALSE(bearer_matches("Bearer k3yy", "k3y"));
  EXPECT_FALSE(bearer_matches("k3y", "k3y"));
  EXPECT_FALSE(bearer_matches("Basic k3y", "k3y"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
}

}  // namespace
}  // namespace plumb::serve
#endif  // PLUMB_HAVE_SERVE
