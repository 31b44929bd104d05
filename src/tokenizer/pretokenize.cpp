#include "tokenizer/pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <utility>

#include "tokenizer/unicode.h"

namespace plumb::tok {

namespace {

// llama.cpp's \s is Unicode White_Space (its custom splitters test unicode_set_whitespace; its
// std::regex fallback maps every non-ASCII White_Space codepoint to \v first). PCRE2's \s
// under UCP lacks U+0085, so the class is spelled out and \s / \S are written with it.
#define WS "\\x{9}-\\x{D} \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define S_ "[" WS "]"
#define NS "[^" WS "]"

// llama.cpp hand-codes this one (unicode_regex_split_custom_gpt2); its code also takes a lone
// whitespace before a non-space as a word, which this pattern leaves unmatched: the splitter
// turns every unmatched stretch into a word of its own, so the words are the same.
constexpr const char* kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" S_ "+(?!" NS ")";
// The Llama 3 pattern, with llama.cpp's (?i:...) -> explicit case classes (it is also
// hand-coded there, unicode_regex_split_custom_llama3; same words).
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ "+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ "+";
// Tekken / GPT-4o: llama.cpp rewrites \p{Lu}...-classes as lookahead forms for std::regex;
// PCRE2 runs the same forms with the same meaning.
constexpr const char* kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|"
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}|"
    " ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ "+";
constexpr const char* kGpt4o =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}|"
    " ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ "+";
// llama.cpp runs these through std::wregex on code points after replacing non-ASCII
// White_Space by \v. Its range U+3000-U+3002 therefore never sees U+3000, which
// is why it starts at U+3001 here; "$" there is the end of the piece only, hence \z.
constexpr const char* kDeepseekLetters =
    S_ "?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-"
    "\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}"
    "\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}"
    "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-"
    "\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"
    "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-"
    "\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-"
    "\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-"
    "\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}"
    "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}"
    "\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-"
    "\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-"
    "\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-"
    "\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-"
    "\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-"
    "\\x{118DF}\\x{1E900}-\\x{1E943}]+";
constexpr const char* kDeepseekPunct = S_ "?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3001}-\\x{3002}]+";
constexpr const char* kCjk = "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";
constexpr const char* kBloom = " ?[^(" WS "|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+";

std::vector<const char*> chain_for(PreType type) {
  switch (type) {
    case PreType::kLlama3:
    case PreType::kDbrx:
    case PreType::kSmaug:
    case PreType::kChatglm4:
      return {kLlama3};
    case PreType::kDeepseekLlm:
      return {"[\\r\\n]", kDeepseekLetters, kDeepseekPunct, S_ "+\\z", kCjk, "\\p{N}+"};
    case PreType::kDeepseekCoder:
      return {"[\\r\\n]", S_ "?\\p{L}+", S_ "?\\p{P}+", kCjk, "\\p{N}"};
    case PreType::kFalcon:
      return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"};
    case PreType::kStarcoder:
    case PreType::kRefact:
    case PreType::kCommandR:
    case PreType::kSmollm:
    case PreType::kCodeshell:
    case PreType::kExaone:
    case PreType::kMinerva:
      return {"\\p{N}", kGpt2};
    case PreType::kGpt2:
    case PreType::kMpt:
    case PreType::kOlmo:
    case PreType::kJais:
      return {kGpt2};
    case PreType::kStablelm2:
    case PreType::kQwen2:
      return {kQwen2};
    case PreType::kPoro:
    case PreType::kBloom:
    case PreType::kGpt3Finnish:
      return {kBloom};
    case PreType::kViking:
      return {kBloom, "\\p{N}"};
    case PreType::kTekken:
      return {kTekken};
    case PreType::kGpt4o:
      return {kGpt4o};
    case PreType::kChameleon:
      return {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
              "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", kGpt2};
    case PreType::kDefault:
      return {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"};
  }
  return {};
}

// A stand-in code point for those PCRE2 cannot take (surrogates, beyond U+10FFFF): private use,
// three UTF-8 bytes like the ones it replaces, and like them neither letter, number nor space.
constexpr uint32_t kStandIn = 0xE000;

}  // namespace

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::create(PreType type) {
  std::unique_ptr<PreTokenizer> pre(new PreTokenizer());
  for (const char* pattern : chain_for(type)) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    auto compiled = std::make_unique<Compiled>();
    compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error,
                                   &error_offset, nullptr);
    if (compiled->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return Status::errorf("pre-tokenizer regex does not compile at offset %zu: %s: %s",
                            static_cast<size_t>(error_offset),
                            reinterpret_cast<const char*>(message), pattern);
    }
    compiled->jit = pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE) == 0;
    pre->regexes_.push_back(std::move(compiled));
  }
  return pre;
}

void PreTokenizer::split(std::string_view text, std::string* storage,
                         std::vector<std::string_view>* words) const {
  // Re-encode as llama.cpp does (codepoints, then UTF-8); the subject PCRE2 sees is the same
  // bytes except for code points it would refuse, swapped for a stand-in of equal length.
  storage->clear();
  storage->reserve(text.size() + 16);
  std::string subject_fixed;
  bool needs_stand_in = false;
  size_t offset = 0;
  while (offset < text.size()) {
    const uint32_t cpt = decode_utf8_at(text, &offset);
    if ((cpt >= 0xD800 && cpt <= 0xDFFF) || cpt > 0x10FFFF) needs_stand_in = true;
    append_utf8(cpt, storage);
  }
  const std::string* subject = storage;
  if (needs_stand_in) {
    offset = 0;
    while (offset < text.size()) {
      uint32_t cpt = decode_utf8_at(text, &offset);
      if ((cpt >= 0xD800 && cpt <= 0xDFFF) || cpt > 0x10FFFF) cpt = kStandIn;
      append_utf8(cpt, &subject_fixed);
    }
    subject = &subject_fixed;
  }

  // Pieces as [begin, end) byte ranges of the subject.
  std::vector<std::pair<size_t, size_t>> pieces;
  if (!subject->empty()) pieces.emplace_back(0, subject->size());
  std::vector<std::pair<size_t, size_t>> next;
  pcre2_match_data* match = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* context = nullptr;
  for (const auto& regex : regexes_) {
    if (match == nullptr) {
      match = pcre2_match_data_create(1, nullptr);
      context = pcre2_match_context_create(nullptr);
      jit_stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
    }
    next.clear();
    for (const auto& [begin, end] : pieces) {
      // The piece alone is the subject, as std::regex_iterator sees it in llama.cpp.
      const auto* base = reinterpret_cast<PCRE2_SPTR>(subject->data() + begin);
      const size_t length = end - begin;
      size_t gap_start = 0;  // start of the text not yet emitted, relative to the piece
      size_t search = 0;
      uint32_t options = 0;
      while (search <= length) {
        const int rc = regex->jit ? pcre2_jit_match(regex->code, base, length, search, options,
                                                    match, context)
                                  : pcre2_match(regex->code, base, length, search,
                                                options | PCRE2_NO_UTF_CHECK, match, context);
        if (rc < 0) {
          if (options != 0 && search < length) {
            // No non-empty match right after an empty one: move on one code point.
            options = 0;
            ++search;
            while (search < length && (base[search] & 0xC0) == 0x80) ++search;
            continue;
          }
          break;
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
        const size_t m_begin = ovector[0];
        const size_t m_end = ovector[1];
        if (m_begin > gap_start) next.emplace_back(begin + gap_start, begin + m_begin);
        if (m_end > m_begin) next.emplace_back(begin + m_begin, begin + m_end);
        gap_start = m_end;
        search = m_end;
        // After an empty match, look for a non-empty one at the same place first.
        options = m_end == m_begin ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
      }
      if (gap_start < length) next.emplace_back(begin + gap_start, end);
    }
    pieces.swap(next);
  }
  if (match != nullptr) {
    pcre2_match_data_free(match);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }

  words->clear();
  words->reserve(pieces.size());
  for (const auto& [begin, end] : pieces) {
    words->emplace_back(storage->data() + begin, end - begin);
  }
}

}  // namespace plumb::tok
