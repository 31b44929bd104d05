// Chat formatting: turns a conversation into the prompt text a chat model was trained on.
//
// Like llama.cpp's built-in chat formatting (llm_chat_detect_template /
// llm_chat_apply_template), a model's tokenizer.chat_template (a Jinja text) is not executed:
// it is recognised by its distinctive markers ("<|im_start|>" = ChatML, "[INST]" = Llama 2 /
// Mistral, ...) and rendered by a fixed formatter of that family. A name ("chatml", "llama3",
// ...) selects a formatter directly (--chat-template NAME).
//
// One construct of the Jinja text is honoured on top of llama.cpp: a ChatML template that
// writes a constant system block when the conversation does not start with a system message
// (SmolLM2, Qwen 2.5). Its text is read from the template and inserted the same way, so the
// prompt equals what the template itself renders.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace plumb {

// The formatter families (defined in chat_template.cpp).
enum class ChatFormat : int;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  // A built-in formatter by its llama.cpp name. Unknown names: an error listing the known ones.
  static Result<ChatTemplate> by_name(std::string_view name);
  // Recognises a tokenizer.chat_template text (or a formatter name, as llama.cpp accepts
  // either). No known marker: an error saying so.
  static Result<ChatTemplate> detect(std::string_view name_or_text);
  // Names of every built-in formatter, sorted.
  static std::vector<std::string> names();

  const std::string& name() const { return name_; }
  // The system message the template inserts when the conversation does not start with one;
  // empty when it inserts none.
  const std::string& default_system() const { return default_system_; }

  // The prompt for `messages`; add_generation_prompt appends the header that makes the model
  // answer as the assistant. with_default_system = false renders as llama.cpp's built-in
  // formatter does (which never inserts the template's default system message).
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                    bool with_default_system = true) const;

 private:
  ChatTemplate() = default;
  ChatFormat format_{};
  std::string name_;
  std::string default_system_;
};

// The conversation as plain text for a model without a chat template, which continues it: the
// system text and a blank line, each user message and a newline, assistant text as it is.
std::string render_plain_conversation(std::span<const ChatMessage> messages);

// Extracts the default system message of a ChatML template text (see above); empty if none.
std::string chatml_default_system(std::string_view template_text);

}  // namespace plumb
