// A small streaming JSON writer shared by the commands that print machine-readable output.
//
//   json::Writer w(stdout);            // or json::Writer w; ... w.str()
//   w.begin_object();
//   w.key("name").value("austen");
//   w.key("shape").begin_array().value(int64_t{256}).value(int64_t{32000}).end_array();
//   w.end_object();
//   w.finish();                        // flushes; call before reading str() or exiting
//
// Strings are bytes, not necessarily UTF-8. Valid UTF-8 sequences pass through unchanged;
// every byte that is not part of a valid UTF-8 sequence is written as \u00XX, XX being the
// byte's value (its Latin-1 reading). Since a real U+0080..U+00FF character is valid UTF-8 and
// passes through raw, a \u0080..\u00ff escape in the output always stands for one raw invalid
// byte of the input. Control characters (< 0x20, 0x7f) are escaped (\n, \t, ... or \u00XX).
// Floats: float with %.9g and double with %.17g (both round-trip exactly); NaN and +-Inf have
// no JSON spelling and are written as null.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace plumb::json {

// `s` as a quoted JSON string, escaped as described above.
std::string quote(std::string_view s);
// Appends quote(s) to `out`.
void append_quoted(std::string* out, std::string_view s);
// "%.9g" / "%.17g" of a finite value, "null" otherwise.
std::string format_float(float v);
std::string format_double(double v);

class Writer {
 public:
  // Writes into an internal string (read it with str()).
  explicit Writer(int indent = 2);
  // Streams to `out` (buffered; call finish()).
  explicit Writer(std::FILE* out, int indent = 2);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Writer& begin_object();
  Writer& end_object();
  Writer& begin_array();
  Writer& end_array();
  // Inside an object: the key of the next value.
  Writer& key(std::string_view k);

  Writer& value(std::string_view s);
  Writer& value(const char* s) { return value(std::string_view(s)); }
  Writer& value(const std::string& s) { return value(std::string_view(s)); }
  Writer& value(bool b);
  Writer& value(int v) { return value(static_cast<int64_t>(v)); }
  Writer& value(unsigned v) { return value(static_cast<uint64_t>(v)); }
  Writer& value(int64_t v);
  Writer& value(uint64_t v);
  Writer& value(float v);
  Writer& value(double v);
  Writer& null();

  // Flushes buffered output to the FILE* (if any) and ends with a newline at top level.
  void finish();
  // The text written so far (string mode).
  const std::string& str() const { return buf_; }

 private:
  struct Level {
    bool is_object;
    size_t count = 0;
  };
  void before_value();
  void newline_indent();
  void flush_if_large();

  std::FILE* out_ = nullptr;
  int indent_;
  std::string buf_;
  std::vector<Level> stack_;
  bool after_key_ = false;
  bool finished_ = false;
};

}  // namespace plumb::json
