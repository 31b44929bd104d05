#include "model/chat_template.h"

#include <gtest/gtest.h>

#include <vector>

#include "test_util.h"
#include "util/json_value.h"

namespace plumb {
namespace {

std::vector<ChatMessage> messages_of(const json::Value& list) {
  std::vector<ChatMessage> out;
  for (const json::Value& m : list.items()) {
    out.push_back({m["role"].as_string(), m["content"].as_string()});
  }
  return out;
}

// SmolLM2-135M-Instruct's tokenizer.chat_template, as stored in its GGUF file.
constexpr const char* kSmolLM2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

// Every built-in template by name, and every real template text through detection, renders
// the reference conversations exactly as llama.cpp's built-in formatting does.
TEST(ChatTemplate, MatchesLlamaCppOnEveryReferenceTemplate) {
  PLUMB_REQUIRE_SHARED(path, "ref/chat-templates.json");
  const Result<json::Value> ref_doc = json::Value::parse_file(path);
  ASSERT_TRUE(ref_doc.ok()) << ref_doc.status().message();
  const json::Value& ref = *ref_doc;
  const json::Value& conversations = ref["conversations"];
  int named = 0;
  int real = 0;
  for (const json::Value& entry : ref["templates"].items()) {
    Result<ChatTemplate> t = Status::error("unset");
    std::string label;
    if (entry.has("template_name")) {
      label = entry["template_name"].as_string();
      t = ChatTemplate::by_name(label);
      ++named;
    } else {
      label = entry["template_source"].as_string();
      t = ChatTemplate::detect(entry["template_text"].as_string());
      ++real;
    }
    ASSERT_TRUE(t.ok()) << label << ": " << t.status().message();
    ASSERT_EQ(entry["formatted"].size(), conversations.size()) << label;
    for (size_t i = 0; i < conversations.size(); ++i) {
      const std::vector<ChatMessage> messages = messages_of(conversations[i]);
      // llama.cpp's built-ins never insert a template's default system message.
      EXPECT_EQ(t->apply(messages, true, /*with_default_system=*/false),
                entry["formatted"][i].as_string())
          << label << " (detected as " << t->name() << "), conversation " << i;
    }
  }
  EXPECT_EQ(named, 13);
  EXPECT_EQ(real, 6);
}

TEST(ChatTemplate, DetectsRealTemplatesByTheirMarkers) {
  PLUMB_REQUIRE_SHARED(path, "ref/chat-templates.json");
  const Result<json::Value> ref_doc = json::Value::parse_file(path);
  ASSERT_TRUE(ref_doc.ok()) << ref_doc.status().message();
  const json::Value& ref = *ref_doc;
  const std::map<std::string, std::string> expected = {
      {"meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3"},
      {"google-gemma-2-2b-it.jinja", "gemma"},
      {"microsoft-Phi-3.5-mini-instruct.jinja", "phi3"},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral-v3-tekken"},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", "chatml"},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "deepseek3"},
  };
  for (const json::Value& entry : ref["templates"].items()) {
    if (!entry.has("template_source")) continue;
    const std::string& source = entry["template_source"].as_string();
    Result<ChatTemplate> t = ChatTemplate::detect(entry["template_text"].as_string());
    ASSERT_TRUE(t.ok()) << source;
    ASSERT_TRUE(expected.count(source)) << source;
    EXPECT_EQ(t->name(), expected.at(source)) << source;
    if (source.starts_with("Qwen")) {
      // Qwen 2.5 writes a default system message when the first message is not a system one.
      EXPECT_EQ(t->default_system(),
                "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
      const std::vector<ChatMessage> messages = messages_of(ref["conversations"][0]);
      EXPECT_EQ(t->apply(messages, true),
                "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                "assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?"
                "<|im_end|>\n<|im_start|>assistant\n");
    } else {
      EXPECT_EQ(t->default_system(), "") << source;
    }
  }
}

// SmolLM2: the template's default system message is inserted exactly as the template does.
TEST(ChatTemplate, SmolLM2DefaultSystemPromptMatchesReference) {
  PLUMB_REQUIRE_SHARED(path, "ref/chat-smollm2.json");
  const Result<json::Value> ref_doc = json::Value::parse_file(path);
  ASSERT_TRUE(ref_doc.ok()) << ref_doc.status().message();
  const json::Value& ref = *ref_doc;
  Result<ChatTemplate> t = ChatTemplate::detect(kSmolLM2Template);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->name(), "chatml");
  EXPECT_EQ(t->default_system(),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  for (const json::Value& c : ref["conversations"].items()) {
    EXPECT_EQ(t->apply(messages_of(c["messages"]), true), c["formatted"].as_string());
  }
}

TEST(ChatTemplate, GenerationPromptAndEmptyConversation) {
  Result<ChatTemplate> t = ChatTemplate::detect(kSmolLM2Template);
  ASSERT_TRUE(t.ok());
  const std::vector<ChatMessage> none;
  EXPECT_EQ(t->apply(none, true), "<|im_start|>assistant\n");
  const std::vector<ChatMessage> one = {{"user", "Hi"}};
  EXPECT_EQ(t->apply(one, false),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, NamesAndErrors) {
  EXPECT_TRUE(ChatTemplate::by_name("llama3").ok());
  EXPECT_TRUE(ChatTemplate::detect("zephyr").ok());  // a name is accepted where text is
  Result<ChatTemplate> bad = ChatTemplate::by_name("nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("chatml"), std::string::npos);
  Result<ChatTemplate> unknown = ChatTemplate::detect("{{ messages }}");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("--chat-template"), std::string::npos);
  Result<ChatTemplate> glm = ChatTemplate::detect("[gMASK]<sop>{% for item in messages %}");
  ASSERT_FALSE(glm.ok());
  EXPECT_NE(glm.status().message().find("chatglm4"), std::string::npos);
  // A ChatML template without a constant system block has no default.
  EXPECT_EQ(chatml_default_system("{% for m in messages %}<|im_start|>{{ m.role }}\n"
                                  "{{ m.content }}<|im_end|>\n{% endfor %}"),
            "");
}

}  // namespace
}  // namespace plumb
