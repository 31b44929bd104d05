#include "model/chat_template.h"

#include <algorithm>
#include <cctype>
#include <regex>

namespace plumb {

enum class ChatFormat : int {
  ChatML,
  Llama2,
  Llama2Sys,
  Llama2SysBos,
  Llama2SysStrip,
  MistralV1,
  MistralV3,
  MistralV3Tekken,
  MistralV7,
  MistralV7Tekken,
  Phi3,
  Phi4,
  Falcon3,
  Zephyr,
  Monarch,
  Gemma,
  Orion,
  OpenChat,
  Vicuna,
  VicunaOrca,
  DeepSeek,
  DeepSeek2,
  DeepSeek3,
  CommandR,
  Llama3,
  Exaone3,
  Granite,
  Megrez,
  Llama4,
};

namespace {

struct NamedFormat {
  const char* name;
  ChatFormat format;
};

// llama.cpp's names for the formatters plumb renders.
constexpr NamedFormat kFormats[] = {
    {"chatml", ChatFormat::ChatML},
    {"llama2", ChatFormat::Llama2},
    {"llama2-sys", ChatFormat::Llama2Sys},
    {"llama2-sys-bos", ChatFormat::Llama2SysBos},
    {"llama2-sys-strip", ChatFormat::Llama2SysStrip},
    {"mistral-v1", ChatFormat::MistralV1},
    {"mistral-v3", ChatFormat::MistralV3},
    {"mistral-v3-tekken", ChatFormat::MistralV3Tekken},
    {"mistral-v7", ChatFormat::MistralV7},
    {"mistral-v7-tekken", ChatFormat::MistralV7Tekken},
    {"phi3", ChatFormat::Phi3},
    {"phi4", ChatFormat::Phi4},
    {"falcon3", ChatFormat::Falcon3},
    {"zephyr", ChatFormat::Zephyr},
    {"monarch", ChatFormat::Monarch},
    {"gemma", ChatFormat::Gemma},
    {"orion", ChatFormat::Orion},
    {"openchat", ChatFormat::OpenChat},
    {"vicuna", ChatFormat::Vicuna},
    {"vicuna-orca", ChatFormat::VicunaOrca},
    {"deepseek", ChatFormat::DeepSeek},
    {"deepseek2", ChatFormat::DeepSeek2},
    {"deepseek3", ChatFormat::DeepSeek3},
    {"command-r", ChatFormat::CommandR},
    {"llama3", ChatFormat::Llama3},
    {"exaone3", ChatFormat::Exaone3},
    {"granite", ChatFormat::Granite},
    {"megrez", ChatFormat::Megrez},
    {"llama4", ChatFormat::Llama4},
};

// A detection result: a format plumb renders, or the llama.cpp name of one it recognises but
// does not render (so a GLM template is not mistaken for a later family that shares a marker).
struct Detected {
  const char* name = nullptr;
  bool supported = false;
};

std::string trim(std::string_view s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return std::string(s.substr(begin, end - begin));
}

// The checks and their order follow llama.cpp's llm_chat_detect_template: earlier families
// win when a text has markers of several.
Detected detect_by_markers(std::string_view t) {
  auto has = [t](std::string_view marker) { return t.find(marker) != std::string_view::npos; };
  auto yes = [](const char* name) { return Detected{name, true}; };
  auto no = [](const char* name) { return Detected{name, false}; };

  if (has("<|im_start|>")) {
    if (has("<|im_sep|>")) return yes("phi4");
    if (has("<end_of_utterance>")) return no("smolvlm");  // <|im_start|> as BOS, not ChatML
    return yes("chatml");
  }
  if (t.starts_with("mistral") || has("[INST]")) {
    if (has("[SYSTEM_PROMPT]")) return yes("mistral-v7");
    if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
      if (has(" [INST]")) return yes("mistral-v1");
      if (has("\"[INST]\"")) return yes("mistral-v3-tekken");
      return yes("mistral-v3");
    }
    if (has("content.strip()")) return yes("llama2-sys-strip");
    if (has("bos_token + '[INST]")) return yes("llama2-sys-bos");
    if (has("<<SYS>>")) return yes("llama2-sys");
    return yes("llama2");
  }
  if (has("<|assistant|>") && has("<|end|>")) return yes("phi3");
  if (has("[gMASK]<sop>")) return no("chatglm4");
  if (has("<|assistant|>") && has("<|user|>")) return has("</s>") ? yes("falcon3") : no("glmedge");
  if (has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>")) return no("glmedge");
  if (has("<|user|>") && has("<|endoftext|>")) return yes("zephyr");
  if (has("bos_token + message['role']")) return yes("monarch");
  if (has("<start_of_turn>")) return yes("gemma");
  if (has("'\\n\\nAssistant: ' + eos_token")) return yes("orion");
  if (has("GPT4 Correct ")) return yes("openchat");
  if (has("USER: ") && has("ASSISTANT: "))
    return has("SYSTEM: ") ? yes("vicuna-orca") : yes("vicuna");
  if (has("### Instruction:") && has("<|EOT|>")) return yes("deepseek");
  if (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) return yes("command-r");
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return yes("llama3");
  if (has("[gMASK]sop")) return no("chatglm3");
  if (has("<用户>")) return no("minicpm");
  if (has("'Assistant: ' + message['content'] + eos_token")) return yes("deepseek2");
  if (has("<｜Assistant｜>") && has("<｜User｜>") && has("<｜end▁of▁sentence｜>")) {
    return yes("deepseek3");
  }
  if (has("[|system|]") && has("[|assistant|]") && has("[|endofturn|]")) {
    return has("[|tool|]") ? no("exaone4") : yes("exaone3");
  }
  if (has("rwkv-world") || has("{{- 'User: ' + message['content']|trim + '\\n\\n' -}}")) {
    return no("rwkv-world");
  }
  if (has("<|start_of_role|>")) return yes("granite");
  if (has("message['role'] + additional_special_tokens[0] + message['content'] + "
          "additional_special_tokens[1]")) {
    return no("gigachat");
  }
  if (has("<|role_start|>")) return yes("megrez");
  if (has(" Ассистент:")) return no("yandex");
  if (has("<role>ASSISTANT</role>") && has("'HUMAN'")) return no("bailing");
  if (has("<|header_start|>") && has("<|header_end|>")) return yes("llama4");
  if (has("<|endofuserprompt|>")) return no("dots1");
  if (has("<|startoftext|>") && has("<|extra_4|>")) return no("hunyuan-moe");
  if (has("<｜hy_place▁holder▁no▁2｜>") && has("<｜hy_place▁holder▁no▁3｜>")) {
    return no("hunyuan-dense");
  }
  if (has("<|im_assistant|>assistant<|im_middle|>")) return no("kimi-k2");
  return {};
}

const NamedFormat* find_format(std::string_view name) {
  for (const NamedFormat& f : kFormats) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

std::string known_names() {
  std::string out;
  for (const std::string& n : ChatTemplate::names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Llama 2 and its variants: the system message goes inside the first [INST] block.
void render_llama2(std::string& out, std::span<const ChatMessage> messages, ChatFormat f) {
  const bool system_block = f != ChatFormat::Llama2;
  const bool bos_in_history = f == ChatFormat::Llama2SysBos;
  const bool strip = f == ChatFormat::Llama2SysStrip;
  bool inside_turn = true;  // the first [INST] is written up front (BOS comes from the tokenizer)
  out += "[INST] ";
  for (const ChatMessage& m : messages) {
    const std::string content = strip ? trim(m.content) : m.content;
    if (!inside_turn) {
      inside_turn = true;
      out += bos_in_history ? "<s>[INST] " : "[INST] ";
    }
    if (m.role == "system") {
      out += system_block ? "<<SYS>>\n" + content + "\n<</SYS>>\n\n" : content + "\n";
    } else if (m.role == "user") {
      out += content + " [/INST]";
    } else {
      out += content + "</s>";
      inside_turn = false;
    }
  }
}

// Mistral v1 / v3 / v3-tekken: like Llama 2 without the <<SYS>> block; they differ in spaces.
void render_mistral(std::string& out, std::span<const ChatMessage> messages, ChatFormat f) {
  const std::string lead = f == ChatFormat::MistralV1 ? " " : "";
  const std::string trail = f == ChatFormat::MistralV3Tekken ? "" : " ";
  const bool trim_assistant = f == ChatFormat::MistralV3;
  bool inside_turn = false;
  for (const ChatMessage& m : messages) {
    if (!inside_turn) {
      out += lead + "[INST]" + trail;
      inside_turn = true;
    }
    if (m.role == "system") {
      out += m.content + "\n\n";
    } else if (m.role == "user") {
      out += m.content + lead + "[/INST]";
    } else {
      out += trail + (trim_assistant ? trim(m.content) : m.content) + "</s>";
      inside_turn = false;
    }
  }
}

// "<|role|>\n" + content + end, for the many formats of that shape.
void render_tagged(std::string& out, std::span<const ChatMessage> messages, const char* open,
                   const char* close_role, const char* end, const char* generation,
                   bool add_generation_prompt, bool trim_content) {
  for (const ChatMessage& m : messages) {
    out += open + m.role + close_role + (trim_content ? trim(m.content) : m.content) + end;
  }
  if (add_generation_prompt) out += generation;
}

void render(std::string& out, ChatFormat f, std::span<const ChatMessage> messages, bool gen) {
  switch (f) {
    case ChatFormat::ChatML:
      render_tagged(out, messages, "<|im_start|>", "\n", "<|im_end|>\n", "<|im_start|>assistant\n",
                    gen, false);
      return;
    case ChatFormat::Llama2:
    case ChatFormat::Llama2Sys:
    case ChatFormat::Llama2SysBos:
    case ChatFormat::Llama2SysStrip:
      render_llama2(out, messages, f);
      return;
    case ChatFormat::MistralV1:
    case ChatFormat::MistralV3:
    case ChatFormat::MistralV3Tekken:
      render_mistral(out, messages, f);
      return;
    case ChatFormat::MistralV7:
    case ChatFormat::MistralV7Tekken: {
      const std::string space = f == ChatFormat::MistralV7 ? " " : "";
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          out += "[SYSTEM_PROMPT]" + space + m.content + "[/SYSTEM_PROMPT]";
        } else if (m.role == "user") {
          out += "[INST]" + space + m.content + "[/INST]";
        } else {
          out += space + m.content + "</s>";
        }
      }
      return;
    }
    case ChatFormat::Phi3:
      render_tagged(out, messages, "<|", "|>\n", "<|end|>\n", "<|assistant|>\n", gen, false);
      return;
    case ChatFormat::Phi4:
      render_tagged(out, messages, "<|im_start|>", "<|im_sep|>", "<|im_end|>",
                    "<|im_start|>assistant<|im_sep|>", gen, false);
      return;
    case ChatFormat::Falcon3:
      render_tagged(out, messages, "<|", "|>\n", "\n", "<|assistant|>\n", gen, false);
      return;
    case ChatFormat::Zephyr:
      render_tagged(out, messages, "<|", "|>\n", "<|endoftext|>\n", "<|assistant|>\n", gen, false);
      return;
    case ChatFormat::Monarch:
      for (size_t i = 0; i < messages.size(); ++i) {
        out += (i == 0 ? "" : "<s>") + messages[i].role + "\n" + messages[i].content + "</s>\n";
      }
      if (gen) out += "<s>assistant\n";
      return;
    case ChatFormat::Gemma: {
      // No system role: the system text is merged into the next user turn.
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system += trim(m.content);
          continue;
        }
        const std::string role = m.role == "assistant" ? "model" : m.role;
        out += "<start_of_turn>" + role + "\n";
        if (!system.empty() && role != "model") {
          out += system + "\n\n";
          system.clear();
        }
        out += trim(m.content) + "<end_of_turn>\n";
      }
      if (gen) out += "<start_of_turn>model\n";
      return;
    }
    case ChatFormat::Orion: {
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system += m.content;
        } else if (m.role == "user") {
          out += "Human: ";
          if (!system.empty()) {
            out += system + "\n\n";
            system.clear();
          }
          out += m.content + "\n\nAssistant: </s>";
        } else {
          out += m.content + "</s>";
        }
      }
      return;
    }
    case ChatFormat::OpenChat:
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          out += m.content + "<|end_of_turn|>";
        } else {
          std::string role = m.role;
          if (!role.empty())
            role[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(role[0])));
          out += "GPT4 Correct " + role + ": " + m.content + "<|end_of_turn|>";
        }
      }
      if (gen) out += "GPT4 Correct Assistant:";
      return;
    case ChatFormat::Vicuna:
    case ChatFormat::VicunaOrca:
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          out += f == ChatFormat::VicunaOrca ? "SYSTEM: " + m.content + "\n" : m.content + "\n\n";
        } else if (m.role == "user") {
          out += "USER: " + m.content + "\n";
        } else if (m.role == "assistant") {
          out += "ASSISTANT: " + m.content + "</s>\n";
        }
      }
      if (gen) out += "ASSISTANT:";
      return;
    case ChatFormat::DeepSeek:
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          out += m.content;
        } else if (m.role == "user") {
          out += "### Instruction:\n" + m.content + "\n";
        } else if (m.role == "assistant") {
          out += "### Response:\n" + m.content + "\n<|EOT|>\n";
        }
      }
      if (gen) out += "### Response:\n";
      return;
    case ChatFormat::DeepSeek2:
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          out += m.content + "\n\n";
        } else if (m.role == "user") {
          out += "User: " + m.content + "\n\n";
        } else if (m.role == "assistant") {
          out += "Assistant: " + m.content + "<｜end▁of▁sentence｜>";
        }
      }
      if (gen) out += "Assistant:";
      return;
    case ChatFormat::DeepSeek3:
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          out += m.content + "\n\n";
        } else if (m.role == "user") {
          out += "<｜User｜>" + m.content;
        } else if (m.role == "assistant") {
          out += "<｜Assistant｜>" + m.content + "<｜end▁of▁sentence｜>";
        }
      }
      if (gen) out += "<｜Assistant｜>";
      return;
    case ChatFormat::CommandR:
      for (const ChatMessage& m : messages) {
        const char* token = m.role == "system"      ? "<|SYSTEM_TOKEN|>"
                            : m.role == "user"      ? "<|USER_TOKEN|>"
                            : m.role == "assistant" ? "<|CHATBOT_TOKEN|>"
                                                    : nullptr;
        if (token == nullptr) continue;
        out += std::string("<|START_OF_TURN_TOKEN|>") + token + trim(m.content) +
               "<|END_OF_TURN_TOKEN|>";
      }
      if (gen) out += "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
      return;
    case ChatFormat::Llama3:
      render_tagged(out, messages, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>",
                    "<|start_header_id|>assistant<|end_header_id|>\n\n", gen, true);
      return;
    case ChatFormat::Exaone3:
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          out += "[|system|]" + trim(m.content) + "[|endofturn|]\n";
        } else if (m.role == "user") {
          out += "[|user|]" + trim(m.content) + "\n";
        } else if (m.role == "assistant") {
          out += "[|assistant|]" + trim(m.content) + "[|endofturn|]\n";
        }
      }
      if (gen) out += "[|assistant|]";
      return;
    case ChatFormat::Granite:
      for (const ChatMessage& m : messages) {
        out += "<|start_of_role|>" + m.role + "<|end_of_role|>";
        if (m.role == "assistant_tool_call") out += "<|tool_call|>";
        out += m.content + "<|end_of_text|>\n";
      }
      if (gen) out += "<|start_of_role|>assistant<|end_of_role|>\n";
      return;
    case ChatFormat::Megrez:
      render_tagged(out, messages, "<|role_start|>", "<|role_end|>", "<|turn_end|>",
                    "<|role_start|>assistant<|role_end|>", gen, false);
      return;
    case ChatFormat::Llama4:
      render_tagged(out, messages, "<|header_start|>", "<|header_end|>\n\n", "<|eot|>",
                    "<|header_start|>assistant<|header_end|>\n\n", gen, true);
      return;
  }
}

}  // namespace

std::string chatml_default_system(std::string_view template_text) {
  // A constant ChatML system block inside one string literal of the template: the text
  // between "<|im_start|>system" + newline (a real one or the escape "\n") and "<|im_end|>"
  // holds no quote or Jinja brace, i.e. it does not splice in a message. The template must
  // also look at the first message's role, which is what makes the block a default.
  static const std::regex block(R"(<\|im_start\|>system(?:\n|\\n)([^'"{}]+?)<\|im_end\|>)");
  const std::string text(template_text);
  if (text.find("messages[0]") == std::string::npos) return {};
  std::smatch match;
  if (!std::regex_search(text, match, block)) return {};
  return match[1].str();
}

Result<ChatTemplate> ChatTemplate::by_name(std::string_view name) {
  const NamedFormat* f = find_format(name);
  if (f == nullptr) {
    return Status::error("unknown chat template '" + std::string(name) +
                         "' (known: " + known_names() + ")");
  }
  ChatTemplate t;
  t.format_ = f->format;
  t.name_ = f->name;
  return t;
}

Result<ChatTemplate> ChatTemplate::detect(std::string_view name_or_text) {
  if (find_format(name_or_text) != nullptr) return by_name(name_or_text);
  const Detected d = detect_by_markers(name_or_text);
  if (d.name == nullptr) {
    return Status::error(
        "chat template not recognised (no known marker in its text); pass "
        "--chat-template NAME (one of: " +
        known_names() + ")");
  }
  if (!d.supported) {
    return Status::error(std::string("chat template recognised as '") + d.name +
                         "', which plumb does not render; pass --chat-template NAME (one of: " +
                         known_names() + ")");
  }
  PLUMB_ASSIGN_OR_RETURN(ChatTemplate t, by_name(d.name));
  if (t.format_ == ChatFormat::ChatML) t.default_system_ = chatml_default_system(name_or_text);
  return t;
}

std::vector<std::string> ChatTemplate::names() {
  std::vector<std::string> out;
  for (const NamedFormat& f : kFormats) out.emplace_back(f.name);
  std::sort(out.begin(), out.end());
  return out;
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                bool with_default_system) const {
  std::vector<ChatMessage> conversation;
  const bool starts_with_system = !messages.empty() && messages.front().role == "system";
  // The template writes its default inside the message loop: an empty conversation gets none.
  if (with_default_system && !default_system_.empty() && !messages.empty() && !starts_with_system) {
    conversation.push_back({"system", default_system_});
  }
  conversation.insert(conversation.end(), messages.begin(), messages.end());
  std::string out;
  render(out, format_, conversation, add_generation_prompt);
  return out;
}

std::string render_plain_conversation(std::span<const ChatMessage> messages) {
  std::string out;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      out += m.content + "\n\n";
    } else if (m.role == "user") {
      out += m.content + "\n";
    } else {
      out += m.content;
    }
  }
  return out;
}

}  // namespace plumb
