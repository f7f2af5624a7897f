// AlterUserScramCredentials / DescribeUserScramCredentials round trips.
#include "client/scram.h"

#include <fmt/format.h>
#include <openssl/rand.h>

#include "wire/generated/describe_user_scram_credentials.h"

namespace bulwark::client {
namespace {

namespace sasl = security::sasl;
constexpr std::size_t kSaltBytes = 32;

ErrorKind kind_for(std::int16_t code) { return code == 31 ? ErrorKind::unauthenticated : ErrorKind::io; }

}  // namespace

Result<wire::msg::AlterUserScramCredentialsRequest::ScramCredentialUpsertion> make_upsertion(const ScramUpsert& u) {
  if (u.user.empty()) return make_error(ErrorKind::invalid_argument, "the user name is empty");
  if (!sasl::is_scram(u.mechanism)) {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("{} is not a SCRAM mechanism (use SCRAM-SHA-256 or SCRAM-SHA-512)",
                                  sasl::name_of(u.mechanism)));
  }
  if (u.iterations < sasl::kMinScramIterations || u.iterations > sasl::kMaxScramIterations) {
    return make_error(ErrorKind::invalid_argument,
                      fmt::format("{} iterations is outside what Kafka accepts ({}..{})", u.iterations,
                                  sasl::kMinScramIterations, sasl::kMaxScramIterations));
  }
  if (u.password.empty()) {
    return make_error(ErrorKind::invalid_argument, fmt::format("the password for user {} is empty", u.user));
  }
  wire::msg::AlterUserScramCredentialsRequest::ScramCredentialUpsertion out;
  out.name = u.user;
  out.mechanism = sasl::scram_wire_type(u.mechanism);
  out.iterations = u.iterations;
  out.salt.resize(kSaltBytes);
  if (RAND_bytes(out.salt.data(), static_cast<int>(out.salt.size())) != 1) {
    return make_error(ErrorKind::internal, "the random generator failed to make a salt");
  }
  auto salted = sasl::scram_salted_password(u.mechanism, u.password, out.salt, u.iterations);
  if (!salted) return salted.error();
  out.salted_password = std::move(*salted);
  return out;
}

Result<std::vector<ScramResult>> alter_scram_credentials(AdminConnection& connection,
                                                         const std::vector<ScramUpsert>& upserts,
                                                         const std::vector<ScramDelete>& deletes) {
  wire::msg::AlterUserScramCredentialsRequest request;
  for (const auto& u : upserts) {
    auto upsertion = make_upsertion(u);
    if (!upsertion) return upsertion.error();
    request.upsertions.push_back(std::move(*upsertion));
  }
  for (const auto& d : deletes) {
    if (!sasl::is_scram(d.mechanism)) {
      return make_error(ErrorKind::invalid_argument,
                        fmt::format("{} is not a SCRAM mechanism", sasl::name_of(d.mechanism)));
    }
    wire::msg::AlterUserScramCredentialsRequest::ScramCredentialDeletion deletion;
    deletion.name = d.user;
    deletion.mechanism = sasl::scram_wire_type(d.mechanism);
    request.deletions.push_back(std::move(deletion));
  }
  auto response = connection.call<wire::msg::AlterUserScramCredentialsRequest,
                                  wire::msg::AlterUserScramCredentialsResponse>(request);
  if (!response) return response.error();
  std::vector<ScramResult> out;
  for (auto& r : response->results) out.push_back({std::move(r.user), r.error_code, std::move(r.error_message)});
  return out;
}

Result<std::vector<ScramUserInfo>> describe_scram_credentials(AdminConnection& connection,
                                                              const std::vector<std::string>& users) {
  wire::msg::DescribeUserScramCredentialsRequest request;
  if (users.empty()) {
    request.users = std::nullopt;  // null = every user
  } else {
    request.users.emplace();
    for (const auto& u : users) request.users->push_back({u, {}});
  }
  auto response = connection.call<wire::msg::DescribeUserScramCredentialsRequest,
                                  wire::msg::DescribeUserScramCredentialsResponse>(request);
  if (!response) return response.error();
  if (response->error_code != 0) {
    return make_error(kind_for(response->error_code),
                      explain_scram_error(response->error_code, response->error_message, "", connection.identity()));
  }
  std::vector<ScramUserInfo> out;
  for (auto& r : response->results) {
    ScramUserInfo info{std::move(r.user), r.error_code, std::move(r.error_message), {}};
    for (const auto& c : r.credential_infos) info.credentials.push_back({c.mechanism, c.iterations});
    out.push_back(std::move(info));
  }
  return out;
}

std::string explain_scram_error(std::int16_t code, const std::optional<std::string>& message, std::string_view user,
                                std::string_view identity) {
  const std::string name = error_name(code);
  const std::string who = user.empty() ? std::string() : fmt::format("user {}: ", user);
  std::string text;
  switch (code) {
    case 31:
      text = fmt::format("{}the broker says {} may not manage SCRAM credentials ({})", who, identity, name);
      break;
    case 91:
      text = fmt::format("{}no such SCRAM credential ({})", who, name);
      break;
    case 93:
      text = fmt::format("{}the broker refused the credential ({})", who, name);
      break;
    case 92:
      text = fmt::format("{}the request names the same user and mechanism twice ({})", who, name);
      break;
    case 35:
      text = fmt::format("{}the broker does not support this request version ({})", who, name);
      break;
    default:
      text = fmt::format("{}the broker answered {}", who, name);
  }
  if (message && !message->empty() && text.find(*message) == std::string::npos) text += ": " + *message;
  return text;
}

}  // namespace bulwark::client
