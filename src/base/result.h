// Errors as values: every fallible call on the I/O path returns Result<T> (or Status) instead of
// throwing. An Error carries a plain-words message meant for a human and a coarse category that the
// protocol edge maps to Kafka error codes.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace bulwark {

enum class ErrorKind {
  invalid_argument,   // the caller (a user, a config file, a client) gave something wrong
  not_found,
  already_exists,
  corrupt,            // bytes that do not parse or whose checksum is wrong
  unauthenticated,    // wrong password, bad signature, certificate not trusted
  io,                 // the operating system said no
  unsupported,
  unavailable,        // not now: no leader, not the controller, shutting down (retry later)
  internal,
};

struct Error {
  ErrorKind kind = ErrorKind::internal;
  std::string message;
};

inline Error make_error(ErrorKind kind, std::string message) { return Error{kind, std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

// Result<void>.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), failed_(true) {}
  static Status success() { return Status(); }

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool failed_ = false;
};

}  // namespace bulwark

// Early return of a failed Result/Status from a function that itself returns Result/Status.
#define BULWARK_TRY(expr)                                   \
  do {                                                      \
    auto&& bulwark_try_result_ = (expr);                    \
    if (!bulwark_try_result_.ok()) return bulwark_try_result_.error(); \
  } while (0)
