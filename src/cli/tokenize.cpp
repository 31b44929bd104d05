// plumb tokenize: text -> token ids with a model's (or vocab-only file's) tokenizer.
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/command.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/text_file.h"

namespace plumb::cli {

namespace {

// A piece for a terminal: printable UTF-8 kept, \n \t \r \\ \' escaped, other control bytes and
// bytes that are not valid UTF-8 as \xNN.
std::string escape_piece(const std::string& piece) {
  std::string out;
  size_t i = 0;
  while (i < piece.size()) {
    const unsigned char c = static_cast<unsigned char>(piece[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (c == '\'') out += "\\'";
    if (c == '\n' || c == '\t' || c == '\r' || c == '\\' || c == '\'') {
      ++i;
      continue;
    }
    size_t next = i;
    const uint32_t cpt = tok::decode_utf8_at(piece, &next);
    const bool invalid = cpt == tok::kReplacementChar && piece.compare(i, 3, "\xEF\xBF\xBD") != 0;
    if (c < 0x20 || c == 0x7F || invalid) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02X", c);
      out += hex;
      ++i;
      continue;
    }
    out.append(piece, i, next - i);
    i = next;
  }
  return out;
}

// JSON string body; bytes that are not valid UTF-8 become U+FFFD (JSON text must be UTF-8).
std::string json_string(const std::string& s) {
  std::string out = "\"";
  size_t i = 0;
  while (i < s.size()) {
    size_t next = i;
    const uint32_t cpt = tok::decode_utf8_at(s, &next);
    if (cpt == '"') out += "\\\"";
    else if (cpt == '\\') out += "\\\\";
    else if (cpt == '\n') out += "\\n";
    else if (cpt == '\t') out += "\\t";
    else if (cpt == '\r') out += "\\r";
    else if (cpt < 0x20 || cpt == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\u%04X", cpt);
      out += hex;
    } else if ((cpt >= 0xD800 && cpt <= 0xDFFF) || cpt > 0x10FFFF) {
      out += "\xEF\xBF\xBD";
    } else {
      tok::append_utf8(cpt, &out);
    }
    i = next;
  }
  return out + "\"";
}

int run_tokenize(int argc, char** argv) {
  ArgParser p("tokenize", "-m FILE.gguf [--no-bos] [--parse-special] [--ids | --pieces | --json] (TEXT | -f FILE)",
              "Tokenize TEXT (or the bytes of FILE) exactly as llama.cpp does with the tokenizer in\n"
              "FILE.gguf (a model or a vocab-only file). BOS/EOS are added as the file's\n"
              "tokenizer.ggml.add_bos_token / add_eos_token say.\n\n"
              "Output (default): one line per token, \"ID<TAB>'PIECE'\", the piece as llama.cpp's\n"
              "token_to_piece renders it (special tokens shown), with \\n \\t \\r \\\\ \\' and\n"
              "\\xNN (control bytes, bytes of an incomplete UTF-8 sequence) escaped.\n"
              "--ids: one line, \"[id, id, ...]\". --pieces: one escaped piece per line.\n"
              "--json: {\"n_tokens\": N, \"tokens\": [{\"id\": ID, \"piece\": \"...\"}, ...]} (bytes of\n"
              "incomplete UTF-8 sequences shown as U+FFFD).");
  std::string model_path;
  std::string file_path;
  bool no_bos = false, parse_special = false, ids = false, pieces = false, json = false;
  p.option("-m,--model", "FILE.gguf", "GGUF file with tokenizer.* metadata", &model_path);
  p.option("-f,--file", "FILE", "tokenize the bytes of FILE instead of TEXT", &file_path);
  p.flag("--no-bos", "add no BOS/EOS even where the model asks for them", &no_bos);
  p.flag("--parse-special", "recognise control-token texts such as <|im_end|> in the input",
         &parse_special);
  p.flag("--ids", "print the ids only, as one list", &ids);
  p.flag("--pieces", "print the pieces only, one per line", &pieces);
  p.json_flag("--json", "print JSON", &json);
  p.positionals("TEXT", 0, 1);
  if (auto code = p.parse(argc, argv)) return *code;
  if (model_path.empty()) return p.usage_error("missing -m FILE.gguf");
  if (static_cast<int>(ids) + static_cast<int>(pieces) + static_cast<int>(json) > 1) {
    return p.usage_error("choose one of --ids, --pieces, --json");
  }
  if (file_path.empty() == p.positional().empty()) {
    return p.usage_error("give either TEXT or -f FILE");
  }

  std::string text;
  if (!file_path.empty()) {
    Result<std::string> read = read_text_file(file_path, "-f");
    if (!read.ok()) return p.fail(read.status().message());
    text = *read;
  } else {
    text = p.positional()[0];
  }

  auto file = gguf::File::open(model_path);
  if (!file.ok()) return p.fail(file.status().message());
  auto tokenizer = Tokenizer::from_gguf(*file.value());
  if (!tokenizer.ok()) return p.fail(tokenizer.status().message());
  const Tokenizer& t = *tokenizer.value();
  const std::vector<TokenId> tokens = t.encode(text, !no_bos, parse_special);

  std::string out;
  if (ids) {
    out += "[";
    for (size_t i = 0; i < tokens.size(); ++i) {
      out += (i ? ", " : "") + std::to_string(tokens[i]);
    }
    out += "]\n";
  } else if (json) {
    out += "{\"n_tokens\": " + std::to_string(tokens.size()) + ", \"tokens\": [";
    for (size_t i = 0; i < tokens.size(); ++i) {
      out += (i ? ", " : "");
      out += "{\"id\": " + std::to_string(tokens[i]) +
             ", \"piece\": " + json_string(t.token_to_piece(tokens[i], true)) + "}";
    }
    out += "]}\n";
  } else {
    for (TokenId id : tokens) {
      const std::string piece = escape_piece(t.token_to_piece(id, true));
      if (pieces) {
        out += piece + "\n";
      } else {
        out += std::to_string(id) + "\t'" + piece + "'\n";
      }
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

const bool registered =
    register_command({"tokenize", "text to token ids with a GGUF file's tokenizer", run_tokenize});

}  // namespace

}  // namespace plumb::cli
