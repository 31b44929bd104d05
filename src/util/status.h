// Errors are values: a Status carries a message a user can act on (file, tensor, offset,
// expected vs found); Result<T> is a value or such a Status. No exceptions cross the library.
#pragma once

#include <cstdarg>
#include <optional>
#include <string>
#include <utility>

namespace plumb {

class Status {
 public:
  Status() = default;  // success

  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  // printf-style message, e.g. Status::errorf("%s: tensor '%s' ends at %llu, past the end", ...)
  static Status errorf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

  // Prefix context to an error: "loading model: " + message.
  Status with_context(const std::string& context) const {
    if (ok()) return *this;
    return error(context + ": " + message_);
  }

 private:
  bool failed_ = false;
  std::string message_;
};

template <class T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: must be an error

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrprintf(const char* fmt, va_list args);

}  // namespace plumb

#define PLUMB_CONCAT_INNER(a, b) a##b
#define PLUMB_CONCAT(a, b) PLUMB_CONCAT_INNER(a, b)

// Return the Status of `expr` from the enclosing function if it failed.
#define PLUMB_RETURN_IF_ERROR(expr)                     \
  do {                                                  \
    ::plumb::Status plumb_status_ = (expr);             \
    if (!plumb_status_.ok()) return plumb_status_;      \
  } while (0)

// `PLUMB_ASSIGN_OR_RETURN(auto x, f())`: unwrap a Result or return its Status.
#define PLUMB_ASSIGN_OR_RETURN(lhs, expr)                                        \
  auto PLUMB_CONCAT(plumb_result_, __LINE__) = (expr);                           \
  if (!PLUMB_CONCAT(plumb_result_, __LINE__).ok())                               \
    return PLUMB_CONCAT(plumb_result_, __LINE__).status();                       \
  lhs = std::move(PLUMB_CONCAT(plumb_result_, __LINE__)).value()
