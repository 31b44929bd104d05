// SmolLM2-135M-Instruct through its chat template (issue "A real chat model"): for each
// conversation of ../shared/ref/chat-smollm2.json the prompt that `plumb chat` builds, and its
// token ids, equal llama.cpp's. The model comes from scripts/fetch-model; when it cannot be
// fetched the test is skipped, saying why.
#include <gtest/gtest.h>

#include "chat_smollm2_util.h"
#include "gguf/gguf.h"
#include "model/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace plumb {
namespace {

TEST(ChatSmolLM2, FormattedPromptAndTokenIdsMatchLlamaCpp) {
  PLUMB_REQUIRE_SHARED(ref_path, "ref/chat-smollm2.json");
  PLUMB_REQUIRE_SMOLLM2(path);
  const Result<json::Value> ref_doc = json::Value::parse_file(ref_path);
  ASSERT_TRUE(ref_doc.ok()) << ref_doc.status().message();
  const json::Value& ref = *ref_doc;

  Result<std::unique_ptr<gguf::File>> file = gguf::File::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  Result<std::string> text = (*file)->get_string("tokenizer.chat_template");
  ASSERT_TRUE(text.ok()) << text.status().message();
  Result<ChatTemplate> chat = ChatTemplate::detect(*text);
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_EQ(chat->name(), "chatml");
  Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::from_gguf(**file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();

  int conversation = 0;
  for (const json::Value& c : ref["conversations"].items()) {
    SCOPED_TRACE("conversation " + std::to_string(conversation++));
    const std::string formatted = chat->apply(test::chat_messages(c["messages"]), true);
    EXPECT_EQ(formatted, c["formatted"].as_string());
    // What `plumb chat` does: add_special per the model (SmolLM2 adds no BOS), specials parsed.
    EXPECT_EQ((*tokenizer)->encode(formatted, true, true), test::json_ints(c["prompt_tokens"]));
  }
}

}  // namespace
}  // namespace plumb
